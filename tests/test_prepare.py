"""``aligngpt-eval prepare``: lmms-lab parquet copies -> LLaVA local layout + manifest.

Acceptance: from local lmms-lab-schema parquet copies of GQA, POPE, MME and
MMBench, ``prepare`` writes the layout; the local loader on it gives the same (question_id,
question, target) as the HF loader on the parquet; and ``run`` on the layout writes the same
answers.jsonl as ``run --source hf`` on the parquet.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from aligngpt.cli.eval_cli import main as eval_main
from aligngpt.data.base import Sample, get_loader
from aligngpt.errors import ConfigError, DataError
from aligngpt.cli.prepare_cli import add_prepare_parser
from aligngpt.harness import prepare as prep
from aligngpt.tasks.mme import prepare as mme_prep

from .builders_gqa_pope_mme import (
    POPE_LABELS, POPE_ORDER, _pope_hf_columns, build_gqa_hf, build_mme_hf, build_pope_hf, png_bytes, write_hf_parquet,
)

TASKS = ("gqa", "pope", "mme", "mmbench")


def png(color) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (6, 5), color).save(buf, format="PNG")
    return buf.getvalue()


def build_mmbench_hf(root: Path) -> Path:
    """lmms-lab/MMBench ``en``/``dev`` shard: ``index`` stored as text, empty cells as the string
    "nan", ``L2-category`` capitalised, the image as {bytes, path}."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [
        # question 0: 3 options, a hint with a tab, a newline and quotes (TSV quoting), D empty
        dict(index="0", question="What color is it?", hint='Look "closely".\tThen\nanswer.', A="red", B="green",
             C="blue", D="nan", answer="A", category="attribute_recognition", **{"L2-category": "FP-S"},
             source="src", comment="nan", split="dev", image=png((200, 0, 0))),
        dict(index="1000000", question="What color is it?", hint='Look "closely".\tThen\nanswer.', A="green",
             B="blue", C="red", D="nan", answer="C", category="attribute_recognition", **{"L2-category": "FP-S"},
             source="src", comment="nan", split="dev", image=png((200, 0, 0))),
        # question 1: option C is the text "NA" (pandas reads it as missing: the list stops at B),
        # no hint; an option with leading/trailing spaces survives verbatim
        dict(index="1", question="Is it big?", hint="nan", A=" yes ", B="no", C="NA", D="nan", answer="B",
             category="image_scene", **{"L2-category": "CP"}, source="src", comment="nan", split="dev",
             image=png((0, 90, 0))),
        dict(index="1000001", question="Is it big?", hint="nan", A="no", B=" yes ", C="NA", D="nan", answer="A",
             category="image_scene", **{"L2-category": "CP"}, source="src", comment="nan", split="dev",
             image=png((0, 90, 0))),
    ]
    columns = {k: [r[k] for r in rows] for k in rows[0] if k != "image"}
    images = pa.array([{"bytes": r["image"], "path": None} for r in rows],
                      pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
    (root / "en").mkdir(parents=True)
    pq.write_table(pa.table({**columns, "image": images}), root / "en" / "dev-00000-of-00001.parquet")
    return root


@pytest.fixture(autouse=True)
def datasets_cache(tmp_path, monkeypatch):
    """Keep `datasets`' parquet cache inside the test folder (the CLI passes no cache_dir)."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


@pytest.fixture()
def hf_copies(tmp_path) -> dict[str, str]:
    base = tmp_path / "hf"
    return {
        "gqa": str(build_gqa_hf(base / "GQA")),
        "pope": str(build_pope_hf(base / "POPE")),
        "mme": str(build_mme_hf(base / "MME")),
        "mmbench": str(build_mmbench_hf(base / "MMBench")),
    }


def comparable(samples: list[Sample], task: str) -> list[tuple]:
    out = []
    for s in samples:
        target = dict(s.target) if isinstance(s.target, dict) else s.target
        if task == "pope":
            target.pop("join")  # how the loader paired labels ('hf' vs 'position'), not data
        image = s.image if isinstance(s.image, bytes) else Path(s.image).read_bytes()
        out.append((s.question_id, s.question, target, image))
    return out


def run_prepare(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="aligngpt-eval")
    add_prepare_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


# --------------------------------------------------------------------------- acceptance


def test_prepared_layout_loads_like_the_hf_copy_and_runs_identically(hf_copies, tmp_path, official_tiny, capsys):
    out = tmp_path / "eval"
    argv = ["prepare", "--tasks", ",".join(TASKS), "--out", str(out), "--cache-dir", str(tmp_path / "cache")]
    for task, path in hf_copies.items():
        argv += ["--hf-path", f"{task}={path}"]
    assert run_prepare(argv) == 0
    printed = capsys.readouterr()
    assert "| gqa" in printed.out and "skipped" in printed.out and "partial copy" in printed.err

    # The exact LLaVA layout the local loaders read.
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted([
        "manifest.json",
        "gqa/llava_gqa_testdev_balanced.jsonl", "gqa/data/testdev_balanced_questions.json",
        "gqa/data/images/n161313.jpg", "gqa/data/images/n235859.jpg",
        "pope/llava_pope_test.jsonl", "pope/coco/coco_pope_random.json", "pope/coco/coco_pope_popular.json",
        "pope/coco/coco_pope_adversarial.json",
        *{f"pope/val2014/{img}" for split in POPE_ORDER for img, _, _ in POPE_LABELS[split]},
        "MME/llava_mme.jsonl",
        "MME/MME_Benchmark_release_version/artwork/images/10002.jpg",
        "MME/MME_Benchmark_release_version/artwork/images/10003.jpg",
        "MME/MME_Benchmark_release_version/artwork/questions_answers_YN/10002.txt",
        "MME/MME_Benchmark_release_version/artwork/questions_answers_YN/10003.txt",
        "MME/MME_Benchmark_release_version/existence/0001.jpg",
        "MME/MME_Benchmark_release_version/existence/0001.txt",
        "MME/MME_Benchmark_release_version/code_reasoning/0020.png",
        "MME/MME_Benchmark_release_version/code_reasoning/0020.txt",
        "mmbench/mmbench_dev_20230712.tsv",
    ])
    # MME keeps the GT file's own wording (two-space variant) so convert_answer_to_mme.py finds it.
    assert (out / "MME/MME_Benchmark_release_version/existence/0001.txt").read_text() == (
        "Is there a dog in this image?  Please answer yes or no.\tYes\n"
        "Is there a cat in this image? Please answer yes or no.\tNo\n")
    # POPE label files keep per-split integer ids and lower-cased labels (the HF file says "Yes").
    first = json.loads((out / "pope/coco/coco_pope_adversarial.json").read_text().splitlines()[0])
    assert first == {"question_id": 1, "image": "COCO_val2014_000000310196.jpg",
                     "text": "Is there a snowboard in the image?", "label": "yes"}

    for task in TASKS:
        hf = get_loader(task, "hf")(hf_copies[task], cache_dir=str(tmp_path / "cache"))
        local = get_loader(task, "local")(out)
        assert comparable(local, task) == comparable(hf, task), task
    assert [s.target["join"] for s in get_loader("pope", "local")(out)] == ["position"] * 12

    # `run` on the prepared layout == `run --source hf` on the parquet copies.
    common = ["run", "--tasks", ",".join(TASKS), "--model", str(official_tiny / "checkpoint"),
              "--max-new-tokens", "3", "--batch-size", "4", "--json"]
    hf_flags = [x for task, path in hf_copies.items() for x in ("--hf-path", f"{task}={path}")]
    assert eval_main(common + ["--source", "hf", "--output-dir", str(tmp_path / "runs-hf"), *hf_flags]) == 0
    hf_results = json.loads(capsys.readouterr().out)
    assert eval_main(common + ["--data-root", str(out), "--output-dir", str(tmp_path / "runs-local")]) == 0
    local_results = json.loads(capsys.readouterr().out)
    (hf_dir,) = list((tmp_path / "runs-hf").iterdir())
    (local_dir,) = list((tmp_path / "runs-local").iterdir())
    for task in TASKS:
        def answers(run_dir):
            rows = [json.loads(line) for line in (run_dir / task / "answers.jsonl").read_text().splitlines()]
            for r in rows:
                r.pop("answer_id")  # derived from the run name, which names the data source
            return rows

        assert answers(local_dir) == answers(hf_dir), task
        assert len(answers(local_dir)) == {"gqa": 6, "pope": 12, "mme": 8, "mmbench": 4}[task]
        assert local_results["tasks"][task]["metrics"] == hf_results["tasks"][task]["metrics"], task


# --------------------------------------------------------------------------- manifest


def test_manifest_checksums_counts_and_id_hashes(hf_copies, tmp_path):
    out = tmp_path / "eval"
    manifest = prep.prepare(["pope", "mmbench"], out, hf_paths={"pope": hf_copies["pope"], "mmbench": hf_copies["mmbench"]},
                            cache_dir=str(tmp_path / "cache"))
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest and manifest["format"] == "aligngpt-prepare/1"
    pope = manifest["tasks"]["pope"]
    for rel, info in pope["files"].items():
        data = (out / rel).read_bytes()
        assert info["sha256"] == hashlib.sha256(data).hexdigest() and info["bytes"] == len(data)
    assert pope["files"]["pope/llava_pope_test.jsonl"]["rows"] == 12
    assert pope["files"]["pope/coco/coco_pope_random.json"]["rows"] == 4
    # id set: "split/id" for the 3 splits x ids 1..4, sorted, one per line
    ids = sorted(f"{split}/{i}" for split in POPE_ORDER for i in range(1, 5))
    assert pope["question_ids_sha256"] == hashlib.sha256("\n".join(ids).encode()).hexdigest()
    assert pope["questions"] == 12 and pope["verified"] == {"questions": 12, "identical_to_hf": True}
    check = pope["count_check"]
    assert check["status"] == "skipped" and check["expected"] == 8910 and check["found"] == 12
    assert check["splits"] == {"random": 4, "popular": 4, "adversarial": 4}
    assert pope["source"]["kind"] == "local_copy"
    mmb = manifest["tasks"]["mmbench"]
    assert mmb["questions"] == 4 and mmb["files"]["mmbench/mmbench_dev_20230712.tsv"]["rows"] == 4
    assert mmb["question_ids_sha256"] == hashlib.sha256(b"0\n1\n1000000\n1000001").hexdigest()

    # A second prepare into the same folder adds its task and keeps the others.
    prep.prepare(["gqa"], out, hf_paths={"gqa": hf_copies["gqa"]}, cache_dir=str(tmp_path / "cache"))
    assert set(prep.read_manifest(out)["tasks"]) == {"pope", "mmbench", "gqa"}
    # ... and preparing a task again replaces its entry (same data: same checksums)
    again = prep.prepare_task("pope", out, hf_path=hf_copies["pope"], cache_dir=str(tmp_path / "cache"))
    assert again["files"] == pope["files"] and set(prep.read_manifest(out)["tasks"]) == {"pope", "mmbench", "gqa"}

    assert prep.check_manifest(out) == []
    assert run_prepare(["prepare", "--check", "--out", str(out)]) == 0
    victim = out / "pope" / "val2014" / "COCO_val2014_000000000042.jpg"
    victim.write_bytes(png_bytes((1, 2, 3)))
    (out / "gqa" / "llava_gqa_testdev_balanced.jsonl").unlink()
    problems = prep.check_manifest(out)
    assert any("COCO_val2014_000000000042.jpg" in p and ("sha256" in p or "size" in p) for p in problems)
    assert "gqa: gqa/llava_gqa_testdev_balanced.jsonl: missing" in problems and len(problems) == 2
    assert run_prepare(["prepare", "--check", "--out", str(out)]) == 1


def test_mmbench_tsv_round_trips_pandas_cells(hf_copies, tmp_path):
    out = tmp_path / "eval"
    prep.prepare(["mmbench"], out, hf_paths={"mmbench": hf_copies["mmbench"]}, cache_dir=str(tmp_path / "cache"))
    frame = pd.read_csv(out / "mmbench" / "mmbench_dev_20230712.tsv", sep="\t", dtype=str)
    assert frame.loc[0, "hint"] == 'Look "closely".\tThen\nanswer.'  # quoted, survives verbatim
    assert frame["D"].isna().all() and frame["comment"].isna().all()  # "nan" cells are empty (NA)
    assert frame.loc[2, "A"] == " yes " and pd.isna(frame.loc[2, "C"])  # "NA" text reads as NA
    assert list(frame["L2-category"]) == ["FP-S", "FP-S", "CP", "CP"]
    assert base64.b64decode(frame.loc[2, "image"]) == png((0, 90, 0))
    (s0, _, s2, _) = get_loader("mmbench", "local")(out)
    assert s0.question == ('Look "closely".\tThen\nanswer.\nWhat color is it?\nA. red\nB. green\nC. blue\n'
                           "Answer with the option's letter from the given choices directly.")
    assert s2.question == "Is it big?\nA.  yes \nB. no\nAnswer with the option's letter from the given choices directly."


# --------------------------------------------------------------------------- count checks


def fake(task: str, n: int, **target) -> list[Sample]:
    return [Sample(question_id=f"{task}-{i}", question="q", target=dict(target)) for i in range(n)]


def test_count_check_statuses():
    # exact protocol count -> passed; a partial copy -> skipped; a full split off by one -> failed
    assert prep.count_check("gqa", fake("gqa", 12_578), full=True)["status"] == "passed"
    assert prep.count_check("gqa", fake("gqa", 12), full=False)["status"] == "skipped"
    failed = prep.count_check("gqa", fake("gqa", 12_577), full=True)
    assert failed["status"] == "failed" and "12,577 questions, the protocol expects 12,578" in failed["message"]
    # MMBench 'en' 20231003 has 4,329 rows: failed, with a hint naming the right copy
    mmb = prep.count_check("mmbench", fake("mmbench", 4_329), full=True)
    assert mmb["status"] == "failed" and "lmms-lab/MMBench_EN" in mmb["message"]
    assert prep.count_check("mmbench_cn", fake("mmbench_cn", 4_329), full=True)["status"] == "passed"


def test_pope_count_check_warns_about_lmms_lab_9000():
    lmms_lab = [s for split in POPE_ORDER for s in fake(split, 3_000, split=split)]
    check = prep.count_check("pope", lmms_lab, full=True)
    assert check["status"] == "warning" and "8,910" in check["message"] and "9,000" in check["message"]
    llava = [s for split, n in (("random", 2_910), ("popular", 3_000), ("adversarial", 3_000))
             for s in fake(split, n, split=split)]
    assert prep.count_check("pope", llava, full=True)["status"] == "passed"
    # 8,910 in total but split differently from LLaVA's copy is not the same data
    odd = [s for split, n in (("random", 3_000), ("popular", 2_910), ("adversarial", 3_000))
           for s in fake(split, n, split=split)]
    assert prep.count_check("pope", odd, full=True)["status"] == "failed"
    # a partial copy records the per-split counts but only reports the total
    small = prep.count_check("pope", [s for split in POPE_ORDER for s in fake(split, 2, split=split)], full=False)
    assert small["status"] == "skipped" and small["splits"] == {"adversarial": 2, "popular": 2, "random": 2}
    assert "6 questions, the protocol expects 8,910" in small["message"] and "per split" not in small["message"]


def test_mme_count_check_per_subtask():
    samples = [s for cat, n in mme_prep.MME_EXPECTED_CATEGORIES.items() for s in fake(cat, n, category=cat)]
    assert len(samples) == 2_374 and prep.count_check("mme", samples, full=True)["status"] == "passed"
    # move one question from OCR to count: total still 2,374, subtasks differ
    moved = ([s for s in samples if s.target["category"] != "OCR"] + fake("OCR", 39, category="OCR")
             + fake("count", 1, category="count"))
    check = prep.count_check("mme", moved, full=True)
    assert check["status"] == "failed" and "OCR, count" in check["message"]


def test_strict_counts_refuse_a_partial_copy_before_writing(hf_copies, tmp_path):
    out = tmp_path / "eval"
    with pytest.raises(DataError, match="6 questions, the protocol expects 12,578"):
        prep.prepare(["gqa"], out, hf_paths={"gqa": hf_copies["gqa"]}, cache_dir=str(tmp_path / "cache"),
                     strict_counts=True)
    assert not (out / "gqa").exists() and not (out / "manifest.json").exists()


# --------------------------------------------------------------------------- safety and errors


def test_image_names_cannot_escape_and_clashes_are_kept_apart(tmp_path):
    base = tmp_path / "hf"
    labels = {"random": [("COCO_a.jpg", "dog", "yes"), ("COCO_a.jpg", "cat", "no")],
              "popular": [("COCO_b.jpg", "car", "no")], "adversarial": [("COCO_c.jpg", "cup", "yes")]}
    root = build_pope_hf(base / "ok", labels)
    # Same image_source, different bytes in another split: stored under a second, suffixed name.
    cols = _pope_hf_columns("popular", {"popular": [("COCO_a.jpg", "car", "no")]})
    cols["image"] = [png_bytes((9, 9, 9))]
    write_hf_parquet(root / "Full" / "popular-00000-of-00001.parquet", cols)
    out = tmp_path / "eval"
    entry = prep.prepare_task("pope", out, hf_path=str(root), cache_dir=str(tmp_path / "cache"))
    digest = hashlib.sha256(png_bytes((9, 9, 9))).hexdigest()[:10]
    assert sorted(p.name for p in (out / "pope" / "val2014").iterdir()) == sorted(
        ["COCO_a.jpg", f"COCO_a__{digest}.jpg", "COCO_c.jpg"])
    assert len(entry["warnings"]) == 1 and "two different images" in entry["warnings"][0]
    assert entry["verified"]["identical_to_hf"] is True

    # image_source "../../evil" must not leave the output folder
    bad = build_pope_hf(base / "bad", labels)
    cols = _pope_hf_columns("random", labels)
    cols["image_source"] = ["../../evil", "COCO_a"]
    write_hf_parquet(bad / "Full" / "random-00000-of-00001.parquet", cols)
    with pytest.raises(DataError, match="not a plain file name"):
        prep.prepare_task("pope", tmp_path / "eval2", hf_path=str(bad), cache_dir=str(tmp_path / "cache"))
    assert not (tmp_path / "evil").exists() and not (tmp_path / "evil.jpg").exists()
    writer = prep.LayoutWriter(tmp_path / "eval3")
    with pytest.raises(DataError, match="escapes"):
        writer.write_bytes("../outside.txt", b"x")
    assert not (tmp_path / "outside.txt").exists()


def test_option_errors(hf_copies, tmp_path):
    with pytest.raises(ConfigError, match="does not support textvqa"):
        prep.prepare(["gqa", "textvqa"], tmp_path / "o")
    with pytest.raises(ConfigError, match="not in --tasks"):
        prep.prepare(["gqa"], tmp_path / "o", hf_paths={"pope": hf_copies["pope"]})
    with pytest.raises(ConfigError, match="TASK=PATH"):
        run_prepare(["prepare", "--tasks", "gqa", "--out", str(tmp_path / "o"), "--hf-path", "gqa"])
    with pytest.raises(ConfigError, match="--tasks"):
        run_prepare(["prepare", "--out", str(tmp_path / "o")])
    (tmp_path / "o").mkdir(exist_ok=True)
    (tmp_path / "o" / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="manifest"):
        prep.read_manifest(tmp_path / "o")
    assert not list((tmp_path / "o").glob("gqa"))
