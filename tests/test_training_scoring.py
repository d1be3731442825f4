"""score-alignment: bucketing rules (hand-derived), CLIP scores, report, kill-and-resume."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from aligngpt.errors import ConfigError, DataError
from aligngpt.training.bucketing import bucketize, quantile_levels, width_levels
from aligngpt.cli.train_cli import main as cli_main
from aligngpt.training.journal import ScoreJournal
from aligngpt.training.scoring import KILL_AFTER_ENV, ScoreOptions, score_alignment
from aligngpt.training.toy import write_clip

from .test_training_fixtures import caption, make_images

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- bucketing by hand
def test_quantile_counts_follow_floor_rule():
    # M=10 pairs, N=4: rank r -> floor(4r/10): ranks 0-2 -> 0, 3-4 -> 1, 5-7 -> 2, 8-9 -> 3.
    scores = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.0]
    levels = quantile_levels(scores, 4)
    # ascending order: 0.0(i9) 0.1(i1) 0.2(i5) | 0.3(i3) 0.4(i7) | 0.5(i2) 0.6(i8) 0.7(i4) | 0.8(i6) 0.9(i0)
    assert levels == [3, 0, 2, 1, 2, 0, 3, 1, 2, 0]
    b = bucketize(scores, 4, "quantile")
    assert b.counts == [3, 2, 3, 2]  # ceil((l+1)*10/4) - ceil(l*10/4)
    # edges: [min, lowest of level 1, lowest of level 2, lowest of level 3, max]
    assert b.edges == [0.0, 0.3, 0.5, 0.8, 0.9]
    assert b.level_min == [0.0, 0.3, 0.5, 0.8] and b.level_max == [0.2, 0.4, 0.7, 0.9]


def test_quantile_ties_broken_by_file_order():
    # Four equal scores, N=2: ranks follow record order, so records 0,1 -> level 0 and 2,3 -> level 1.
    assert quantile_levels([0.5, 0.5, 0.5, 0.5], 2) == [0, 0, 1, 1]
    # Fewer pairs than levels: ranks 0,1 of M=2, N=4 -> floor(0), floor(2) = levels 0 and 2.
    b = bucketize([0.2, 0.1], 4)
    assert b.levels == [2, 0] and b.counts == [1, 0, 1, 0]
    assert b.edges == [0.1, None, 0.2, None, 0.2]


def test_width_levels_edges_and_boundaries():
    # [0, 1] in 4 intervals: edges 0, .25, .5, .75, 1; a score on an edge goes up; max -> N-1.
    scores = [0.0, 0.1, 0.25, 0.5, 0.75, 1.0]
    levels, edges = width_levels(scores, 4)
    assert edges == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert levels == [0, 0, 1, 2, 3, 3]
    b = bucketize(scores, 4, "width")
    assert b.counts == [2, 1, 1, 2]
    # Shifted range [0.1, 0.3] in 2 intervals: edge 0.2; 0.19 -> 0, 0.2 -> 1.
    assert width_levels([0.1, 0.19, 0.2, 0.3], 2)[0] == [0, 0, 1, 1]


def test_width_all_equal_gives_level_zero():
    assert bucketize([0.3, 0.3, 0.3], 4, "width").levels == [0, 0, 0]


@pytest.mark.parametrize("scores,n,method", [([0.1], 1, "quantile"), ([0.1], 4, "ranked"), ([0.1, math.nan], 2, "quantile"), ([], 2, "width")])
def test_bucketing_rejects_bad_input(scores, n, method):
    with pytest.raises(ConfigError):
        bucketize(scores, n, method)


# ---------------------------------------------------------------------------- a tiny CLIP
def make_clip(folder: Path) -> Path:
    """CLIPModel with random weights + a hand-written BPE vocabulary (letters, no merges), 16 px."""
    return write_clip(folder, image_size=16, patch=4)


def make_pairs(root: Path, count: int) -> Path:
    images = make_images(root / "images", count)
    records = [
        {"id": f"{i:06d}", "image": name,
         "conversations": [{"from": "human", "value": "<image>\nDescribe the image briefly."},
                           {"from": "gpt", "value": caption(i * 3 % count)}]}
        for i, name in enumerate(images)
    ]
    (root / "pairs.json").write_text(json.dumps(records))
    return root / "pairs.json"


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip-tiny")


def _opts(root: Path, clip: Path, out: str, **kw) -> ScoreOptions:
    values = dict(data=root / "pairs.json", image_folder=root / "images", clip=str(clip), levels=4,
                  out=root / out, batch_size=3, progress=False)
    values.update(kw)
    return ScoreOptions(**values)


def _cli_args(opts: ScoreOptions) -> list[str]:
    return ["score-alignment", "--data", str(opts.data), "--image-folder", str(opts.image_folder), "--clip", opts.clip,
            "--levels", str(opts.levels), "--bucketing", opts.bucketing, "--out", str(opts.out),
            "--batch-size", str(opts.batch_size), "--no-progress"]


def _reference_cosines(clip: Path, root: Path, records: list[dict]) -> list[float]:
    """Cosines from transformers' own CLIPModel forward + CLIPImageProcessor (an independent path)."""
    from PIL import Image
    from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer

    model = CLIPModel.from_pretrained(clip).eval()
    tok = CLIPTokenizer.from_pretrained(clip)
    proc = CLIPImageProcessor.from_pretrained(clip)
    images = [Image.open(root / "images" / r["image"]).convert("RGB") for r in records]
    texts = [r["conversations"][1]["value"] for r in records]
    with torch.no_grad():
        out = model(input_ids=tok(texts, padding=True, return_tensors="pt")["input_ids"],
                    attention_mask=tok(texts, padding=True, return_tensors="pt")["attention_mask"],
                    pixel_values=proc(images=images, return_tensors="pt")["pixel_values"])
    # logits_per_image = exp(logit_scale) * cos(image_i, text_j); the pair is the diagonal.
    return (out.logits_per_image.diagonal() / model.logit_scale.exp()).tolist()


