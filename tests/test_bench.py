"""``run_bench`` on the official-tiny fixture: every mode timed, each mode's fastest pass reported."""
from __future__ import annotations

import torch

import aligngpt
from aligngpt.engine import bench


def test_bench_rows_cover_every_mode_and_agree_with_the_reference(official_tiny, monkeypatch):
    model, processor = aligngpt.load_pretrained(official_tiny / "checkpoint", dtype=torch.float32)
    faithful_walls = []
    real_faithful = bench.faithful_reference_loop

    def counted(*args, **kwargs):
        out = real_faithful(*args, **kwargs)
        faithful_walls.append(out[1])
        return out

    monkeypatch.setattr(bench, "faithful_reference_loop", counted)
    report = bench.run_bench(model, processor, model_name="official-tiny", questions=4, new_tokens=3,
                             batch_sizes=(1, 2), repeats=3, training_samples=0)
    assert [(r.mode.split(" ")[0], r.batch_size) for r in report.rows] == [
        ("reference-faithful", 1), ("batch-1", 1), ("engine", 1), ("engine", 2)]
    assert all(r.identical_to_reference for r in report.rows)
    assert len(faithful_walls) == 3 and report.rows[0].wall_s == min(faithful_walls)  # the fastest of the rounds
    assert report.rows[0].speedup_vs_reference == 1.0
    for row in report.rows[1:]:
        assert abs(row.speedup_vs_reference - report.rows[0].wall_s / row.wall_s) < 1e-9
    assert report.training == []
