"""The toy world and the toy benchmarks: determinism, real on-disk layouts, formats, exact answers."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aligngpt.toy import CHANCE_LEVELS, TASKS, chance_levels, generate_toy_data, write_benchmarks
from aligngpt.toy import font, text as T
from aligngpt.tasks.mme.toy import MME_COGNITION, MME_PERCEPTION, MME_SUBTASKS
from aligngpt.tasks.pope.toy import POPE_SPLITS
from aligngpt.toy.layout import LETTERS, MC_ANSWER, MC_ANSWER_CN, SHORT_ANSWER, VIZWIZ_SUFFIX
from aligngpt.toy.world import (
    BACKGROUNDS, COLORS, SHAPES, Scene, ToyObject, ToyText, render_scene, render_text_card, rng_for, sample_scene,
)

N = 60  # questions per task in the shared suite (small: the whole file stays fast)


@pytest.fixture(scope="module")
def suite(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("toy")
    generate_toy_data(out, seed=3, n_per_task=N, n_pretrain=80, n_instruct=150)
    return out


@pytest.fixture(scope="module")
def ev(suite) -> Path:
    return suite / "eval"


def jsonl(path: Path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        assert line.strip(), f"blank line in {path}"
        rows.append(json.loads(line))
    return rows


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.int32)


def nearest(rgb, table: dict) -> str:
    return min(table, key=lambda k: sum((int(a) - int(b)) ** 2 for a, b in zip(rgb, table[k])))


def dominant_color(path: Path, table: dict, exclude: str | None = None) -> str:
    """Most frequent palette colour (nearest-colour vote over all pixels)."""
    arr = pixels(path).reshape(-1, 3)
    names = list(table)
    ref = np.array([table[k] for k in names])
    idx = ((arr[:, None, :] - ref[None]) ** 2).sum(-1).argmin(1)
    dist = ((arr - ref[idx]) ** 2).sum(-1)
    votes = Counter(names[i] for i, d in zip(idx, dist) if d < 900 and names[i] != exclude)
    return votes.most_common(1)[0][0]


# --- determinism and speed ------------------------------------------------------------------

def test_same_seed_gives_byte_identical_files_across_processes(tmp_path):
    kw = dict(seed=11, n_per_task=12, n_pretrain=10, n_instruct=20)
    generate_toy_data(tmp_path / "a", **kw)
    # A second generation in a fresh interpreter with another hash seed: set/dict-order or
    # global-state dependence would show up as a different byte.
    # The toy package needs nothing else from aligngpt: a bare parent package skips importing
    # the model stack (torch/transformers) in the child, which would cost seconds.
    pkg_dir = Path(T.__file__).resolve().parents[1]
    code = ("import sys, types; pkg = types.ModuleType('aligngpt'); pkg.__path__ = [sys.argv[2]]; "
            "sys.modules['aligngpt'] = pkg; from aligngpt.toy import generate_toy_data; "
            "generate_toy_data(sys.argv[1], seed=11, n_per_task=12, n_pretrain=10, n_instruct=20)")
    env = dict(os.environ, PYTHONHASHSEED="12345")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b"), str(pkg_dir)], check=True, env=env)
    a, b = tree_digest(tmp_path / "a"), tree_digest(tmp_path / "b")
    assert len(a) > 200
    assert a == b
    # ... and another seed changes the data.
    generate_toy_data(tmp_path / "c", **{**kw, "seed": 12})
    c = tree_digest(tmp_path / "c")
    assert c["eval/gqa/llava_gqa_testdev_balanced.jsonl"] != a["eval/gqa/llava_gqa_testdev_balanced.jsonl"]


def test_default_suite_is_fast(tmp_path):
    # The brief: the whole default toy suite in < 30 s on a 2-core CPU; it takes ~4 s here.
    t0 = time.perf_counter()
    manifest = write_benchmarks(tmp_path, seed=0)
    elapsed = time.perf_counter() - t0
    assert elapsed < 30
    assert manifest["n_per_task"] == 300
    assert manifest["benchmarks"]["gqa"]["questions"] == 300


def test_unknown_benchmark_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown toy benchmark"):
        write_benchmarks(tmp_path, benchmarks=["gqa", "nope"])


# --- layout ---------------------------------------------------------------------------------

LAYOUT = [
    "gqa/llava_gqa_testdev_balanced.jsonl", "gqa/data/testdev_balanced_questions.json", "gqa/data/images",
    "pope/llava_pope_test.jsonl", "pope/coco/coco_pope_random.json", "pope/coco/coco_pope_popular.json",
    "pope/coco/coco_pope_adversarial.json", "pope/val2014",
    "MME/llava_mme.jsonl", "MME/MME_Benchmark_release_version",
    "scienceqa/llava_test_CQM-A.json", "scienceqa/problems.json", "scienceqa/pid_splits.json", "scienceqa/images/test",
    "textvqa/llava_textvqa_val_v051_ocr.jsonl", "textvqa/TextVQA_0.5.1_val.json", "textvqa/train_images",
    "seed_bench/llava-seed-bench.jsonl", "seed_bench/SEED-Bench.json", "seed_bench/SEED-Bench-image",
    "vqav2/llava_vqav2_mscoco_test-dev2015.jsonl", "vqav2/llava_vqav2_mscoco_test2015.jsonl", "vqav2/test2015",
    "vqav2/v2_OpenEnded_mscoco_val2014_questions.json", "vqav2/v2_mscoco_val2014_annotations.json", "vqav2/val2014",
    "vizwiz/llava_test.jsonl", "vizwiz/test", "vizwiz/val.json", "vizwiz/val",
    "mmbench/mmbench_dev_20230712.tsv", "mmbench/mmbench_dev_cn_20231003.tsv",
    "llava-bench-in-the-wild/questions.jsonl", "llava-bench-in-the-wild/context.jsonl",
    "llava-bench-in-the-wild/answers_gpt4.jsonl", "llava-bench-in-the-wild/images",
    "mm-vet/llava-mm-vet.jsonl", "mm-vet/mm-vet.json", "mm-vet/images",
]


def test_every_benchmark_path_of_the_llava_layout_exists(ev, suite):
    missing = [p for p in LAYOUT if not (ev / p).exists()]
    assert not missing
    for folder in [p for p in LAYOUT if "." not in Path(p).name]:
        assert any((ev / folder).iterdir()), folder
    assert (suite / "LLaVA-Pretrain/blip_laion_cc_sbu_558k.json").is_file()
    assert (suite / "llava_v1_5_mix665k.json").is_file()
    assert (suite / "toy_manifest.json").is_file() and (ev / "toy_manifest.json").is_file()


def test_image_references_resolve_and_decode(ev):
    """Every image a question file names exists, decodes, and has the encoding its name implies."""
    refs = [(ev / "gqa/data/images", r["image"]) for r in jsonl(ev / "gqa/llava_gqa_testdev_balanced.jsonl")]
    refs += [(ev / "pope/val2014", r["image"]) for r in jsonl(ev / "pope/llava_pope_test.jsonl")]
    refs += [(ev / "MME/MME_Benchmark_release_version", r["image"]) for r in jsonl(ev / "MME/llava_mme.jsonl")]
    refs += [(ev / "textvqa/train_images", r["image"]) for r in jsonl(ev / "textvqa/llava_textvqa_val_v051_ocr.jsonl")]
    refs += [(ev / "seed_bench", r["image"]) for r in jsonl(ev / "seed_bench/llava-seed-bench.jsonl")]
    refs += [(ev / "vqav2/test2015", r["image"]) for r in jsonl(ev / "vqav2/llava_vqav2_mscoco_test2015.jsonl")]
    refs += [(ev / "vizwiz/test", r["image"]) for r in jsonl(ev / "vizwiz/llava_test.jsonl")]
    refs += [(ev / "llava-bench-in-the-wild/images", r["image"]) for r in jsonl(ev / "llava-bench-in-the-wild/questions.jsonl")]
    refs += [(ev / "mm-vet/images", r["image"]) for r in jsonl(ev / "mm-vet/llava-mm-vet.jsonl")]
    sqa = json.loads((ev / "scienceqa/llava_test_CQM-A.json").read_text())
    refs += [(ev / "scienceqa/images/test", e["image"]) for e in sqa if "image" in e]
    for folder, rel in refs:
        path = folder / rel
        with Image.open(path) as im:
            im.load()
            expected = "PNG" if rel.endswith(".png") else "JPEG"  # SEED names have no extension: JPEG
            assert im.format == expected, rel
            assert im.mode == "RGB"


# --- formats --------------------------------------------------------------------------------

def test_gqa_files(ev):
    lines = jsonl(ev / "gqa/llava_gqa_testdev_balanced.jsonl")
    qs = json.loads((ev / "gqa/data/testdev_balanced_questions.json").read_text())
    assert len(lines) == N and set(qs) == {r["question_id"] for r in lines}
    for r in lines:
        assert set(r) == {"question_id", "image", "text", "category"}
        assert isinstance(r["question_id"], str) and r["question_id"].isdigit()  # GQA ids are digit strings
        q = qs[r["question_id"]]
        assert r["text"] == q["question"] + SHORT_ANSWER
        assert r["image"] == q["imageId"] + ".jpg" and q["imageId"].startswith("n")
        assert q["isBalanced"] is True and q["answer"] == q["answer"].lower()
        assert q["types"]["structural"] in {"verify", "query", "choose", "logical", "compare"}
        if q["types"]["structural"] != "query":  # binary questions have two-way answers
            assert q["answer"] in {"yes", "no"} or q["types"]["structural"] == "choose"
    structural = Counter(q["types"]["structural"] for q in qs.values())
    assert structural["query"] > 0 and len(qs) - structural["query"] > 0  # both open and binary


def test_pope_files_follow_llava_ids_and_order(ev):
    lines = jsonl(ev / "pope/llava_pope_test.jsonl")
    assert [r["category"] for r in lines] == [s for s in POPE_SPLITS for _ in range(N)]
    offsets = {"adversarial": 0, "random": 10_000_000, "popular": 20_000_000}
    for split in POPE_SPLITS:
        labels = jsonl(ev / f"pope/coco/coco_pope_{split}.json")
        mine = [r for r in lines if r["category"] == split]
        assert len(labels) == len(mine) == N
        assert Counter(r["label"] for r in labels) == {"yes": N // 2, "no": N // 2}
        for k, (lab, q) in enumerate(zip(labels, mine), start=1):
            assert set(lab) == {"question_id", "image", "text", "label"}
            assert lab["question_id"] == k and q["question_id"] == offsets[split] + k
            assert q["image"] == lab["image"] and q["text"] == lab["text"] + SHORT_ANSWER
            assert lab["label"] == ("yes" if k % 2 else "no")  # yes/no alternate, as in the pinned POPE files
            assert lab["image"].startswith("COCO_val2014_") and lab["image"].endswith(".jpg")
    # The real files' quirk for vowel-initial objects.
    ovals = [r["text"] for r in lines if " oval " in r["text"]]
    assert ovals and all(t.startswith("Is there an oval in the imange?") for t in ovals)


def test_mme_files(ev):
    base = ev / "MME/MME_Benchmark_release_version"
    lines = jsonl(ev / "MME/llava_mme.jsonl")
    assert len(lines) % 2 == 0
    assert {r["category"] for r in lines} == {s[0] for s in MME_SUBTASKS}
    assert len(MME_PERCEPTION) == 10 and len(MME_COGNITION) == 4
    split_style = {s[0] for s in MME_SUBTASKS if s[4]}
    assert split_style == {"artwork", "celebrity", "landmark", "posters", "scene"}
    double_space = 0
    for a, b in zip(lines[::2], lines[1::2]):
        assert a["question_id"] == b["question_id"] == a["image"] == b["image"]  # one id per image
        cat = a["category"]
        rel = Path(a["image"])
        assert rel.parts[0] == cat
        if cat in split_style:
            assert rel.parts[1] == "images"
            gt = base / cat / "questions_answers_YN" / (rel.stem + ".txt")
        else:
            assert len(rel.parts) == 2
            gt = base / cat / (rel.stem + ".txt")
        assert rel.suffix == (".png" if cat in MME_COGNITION else ".jpg")
        gt_lines = gt.read_text(encoding="utf-8").splitlines()
        assert len(gt_lines) == 2
        for row, gt_line, want in ((a, gt_lines[0], "Yes"), (b, gt_lines[1], "No")):
            question, answer = gt_line.split("\t")
            assert answer == want
            assert row["text"].endswith(SHORT_ANSWER) and "Please answer" not in row["text"]
            plain = row["text"][: -len(SHORT_ANSWER)]
            # LLaVA's converter: append " Please answer yes or no.", else try the double-space form.
            if question == plain + " Please answer yes or no.":
                continue
            assert question == plain + "  Please answer yes or no."
            double_space += 1
    assert double_space > 0  # the real GT quirk is exercised


def test_scienceqa_files(ev):
    llava = json.loads((ev / "scienceqa/llava_test_CQM-A.json").read_text())
    problems = json.loads((ev / "scienceqa/problems.json").read_text())
    splits = json.loads((ev / "scienceqa/pid_splits.json").read_text())
    assert {"train", "val", "test", "trainval", "minitrain", "minival", "minitest"} <= set(splits)
    assert [e["id"] for e in llava] == splits["test"]
    with_image = 0
    for e in llava:
        p = problems[e["id"]]
        assert set(p) >= {"question", "choices", "answer", "hint", "image", "subject", "topic", "grade",
                          "lecture", "solution", "split"}
        assert p["split"] == "test" and 2 <= len(p["choices"]) <= 5
        human, gpt = e["conversations"]
        assert human["from"] == "human" and gpt["from"] == "gpt"
        assert gpt["value"] == LETTERS[p["answer"]]
        expect = (("<image>\n" if p["image"] else "") + (f"Context: {p['hint']}\n" if p["hint"] else "")
                  + p["question"] + "".join(f"\n{LETTERS[i]}. {c}" for i, c in enumerate(p["choices"])))
        assert human["value"] == expect
        assert ("image" in e) == (p["image"] == "image.png")
        if p["image"]:
            with_image += 1
            assert e["image"] == f"{e['id']}/image.png" and (ev / "scienceqa/images/test" / e["image"]).is_file()
    assert 0 < with_image < len(llava)  # text-only problems too, so accuracy != img_accuracy
    assert (ev / "scienceqa/llava_test_CQM-A.json").read_text().startswith('[\n  {\n    "id": ')  # indent=2


def test_textvqa_files(ev):
    lines = jsonl(ev / "textvqa/llava_textvqa_val_v051_ocr.jsonl")
    ann = json.loads((ev / "textvqa/TextVQA_0.5.1_val.json").read_text())
    assert {ann["dataset_type"], ann["dataset_name"], ann["dataset_version"]} == {"val", "textvqa", "0.5.1"}
    by_key = {(d["image_id"], d["question"].lower()): d for d in ann["data"]}
    assert len(by_key) == len(ann["data"]) == len(lines) == N  # the LLaVA join key is unique
    for r in lines:
        q, ocr, suffix = r["text"].split("\n")
        assert "\n" + suffix == SHORT_ANSWER and ocr.startswith("Reference OCR token: ")
        assert r["question_id"] == r["image"][:-4] and len(r["question_id"]) == 16  # image id as question id
        d = by_key[(r["question_id"], q.lower())]
        assert q == d["question"][0].upper() + d["question"][1:]
        assert len(d["answers"]) == 10 and isinstance(d["question_id"], int)
        tokens = ocr[len("Reference OCR token: "):]
        if q.startswith("What word is written") and tokens:
            # The OCR token is the word drawn, which is also the crowd's majority answer.
            assert tokens.split(", ")[0].lower() == Counter(d["answers"]).most_common(1)[0][0]


def test_seed_files(ev):
    data = json.loads((ev / "seed_bench/SEED-Bench.json").read_text())
    lines = jsonl(ev / "seed_bench/llava-seed-bench.jsonl")
    qt = data["question_type"]
    assert qt["Instance Location"] == 3 and qt["Instance Attributes"] == 4 and qt["Text Understanding"] == 9
    names = {v: k for k, v in qt.items()}
    by_id = {q["question_id"]: q for q in data["questions"]}
    assert len(by_id) == len(lines)
    n_img = 0
    for r in lines:
        q = by_id[str(r["question_id"])]
        assert isinstance(q["question_id"], str)
        opts = [q["choice_a"], q["choice_b"], q["choice_c"], q["choice_d"]]
        assert r["text"] == q["question"] + "".join(f"\n{L}. {o}" for L, o in zip("ABCD", opts)) + MC_ANSWER
        assert r["category"] == names[q["question_type_id"]] and q["answer"] in "ABCD"
        if q["data_type"] == "image":
            n_img += 1
            assert isinstance(r["question_id"], int) and 1 <= q["question_type_id"] <= 9
            assert r["image"] == f"SEED-Bench-image/{q['data_id']}" and "." not in q["data_id"]
        else:
            assert q["data_type"] == "video" and q["question_id"].startswith("v") and 10 <= q["question_type_id"] <= 12
            assert r["image"] == f"SEED-Bench-video-image/{q['question_type_id']}_{q['question_id']}.png"
            assert ("segment" in q) == (q["question_type_id"] in (11, 12))
    assert n_img == N and Counter(q["question_type_id"] for q in data["questions"] if q["data_type"] == "image").keys() == set(range(1, 10))


def test_vqav2_files(ev):
    dev = jsonl(ev / "vqav2/llava_vqav2_mscoco_test-dev2015.jsonl")
    full = jsonl(ev / "vqav2/llava_vqav2_mscoco_test2015.jsonl")
    assert len(dev) == N and len(full) > N
    full_ids = [r["question_id"] for r in full]
    assert len(set(full_ids)) == len(full_ids) and {r["question_id"] for r in dev} <= set(full_ids)
    for r in full:
        assert isinstance(r["question_id"], int) and r["text"].endswith(SHORT_ANSWER)
        assert r["image"] == f"COCO_test2015_{r['question_id'] // 1000:012d}.jpg"  # qid = image id * 1000 + k
    qs = json.loads((ev / "vqav2/v2_OpenEnded_mscoco_val2014_questions.json").read_text())
    an = json.loads((ev / "vqav2/v2_mscoco_val2014_annotations.json").read_text())
    assert qs["data_subtype"] == an["data_subtype"] == "val2014"
    assert [q["question_id"] for q in qs["questions"]] == [a["question_id"] for a in an["annotations"]]
    for a in an["annotations"]:
        assert a["answer_type"] in {"yes/no", "number", "other"} and len(a["answers"]) == 10
        assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
        # The canonical answer is always the crowd majority.
        assert Counter(x["answer"] for x in a["answers"]).most_common(1)[0][0] == a["multiple_choice_answer"]
        assert (ev / f"vqav2/val2014/COCO_val2014_{a['image_id']:012d}.jpg").is_file()


def test_vizwiz_files(ev):
    test = jsonl(ev / "vizwiz/llava_test.jsonl")
    assert [r["question_id"] for r in test] == list(range(N))
    assert all(r["text"].endswith(VIZWIZ_SUFFIX) and r["image"] == f"VizWiz_test_{r['question_id']:08d}.jpg" for r in test)
    val = json.loads((ev / "vizwiz/val.json").read_text())
    assert len(val) == N
    types = Counter(v["answer_type"] for v in val)
    assert set(types) <= {"yes/no", "number", "other", "unanswerable"} and types["unanswerable"] > 0
    for v in val:
        assert set(v) == {"image", "question", "answers", "answer_type", "answerable"}
        assert len(v["answers"]) == 10 and (v["answerable"] == 0) == (v["answer_type"] == "unanswerable")
        assert (ev / "vizwiz/val" / v["image"]).is_file()


def test_mmbench_tsvs_with_circular_copies(ev):
    cols = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image", "source",
            "l2-category", "comment", "split"]
    en = pd.read_csv(ev / "mmbench/mmbench_dev_20230712.tsv", sep="\t")
    cn = pd.read_csv(ev / "mmbench/mmbench_dev_cn_20231003.tsv", sep="\t")
    for df, suffix_lang in ((en, "en"), (cn, "cn")):
        assert list(df.columns) == cols
        assert (df["split"] == "dev").all()
        main = df[df["index"] < 1_000_000]
        for _, row in main.iterrows():
            group = df[df["index"] % 1_000_000 == row["index"]].sort_values("index")
            n_opt = sum(isinstance(row[c], str) or not pd.isna(row[c]) for c in "ABCD")
            assert len(group) == n_opt and n_opt in (2, 4)  # every rotation present
            gold = str(row[row["answer"]])
            for k, (_, g) in enumerate(group.iterrows()):
                assert g["index"] == row["index"] + k * 1_000_000
                assert str(g[g["answer"]]) == gold  # the answer letter follows the rotated option
                assert [str(g[c]) for c in "ABCD"[:n_opt]] == [str(row[c]) for c in "ABCD"[:n_opt]][k:] + \
                    [str(row[c]) for c in "ABCD"[:n_opt]][:k]
        img = Image.open(io.BytesIO(base64.b64decode(main.iloc[0]["image"])))
        assert img.size[0] > 0 and img.format == "JPEG"
    assert en["hint"].isna().any() and (~en["hint"].isna()).any()
    assert set(cn["index"]) <= set(en["index"]) and len(cn) > len(en) // 2
    assert en["l2-category"].isin({"coarse_perception", "finegrained_perception (instance-level)",
                                   "finegrained_perception (cross-instance)", "attribute_reasoning",
                                   "relation_reasoning", "logic_reasoning"}).all()


def test_llava_bench_and_mmvet_files(ev):
    lb = ev / "llava-bench-in-the-wild"
    qs, ctx, refs = jsonl(lb / "questions.jsonl"), jsonl(lb / "context.jsonl"), jsonl(lb / "answers_gpt4.jsonl")
    assert len(qs) == len(refs) == N
    assert {c["image"] for c in ctx} == {q["image"] for q in qs}
    for q, a in zip(qs, refs):  # the official review script zips these files line by line
        assert set(q) == {"question_id", "image", "text", "category"} and q["category"] in {"conv", "detail", "complex"}
        assert a["question_id"] == q["question_id"] and a["prompt"] == q["text"] and a["model_id"] == "gpt-4-0314"
        assert set(a) == {"question_id", "prompt", "text", "answer_id", "model_id", "metadata"}
    mv = json.loads((ev / "mm-vet/mm-vet.json").read_text())
    lines = jsonl(ev / "mm-vet/llava-mm-vet.jsonl")
    assert list(mv) == [f"v1_{i}" for i in range(N)] and [r["question_id"] for r in lines] == list(range(N))
    for r in lines:
        m = mv[f"v1_{r['question_id']}"]
        assert r == {"image": m["imagename"], "text": m["question"], "category": "conv", "question_id": r["question_id"]}
        assert set(m["capability"]) <= {"rec", "ocr", "know", "gen", "spat", "math"} and m["capability"]
        first = int(m["imagename"][3:].split(".")[0])
        assert first <= r["question_id"] and m["imagename"].endswith((".png", ".jpg"))  # named after its first question
    assert any("<AND>" in m["answer"] for m in mv.values()) and any("<OR>" in m["answer"] for m in mv.values())


# --- answers agree with the pictures --------------------------------------------------------

def test_gqa_background_answers_match_pixels(ev):
    qs = json.loads((ev / "gqa/data/testdev_balanced_questions.json").read_text())
    checked = 0
    for q in qs.values():
        if q["question"] == "What color is the background?":
            assert dominant_color(ev / "gqa/data/images" / f"{q['imageId']}.jpg", BACKGROUNDS) == q["answer"]
            checked += 1
    assert checked >= 1


def test_vizwiz_color_answers_match_pixels(ev):
    checked = 0
    for v in json.loads((ev / "vizwiz/val.json").read_text()):
        if v["question"] == "What color is this?" and v["answerable"]:
            gold = Counter(a["answer"] for a in v["answers"]).most_common(1)[0][0]
            # The single object is the most common non-background colour.
            assert dominant_color(ev / "vizwiz/val" / v["image"], COLORS) == gold
            checked += 1
    assert checked >= 1


def test_pope_negative_samplers(ev):
    """popular = most frequent absent shapes; adversarial = absent shapes co-occurring most; random otherwise."""
    by_split = {s: jsonl(ev / f"pope/coco/coco_pope_{s}.json") for s in POPE_SPLITS}
    shape_of = lambda t: t.split()[3]  # "Is there a X in the image?"
    present: dict[str, set] = defaultdict(set)
    for r in by_split["random"]:
        if r["label"] == "yes":
            present[r["image"]].add(shape_of(r["text"]))
    assert all(len(s) == 3 for s in present.values())
    for split in POPE_SPLITS:  # every split agrees on what is in each picture
        for r in by_split[split]:
            assert (shape_of(r["text"]) in present[r["image"]]) == (r["label"] == "yes")
    freq = Counter(s for shapes in present.values() for s in shapes)
    cooc = Counter((a, b) for shapes in present.values() for a in shapes for b in shapes if a != b)
    for split, key in (("popular", lambda img, s: (-freq[s], SHAPES.index(s))),
                       ("adversarial", lambda img, s: (-sum(cooc[(p, s)] for p in present[img]), SHAPES.index(s)))):
        negs: dict[str, list] = defaultdict(list)
        for r in by_split[split]:
            if r["label"] == "no":
                negs[r["image"]].append(shape_of(r["text"]))
        for img, got in negs.items():
            absent = [s for s in SHAPES if s not in present[img]]
            want = sorted(absent, key=lambda s: key(img, s))[: len(got)]
            assert sorted(got) == sorted(want), (split, img)


def test_text_questions_answer_what_was_drawn():
    """Question families on hand-built scenes (exact answers by construction)."""
    sc = Scene(
        objects=(ToyObject("circle", "red", "large", 0, 0), ToyObject("star", "blue", "small", 0, 2),
                 ToyObject("star", "blue", "large", 2, 1)),
        background="white", text=ToyText("CAT", "green", 1))
    rng = rng_for(0, "test")
    assert T.ref(sc, sc.objects[0]) == "circle"
    assert T.ref(sc, sc.objects[1]) == "small star"  # colour is shared, size is not
    assert T.ref(sc, sc.objects[1], ("size",)) == "star in the top right corner"
    assert sc.count("star") == 2 and sc.count("star", "blue") == 2 and not sc.has("oval")
    qa = T.q_color(sc, rng_for(1, "c"))
    assert qa.answer == {"circle": "red", "small star": "blue", "large star": "blue"}[
        qa.question.removeprefix("What color is the ").rstrip("?")]
    qa = T.q_word(sc, rng)
    assert (qa.answer, qa.option_answer) == ("cat", "CAT") and "CAT" in qa.options
    qa = T.q_background(sc, rng)
    assert qa.answer == "white" and qa.options[qa.answer_index] == "white"
    assert T.ask("most_corners", sc, rng).answer == "star"
    for _ in range(20):
        qa = T.q_count(sc, rng)
        assert qa.answer == str(sc.count(qa.meta["shape"]))
        lo = T.q_left_of(sc, rng)
        a, b = (next(o for o in sc.objects if o.cell == tuple(lo.meta[k])) for k in ("a", "b"))
        assert lo.answer == ("yes" if (a.col < b.col) == (" left " in lo.question) else "no")
    assert "circle" in T.caption_full(sc, rng) and "CAT" in T.caption_full(sc, rng)
    assert T.detailed_description(sc).count("There are two stars") == 1


def test_captions_full_partial_wrong():
    rng = rng_for(5, "captions")
    for _ in range(40):
        sc = sample_scene(rng, n_objects=3, n_distinct=3)
        full = T.caption_full(sc, rng)
        assert all(o.shape in full and o.color in full for o in sc.objects) and sc.background in full
        part, cov = T.caption_partial(sc, rng)
        named = [o for o in sc.objects if f"{o.color} {o.shape}" in part]
        assert 0 < len(named) < 3 and cov == pytest.approx(len(named) / 3, abs=1e-3)
        wrong = T.caption_wrong(sc, rng)
        assert not any(s in wrong for s in sc.shapes()) and f"{sc.background} background" not in wrong


def test_block_font_renders_exact_glyphs():
    """OCR questions are answerable: the drawn ink is exactly the glyph grid, crisp at 48 px."""
    img = render_text_card("12+34=", size=48)
    arr = pixels_from(img)
    ink = arr.sum(-1) < 200  # black text on white
    ys, xs = np.nonzero(ink)
    scale = font.fit_scale("12+34=", 44, 14)
    cells = {(x, y) for x, y in font.ink_cells("12+34=")}
    drawn = {((x - xs.min()) // scale, (y - ys.min()) // scale) for x, y in zip(xs, ys)}
    assert drawn == {(x - min(c[0] for c in cells), y - min(c[1] for c in cells)) for x, y in cells}
    assert not (~ink & (arr.sum(-1) < 600)).any()  # no grey, half-covered pixels
    with pytest.raises(ValueError):
        font.check_text("lower")


def pixels_from(img: Image.Image) -> np.ndarray:
    return np.asarray(img.convert("RGB"), dtype=np.int32)


def test_rendering_is_a_pure_function_of_the_scene():
    sc = sample_scene(rng_for(9, "r"), word="STOP")
    a, b = render_scene(sc), render_scene(Scene.from_dict(json.loads(json.dumps(sc.to_dict()))))
    assert a.tobytes() == b.tobytes() and a.size == (48, 48)
    assert render_scene(sc, (64, 48)).size == (64, 48)
    blurred = render_scene(Scene(sc.objects, sc.background, sc.text, blur=True))
    assert np.abs(pixels_from(blurred) - pixels_from(a)).mean() > 5


# --- training data --------------------------------------------------------------------------

def test_pretrain_pairs_and_alignment_sidecar(suite):
    recs = json.loads((suite / "LLaVA-Pretrain/blip_laion_cc_sbu_558k.json").read_text())
    side = json.loads((suite / "LLaVA-Pretrain/toy_alignment.json").read_text())
    assert len(recs) == 80 and [r["id"] for r in recs] == list(side)
    for r in recs:
        assert set(r) == {"id", "image", "conversations"}  # the real format; truth lives in the sidecar
        assert r["conversations"][0] == {"from": "human", "value": "<image>"}
        assert r["conversations"][1]["from"] == "gpt" and r["conversations"][1]["value"]
        assert (suite / "LLaVA-Pretrain/images" / r["image"]).is_file()
    kinds = Counter(v["alignment"] for v in side.values())
    assert set(kinds) == {"full", "partial", "wrong"}
    assert all((v["coverage"] == 1.0) == (v["alignment"] == "full") for v in side.values())
    assert all((v["coverage"] == 0.0) == (v["alignment"] == "wrong") for v in side.values())


def test_instruction_mix(suite):
    recs = json.loads((suite / "llava_v1_5_mix665k.json").read_text())
    assert len(recs) == 150 and len({r["id"] for r in recs}) == 150
    suffixes = Counter()
    for r in recs:
        conv = r["conversations"]
        assert len(conv) % 2 == 0 and [t["from"] for t in conv] == ["human", "gpt"] * (len(conv) // 2)
        first = conv[0]["value"]
        if "image" in r:
            assert first.startswith("<image>\n") and (suite / r["image"]).is_file()
            assert sum(t["value"].count("<image>") for t in conv) == 1
        else:
            assert "<image>" not in first
        for t in conv[::2]:
            for name, s in (("short", SHORT_ANSWER), ("mc", MC_ANSWER), ("mc_cn", MC_ANSWER_CN), ("vizwiz", VIZWIZ_SUFFIX)):
                if t["value"].endswith(s):
                    suffixes[name] += 1
            if t["value"].endswith(MC_ANSWER):
                assert conv[conv.index(t) + 1]["value"] in LETTERS
    assert all(suffixes[k] > 0 for k in ("short", "mc", "mc_cn", "vizwiz"))
    assert any("image" not in r for r in recs)  # text-only samples
    assert any(len(r["conversations"]) > 2 for r in recs)  # multi-turn


# --- chance levels --------------------------------------------------------------------------

def test_chance_levels(ev):
    got = chance_levels(ev)
    assert set(CHANCE_LEVELS) == set(TASKS) and set(got) == set(TASKS)
    for task, spec in CHANCE_LEVELS.items():
        for metric, value in spec["metrics"].items():
            if value is not None:
                assert got[task][metric] == pytest.approx(value)
    # Recompute two data-dependent ones from the files themselves.
    problems = json.loads((ev / "scienceqa/problems.json").read_text())
    test = [problems[p] for p in json.loads((ev / "scienceqa/pid_splits.json").read_text())["test"]]
    img = [1 / len(p["choices"]) for p in test if p["image"]]
    assert got["scienceqa_img"]["img_accuracy"] == pytest.approx(100 * np.mean(img))
    en = pd.read_csv(ev / "mmbench/mmbench_dev_20230712.tsv", sep="\t")
    sizes = Counter(i % 1_000_000 for i in en["index"])
    assert got["mmbench"]["circular_accuracy"] == pytest.approx(100 * np.mean([(1 / k) ** k for k in sizes.values()]))
    assert got["pope"]["always_yes"]["f1"] == pytest.approx(200 / 3)  # P=0.5, R=1 -> F1=2/3


# --- round trip through the project's loaders and evaluators --------------------------------

def _gold_predictions(task: str, ev: Path, samples) -> dict[str, str]:
    """Perfect answers for each sample, looked up in the toy files by contract-level fields only."""
    preds: dict[str, str] = {}
    if task == "gqa":
        qs = json.loads((ev / "gqa/data/testdev_balanced_questions.json").read_text())
        return {s.key: qs[str(s.question_id)]["answer"] for s in samples}
    if task == "pope":
        labels = {sp: jsonl(ev / f"pope/coco/coco_pope_{sp}.json") for sp in POPE_SPLITS}
        split_of = {0: "adversarial", 1: "random", 2: "popular"}
        for s in samples:
            qid = int(s.question_id)
            preds[s.key] = labels[split_of[qid // 10_000_000]][qid % 10_000_000 - 1]["label"].capitalize()
        return preds
    if task == "mme":
        base = ev / "MME/MME_Benchmark_release_version"
        for s in samples:
            rel = Path(s.image).relative_to(base)
            gt_dir = base / rel.parts[0] / ("questions_answers_YN" if rel.parts[1] == "images" else "")
            gt = dict(line.split("\t") for line in (gt_dir / (rel.stem + ".txt")).read_text().splitlines())
            q = s.question[: -len(SHORT_ANSWER)]
            preds[s.key] = gt.get(q + " Please answer yes or no.") or gt[q + "  Please answer yes or no."]
        return preds
    if task == "scienceqa_img":
        problems = json.loads((ev / "scienceqa/problems.json").read_text())
        return {s.key: LETTERS[problems[str(s.question_id)]["answer"]] for s in samples}
    if task == "textvqa":
        ann = json.loads((ev / "textvqa/TextVQA_0.5.1_val.json").read_text())["data"]
        by = {(d["image_id"], d["question"].lower()): d["answers"] for d in ann}
        for s in samples:
            key = (Path(s.image).stem, s.question.split("\n")[0].lower())
            preds[s.key] = Counter(by[key]).most_common(1)[0][0]
        return preds
    if task == "seed_image":
        qs = {q["question_id"]: q for q in json.loads((ev / "seed_bench/SEED-Bench.json").read_text())["questions"]}
        return {s.key: qs[str(s.question_id)]["answer"] for s in samples}
    if task in ("mmbench", "mmbench_cn"):
        name = "mmbench_dev_20230712.tsv" if task == "mmbench" else "mmbench_dev_cn_20231003.tsv"
        df = pd.read_csv(ev / "mmbench" / name, sep="\t")
        ans = dict(zip(df["index"].astype(int), df["answer"]))
        return {s.key: ans[int(s.question_id)] for s in samples}
    raise KeyError(task)


@pytest.mark.parametrize("task", ["gqa", "pope", "mme", "scienceqa_img", "textvqa", "seed_image", "mmbench", "mmbench_cn"])
def test_perfect_answers_score_full_marks_with_project_evaluators(task, ev):
    """The toy files are read by the project's loaders exactly as the real ones (skipped until those exist)."""
    from aligngpt.data.base import get_loader
    from aligngpt.errors import ConfigError
    from aligngpt.evaluators.base import get_evaluator

    try:
        loader, evaluator = get_loader(task, "local"), get_evaluator(task)
    except (ConfigError, ImportError) as exc:
        pytest.skip(f"no local loader/evaluator for {task} yet: {exc}")
    samples = loader(ev)
    assert len({s.key for s in samples}) == len(samples) > 0
    result = evaluator.score(samples, _gold_predictions(task, ev, samples))
    full = {"gqa": ("accuracy", 100.0), "pope": ("f1", 100.0), "mme": ("perception", 2000.0),
            "scienceqa_img": ("img_accuracy", 100.0), "textvqa": ("accuracy", 100.0),
            "seed_image": ("image_accuracy", 100.0), "mmbench": ("circular_accuracy", 100.0),
            "mmbench_cn": ("circular_accuracy", 100.0)}[task]
    assert result.metrics[full[0]] == pytest.approx(full[1])