def test_score_alignment_end_to_end(tmp_path, clip_dir):
    data = make_pairs(tmp_path, 11)
    opts = _opts(tmp_path, clip_dir, "scored.json")
    assert cli_main(_cli_args(opts)) == 0
    records = json.loads(data.read_text())
    out = json.loads(opts.out.read_text())
    assert len(out) == 11
    for rec, row in zip(records, out):
        assert {k: v for k, v in row.items() if k not in ("similarity", "clip_score")} == rec  # input kept
        assert isinstance(row["similarity"], int) and 0 <= row["similarity"] < 4
    scores = [r["clip_score"] for r in out]
    assert scores == pytest.approx(_reference_cosines(clip_dir, tmp_path, records), abs=1e-4)
    # Level order follows similarity: a higher score never gets a lower level.
    for a in out:
        for b in out:
            if a["clip_score"] < b["clip_score"]:
                assert a["similarity"] <= b["similarity"]
    # Quantile rule, M=11, N=4: counts ceil((l+1)*11/4) - ceil(l*11/4) = 3, 3, 3, 2.
    counts = [sum(r["similarity"] == level for r in out) for level in range(4)]
    assert counts == [3, 3, 3, 2]
    report = json.loads(opts.report_path.read_text())
    assert report["counts"] == {"0": 3, "1": 3, "2": 3, "3": 2}
    assert report["bucketing"] == "quantile" and report["levels"] == 4 and report["pairs"] == 11
    ordered = sorted(scores)
    assert report["edges"] == [ordered[0], ordered[3], ordered[6], ordered[9], ordered[10]]
    assert opts.histogram_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    journal = opts.journal_path.read_text().splitlines()
    assert len(journal) == 1 + 4  # header + ceil(11 / 3) batches


