"""``--limit`` keeps the structure a metric needs, and a limited run never shows a part as the whole.

POPE's headline is the mean F1 of three splits; MME's totals are sums over 10 / 4 subtasks whose
score pairs each image's two questions; MMBench scores circular groups. A limit spreads the
questions over the splits/subtasks and keeps pairs and groups whole; metrics that need parts
that did not run are None and not printed; results.json marks the run as limited.
"""
from __future__ import annotations

import json
from collections import Counter

import pytest

from aligngpt.cli.eval_cli import main as eval_main
from aligngpt.harness.settings import RunSettings
from aligngpt.harness.samples import apply_limit, load_samples
from aligngpt.harness.tasks import load_task
from aligngpt.harness.toy import toy_data_root


def toy_samples(task: str, limit: int | None = None):
    return load_samples(load_task(task), RunSettings(data_root=str(toy_data_root()), source="toy", limit=limit))


def test_pope_limit_samples_every_split_evenly_in_file_order():
    full = toy_samples("pope")
    for limit in (3, 20, 31):
        part = apply_limit(full, limit)
        counts = Counter(s.target["split"] for s in part)
        assert len(part) == limit and set(counts) == {"random", "popular", "adversarial"}
        assert max(counts.values()) - min(counts.values()) <= 1, counts
        assert [full.index(s) for s in part] == sorted(full.index(s) for s in part)  # original order
    two = apply_limit(full, 2)
    assert len({s.target["split"] for s in two}) == 2


def test_mme_limit_keeps_image_pairs_whole_and_spreads_over_subtasks():
    full = toy_samples("mme")
    part = apply_limit(full, 20)
    pairs = Counter(s.meta["answer_question_id"] for s in part)
    assert set(pairs.values()) == {2} and len(part) == 20
    assert len({s.meta["category"] for s in part}) == 10  # 10 pairs from 10 subtasks, not the first subtask's
    assert len(apply_limit(full, 1)) == 2  # a pair is never cut
    every = apply_limit(full, 28)
    assert len({s.meta["category"] for s in every}) == 14


@pytest.mark.parametrize("task", ["mmbench", "mmbench_cn"])
def test_mmbench_limit_keeps_circular_groups_whole(task):
    full = toy_samples(task)
    sizes = Counter(s.meta["group"] for s in full)
    part = apply_limit(full, 10)
    got = Counter(s.meta["group"] for s in part)
    assert got and all(got[g] == sizes[g] for g in got)  # every copy of every chosen question
    assert len(part) >= 10 and len(part) - max(sizes.values()) < 10


def _run(tmp_path, capsys, task: str, limit: int) -> tuple[str, dict]:
    assert eval_main(["run", "--tasks", task, "--limit", str(limit), "--output-dir", str(tmp_path), "--batch-size", "8"]) == 0
    out = capsys.readouterr().out
    (results,) = tmp_path.glob("*/results.json")
    return out, json.loads(results.read_text())["tasks"][task]


def _printed(out: str) -> list[str]:
    """Metric names of the printed table (second column)."""
    return [cells[2].strip() for line in out.splitlines() if line.startswith("|")
            for cells in [line.split("|")] if len(cells) > 3 and cells[2].strip() not in ("metric", "")
            and not set(cells[2].strip()) <= {"-"}]


def test_limited_pope_prints_per_split_f1_and_no_mean_from_missing_splits(tmp_path, capsys):
    out, res = _run(tmp_path / "two", capsys, "pope", 2)
    ran = {s for s, m in res["metrics"]["splits"].items() if m["f1"] is not None}
    assert len(ran) == 2
    assert res["metrics"]["f1"] is None and res["metrics"]["accuracy"] is None
    printed = _printed(out)
    assert "f1" not in printed and "accuracy" not in printed
    assert {f"splits.{s}.f1" for s in ran} <= set(printed)
    assert not any(p.startswith(f"splits.{s}.") for p in printed for s in {"random", "popular", "adversarial"} - ran)
    assert res["limited"] == {"limit": 2, "questions": 2, "of": 900}
    assert "limited run (--limit 2): pope 2 of 900 questions" in out
    # with every split present the headline is the mean of the three splits that ran
    out, res = _run(tmp_path / "all", capsys, "pope", 9)
    f1s = [m["f1"] for m in res["metrics"]["splits"].values()]
    assert None not in f1s and res["metrics"]["f1"] == pytest.approx(sum(f1s) / 3)
    assert "f1" in _printed(out)


def test_limited_mme_prints_subtasks_but_no_totals(tmp_path, capsys):
    out, res = _run(tmp_path, capsys, "mme", 6)
    m = res["metrics"]
    assert m["perception"] is None and m["cognition"] is None and len(m["subtasks"]) == 3
    printed = _printed(out)
    assert "perception" not in printed and "cognition" not in printed
    assert sum(p.startswith("subtasks.") for p in printed) == 3
    assert res["limited"]["questions"] == 6