def test_width_bucketing_counts_match_edges(tmp_path, clip_dir):
    make_pairs(tmp_path, 9)
    opts = _opts(tmp_path, clip_dir, "w.json", bucketing="width", levels=3, batch_size=4)
    report = score_alignment(opts)
    out = json.loads(opts.out.read_text())
    lo, hi = report["edges"][0], report["edges"][-1]
    assert lo == min(r["clip_score"] for r in out) and hi == max(r["clip_score"] for r in out)
    for r in out:  # level = number of interior edges at or below the score
        assert r["similarity"] == sum(r["clip_score"] >= e for e in report["edges"][1:-1])
    assert sum(report["counts"].values()) == 9


def test_killed_and_restarted_gives_identical_output(tmp_path, clip_dir):
    clean_root, crash_root = tmp_path / "clean", tmp_path / "crash"
    for root in (clean_root, crash_root):
        root.mkdir()
        make_pairs(root, 13)
    clean = _opts(clean_root, clip_dir, "scored.json")
    score_alignment(clean)

    crash = _opts(crash_root, clip_dir, "scored.json")
    env = {**os.environ, KILL_AFTER_ENV: "2"}
    proc = subprocess.run([sys.executable, "-m", "aligngpt.cli.train_cli", *_cli_args(crash)],
                          env=env, cwd=REPO, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]  # SIGKILLed itself after 2 batches
    assert not crash.out.exists()
    lines = crash.journal_path.read_bytes().splitlines()
    assert len(lines) == 1 + 2
    with open(crash.journal_path, "ab") as fh:  # a write torn by the kill: no newline at the end
        fh.write(b'{"chunk": 2, "ids": ["000006", "0000')
    score_alignment(crash)
    assert crash.out.read_bytes() == clean.out.read_bytes()
    assert json.loads(crash.report_path.read_text())["counts"] == json.loads(clean.report_path.read_text())["counts"]
    assert crash.journal_path.read_bytes().count(b"\n") == 1 + 5  # header + ceil(13/3) batches, torn tail cut


def test_journal_for_other_inputs_is_refused(tmp_path, clip_dir):
    make_pairs(tmp_path, 5)
    score_alignment(_opts(tmp_path, clip_dir, "s.json"))
    with pytest.raises(ConfigError, match="batch_size"):
        score_alignment(_opts(tmp_path, clip_dir, "s.json", batch_size=2))
    score_alignment(_opts(tmp_path, clip_dir, "s.json", batch_size=2, fresh=True))
    assert len((tmp_path / "s.json.scores.jsonl").read_text().splitlines()) == 1 + 3


def test_corrupt_journal_line_inside_the_file_is_an_error(tmp_path):
    path = tmp_path / "j.jsonl"
    j = ScoreJournal(path, {"data": "x"}).open()
    j.append(0, ["a"], [0.5])
    j.close()
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0], "{broken", text[1]]) + "\n")
    with pytest.raises(DataError, match=r"j.jsonl:2"):
        ScoreJournal(path, {"data": "x"}).open()


def test_bad_records_name_file_and_record(tmp_path, clip_dir):
    make_pairs(tmp_path, 3)
    data = tmp_path / "pairs.json"
    records = json.loads(data.read_text())
    records[1]["image"] = "../outside.png"
    data.write_text(json.dumps(records))
    with pytest.raises(DataError, match="escapes the data folder"):
        score_alignment(_opts(tmp_path, clip_dir, "bad.json", fresh=True))
    records[1]["image"] = "sub/missing.png"
    data.write_text(json.dumps(records))
    with pytest.raises(DataError, match=r"pairs.json: record 1 \(id '000001'\): cannot read image"):
        score_alignment(_opts(tmp_path, clip_dir, "bad.json", fresh=True))
    records[2]["conversations"] = [{"from": "human", "value": "<image>"}]
    data.write_text(json.dumps(records))
    with pytest.raises(DataError, match=r"record 2 .*no gpt turn"):
        score_alignment(_opts(tmp_path, clip_dir, "bad.json", fresh=True))
