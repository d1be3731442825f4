"""Security: data files, checkpoints and judge replies come from outside.

* Image paths in data files that leave the data folder (``../``, absolute, symlinks) are refused
  by every loader that reads paths (and by ``score-alignment``); HF image cells' paths are never
  followed.
* Checkpoint loading never unpickles arbitrary objects: a ``pytorch_model.bin`` whose pickle
  runs code when unpickled unsafely fails to load with one clear error and the code does not run.
* No ``trust_remote_code``, unsafe ``torch.load``/``pickle``/``yaml.load``/``eval`` anywhere in
  the package (AST scan).
* The judge API key never reaches logs, stdout/stderr, results, samples or the judge cache, not
  even when a judge echoes it back in an error body.
* ``serve`` binding to 127.0.0.1 by default and bounding request sizes is covered in
  tests/test_serve.py (test_binds_loopback_by_default, test_oversized_body_is_413,
  test_length_required_and_bad_length, test_soak_every_request_answered_or_refused_cleanly).
"""
from __future__ import annotations

import ast
import json
import logging
import os
import shutil
from pathlib import Path

import pytest
import torch

from aligngpt.errors import ConfigError, DataError
from aligngpt.harness.settings import RunSettings
from aligngpt.harness.samples import load_samples
from aligngpt.harness.tasks import load_task

from .faults_support import StubJudge, damageable_copy, one_error_line, run_cli, run_dir_of, use_model

REPO = Path(__file__).resolve().parents[1]

#: task -> (file naming image paths, "jsonl" | "json list", field)
PATH_SOURCES = {
    "gqa": ("gqa/llava_gqa_testdev_balanced.jsonl", "jsonl"),
    "pope": ("pope/llava_pope_test.jsonl", "jsonl"),
    "mme": ("MME/llava_mme.jsonl", "jsonl"),
    "textvqa": ("textvqa/llava_textvqa_val_v051_ocr.jsonl", "jsonl"),
    "seed_image": ("seed_bench/llava-seed-bench.jsonl", "jsonl"),
    "vizwiz": ("vizwiz/llava_test.jsonl", "jsonl"),
    "vqav2": ("vqav2/llava_vqav2_mscoco_test-dev2015.jsonl", "jsonl"),
    "llava_bench": ("llava-bench-in-the-wild/questions.jsonl", "jsonl"),
    "mmvet": ("mm-vet/llava-mm-vet.jsonl", "jsonl"),
    "scienceqa_img": ("scienceqa/llava_test_CQM-A.json", "json"),
    "vizwiz_val": ("vizwiz/val.json", "json"),
}
#: tasks whose image names are built from ids, not read as paths: only symlinks can escape
ID_NAMED = {"vqav2_val": "vqav2/v2_OpenEnded_mscoco_val2014_questions.json"}
ESCAPES = ["../../../../../../etc/passwd", "/etc/passwd", "ok/../../../../outside.png"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from aligngpt.toy import write_benchmarks

    root = tmp_path_factory.mktemp("sec") / "eval"
    write_benchmarks(root, seed=9, n_per_task=2)
    return root


@pytest.fixture()
def root(pristine, tmp_path):
    return damageable_copy(pristine, tmp_path / "data" / "eval")


@pytest.fixture()
def outside(tmp_path):
    """A valid image outside the data root (what an escaping path would reach)."""
    from PIL import Image

    path = tmp_path / "outside" / "secret.png"
    path.parent.mkdir()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(path)
    return path


def _load(task, root):
    return load_samples(load_task(task), RunSettings(data_root=str(root), source="local"))


def _set_image(path: Path, value: str, match=lambda row, k: k == 0) -> dict | None:
    """Set ``image`` of the JSON Lines rows ``match`` selects; returns the first original row."""
    lines = path.read_text().splitlines()
    first = None
    for k, line in enumerate(lines):
        row = json.loads(line)
        if match(row, k):
            first = first or dict(row)
            row["image"] = value
            lines[k] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    return first


def _set_first_image(path: Path, kind: str, value: str) -> None:
    if kind == "jsonl":
        original = _set_image(path, value)
        if path.name == "llava_pope_test.jsonl":  # its label files repeat the image name: keep them in step
            for labels in (path.parent / "coco").glob("coco_pope_*.json"):
                _set_image(labels, value, lambda row, k: (row["question_id"], row["image"]) ==
                           (original["question_id"], original["image"]) and original["category"] in labels.name)
    else:
        rows = json.loads(path.read_text())
        next(r for r in rows if "image" in r)["image"] = value
        path.write_text(json.dumps(rows))


@pytest.mark.parametrize("escape", ESCAPES)
@pytest.mark.parametrize("task", sorted(PATH_SOURCES))
def test_escaping_image_paths_are_refused(root, task, escape):
    rel, kind = PATH_SOURCES[task]
    _set_first_image(root / rel, kind, escape)
    if task == "llava_bench":  # its captions are keyed by image name: give the path one
        context = root / "llava-bench-in-the-wild" / "context.jsonl"
        context.write_text(context.read_text() + json.dumps({"id": "x", "image": escape, "caption": "c"}) + "\n")
    with pytest.raises(DataError, match="escapes the data folder; refused") as info:
        _load(task, root)
    assert info.value.path == str(root / rel)
    if kind == "jsonl":
        assert info.value.line == 1


@pytest.mark.parametrize("task", sorted(PATH_SOURCES) + sorted(ID_NAMED))
def test_symlinked_image_leading_outside_is_refused(root, outside, task):
    image = _load(task, root)[0].image
    assert isinstance(image, Path) and image.is_file()
    image.unlink()
    image.symlink_to(outside)  # a valid image, but outside the data root
    with pytest.raises(DataError, match=r"escapes the data folder \(symlink\); refused"):
        _load(task, root)


def test_symlinked_folder_leading_outside_is_refused(root, tmp_path):
    # ScienceQA keeps one folder per problem: images/test/<pid>/image.png
    image = next(s.image for s in _load("scienceqa_img", root) if s.image is not None)
    moved = tmp_path / "elsewhere" / image.parent.name
    shutil.move(str(image.parent), moved)
    image.parent.symlink_to(moved, target_is_directory=True)
    with pytest.raises(DataError, match=r"\(symlink\); refused"):
        _load("scienceqa_img", root)


def test_image_folder_that_is_itself_a_symlink_is_fine(root, tmp_path):
    """The usual deployment links a whole image folder from elsewhere: that stays allowed."""
    images = root / "pope" / "val2014"
    shutil.move(str(images), tmp_path / "coco-val2014")
    images.symlink_to(tmp_path / "coco-val2014", target_is_directory=True)
    samples = _load("pope", root)
    assert samples and all(s.image.is_file() for s in samples)


def test_score_alignment_refuses_escaping_paths(tmp_path, outside):
    from aligngpt.processing.image import ImageProcessorSettings
    from aligngpt.training.scoring import _ChunkSet

    images = tmp_path / "images"
    images.mkdir()
    (images / "link.png").symlink_to(outside)
    data = tmp_path / "pairs.json"
    for bad in ["../outside/secret.png", str(outside), "link.png"]:
        records = [{"id": "1", "image": bad, "conversations": [{"from": "human", "value": "<image>"},
                                                               {"from": "gpt", "value": "a cat"}]}]
        chunks = _ChunkSet(records, [0], 1, images, data, ImageProcessorSettings())
        with pytest.raises(DataError, match="escapes the data folder") as info:
            chunks[0]
        assert info.value.path == str(data)


def test_hf_image_cells_never_follow_paths(outside):
    from aligngpt.tasks.gqa.loader import image_bytes as gqa_cell
    from aligngpt.tasks.mmbench.loader import image_bytes as mmbench_cell  # also LLaVA-Bench / MM-Vet HF

    cell = {"bytes": None, "path": str(outside)}
    with pytest.raises(DataError, match="no encoded bytes"):
        mmbench_cell(cell, "hf[dev]", 3)
    with pytest.raises(DataError, match="no encoded bytes"):
        gqa_cell(cell, source="hf", row=3)
    assert mmbench_cell({"bytes": b"PNG", "path": str(outside)}, "hf", 3) == b"PNG"


# ---------------------------------------------------------------------------- checkpoints
class _RunsCode:
    """Unpickled unsafely, this creates a folder (the stand-in for arbitrary code)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def _hostile_checkpoint(official_tiny: Path, folder: Path, marker: Path) -> Path:
    ckpt = folder / "checkpoint"
    ckpt.mkdir(parents=True)
    src = official_tiny / "checkpoint"
    for name in ("config.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copyfile(src / name, ckpt / name)
    (folder / "clip-vision-tiny").symlink_to(official_tiny / "clip-vision-tiny", target_is_directory=True)
    torch.save({"lm_head.weight": torch.zeros(2, 2), "payload": _RunsCode(marker)}, ckpt / "pytorch_model.bin")
    return ckpt


def test_checkpoint_pickle_is_never_executed(official_tiny, pristine, tmp_path, capsys):
    import aligngpt

    marker = tmp_path / "PWNED"
    ckpt = _hostile_checkpoint(official_tiny, tmp_path / "hostile", marker)
    with pytest.raises(ConfigError, match=r"pytorch_model\.bin: refused: the file holds pickled objects") as info:
        aligngpt.load_pretrained(ckpt)
    assert "weights_only=False" not in str(info.value)  # never suggest the unsafe way out
    assert not marker.exists()
    # the CLI: one error line, exit 2, still nothing executed
    code, out, err = run_cli(capsys, ["run", "--tasks", "pope", "--model", ckpt, "--data-root", pristine,
                                      "--output-dir", tmp_path / "runs"])
    assert code == 2 and "refused: the file holds pickled objects" in one_error_line(err)
    assert not marker.exists()
    # The payload is live: unpickling it the unsafe way does run it (so the test above can fail).
    torch.load(ckpt / "pytorch_model.bin", weights_only=False)
    assert marker.is_dir()


@pytest.mark.parametrize("name, content", [
    ("pytorch_model.bin", b"PK\x03\x04 truncated zip"),
    ("pytorch_model.bin", b""),
    ("model.safetensors", b"\xff" * 64),
])
def test_corrupt_weight_files_give_one_clear_error(official_tiny, tmp_path, name, content):
    import aligngpt

    ckpt = _hostile_checkpoint(official_tiny, tmp_path / "c", tmp_path / "m")
    (ckpt / "pytorch_model.bin").unlink()
    (ckpt / name).write_bytes(content)
    with pytest.raises(ConfigError, match=f"{name}: cannot read checkpoint weights"):
        aligngpt.load_pretrained(ckpt)


# ---------------------------------------------------------------------------- source scan
SOURCE_DIRS = ("aligngpt", "dev")


def unsafe_calls(source: str, filename: str = "<src>") -> list[str]:
    """Calls that could run code from data: trust_remote_code, unsafe unpickling, yaml.load, eval."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        where = f"{filename}:{node.lineno}: {name}"
        kwargs = {k.arg: k.value for k in node.keywords if k.arg}
        if "trust_remote_code" in kwargs:
            found.append(f"{where}(trust_remote_code=...)")
        if any(isinstance(v, ast.Constant) and v.value is False for k, v in kwargs.items() if k == "weights_only"):
            found.append(f"{where}(weights_only=False)")
        if name.endswith("torch.load") or name == "load" and "weights_only" in kwargs:
            value = kwargs.get("weights_only")
            if not (isinstance(value, ast.Constant) and value.value is True):
                found.append(f"{where} without weights_only=True")
        if name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "marshal.loads", "dill.load", "dill.loads",
                    "cloudpickle.load", "cloudpickle.loads", "joblib.load", "yaml.unsafe_load", "yaml.full_load",
                    "eval", "exec"):
            found.append(where)
        if name == "yaml.load" and not any("Safe" in ast.unparse(v) for v in [*node.args[1:], *kwargs.values()]):
            found.append(f"{where} without a SafeLoader")
        if name.endswith("np.load") or name.endswith("numpy.load"):
            value = kwargs.get("allow_pickle")
            if isinstance(value, ast.Constant) and value.value is True:
                found.append(f"{where}(allow_pickle=True)")
    return found


def test_scanner_finds_what_it_looks_for():
    bad = ("import torch, pickle, yaml\n"
           "m = AutoModel.from_pretrained('x', trust_remote_code=True)\n"
           "s = torch.load('w.bin')\n"
           "t = torch.load('w.bin', weights_only=False)\n"
           "u = pickle.loads(b'')\n"
           "v = yaml.load(open('c'))\n"
           "w = eval('1')\n")
    found = unsafe_calls(bad)
    assert {int(f.split(":")[1]) for f in found} == {2, 3, 4, 5, 6, 7}, found  # every line after the import
    good = "torch.load('w', map_location='cpu', weights_only=True)\nyaml.load(f, Loader=yaml.SafeLoader)\nyaml.safe_load(f)\n"
    assert unsafe_calls(good) == []


def test_no_remote_code_or_unsafe_deserialisation_in_the_package():
    found = []
    n_files = 0
    for folder in SOURCE_DIRS:
        for path in sorted((REPO / folder).rglob("*.py")):
            n_files += 1
            found.extend(unsafe_calls(path.read_text(encoding="utf-8"), str(path.relative_to(REPO))))
            text = path.read_text(encoding="utf-8")
            assert "trust_remote_code=True" not in text.replace(" ", ""), path
    assert n_files > 50
    assert found == []


# ---------------------------------------------------------------------------- judge key
SECRET = "sk-SECURITY-TEST-0123456789abcdef"
KEY_ENV = "ALIGNGPT_SECURITY_JUDGE_KEY"


@pytest.fixture(scope="module")
def judged_root(tmp_path_factory):
    from aligngpt.toy import write_benchmarks

    root = tmp_path_factory.mktemp("judged") / "eval"
    write_benchmarks(root, seed=4, n_per_task=2, benchmarks=["llava_bench", "mmvet"])
    return root


def _everything_written(*folders: Path) -> bytes:
    return b"\n".join(p.read_bytes() for f in folders for p in sorted(Path(f).rglob("*")) if p.is_file())


@pytest.mark.parametrize("mode", ["ok", "echo401"])
def test_judge_key_never_in_output_logs_or_cache(judged_root, tmp_path, capsys, caplog, monkeypatch, mode):
    monkeypatch.setenv(KEY_ENV, SECRET)
    samples = load_samples(load_task("mmvet"), RunSettings(data_root=str(judged_root), source="local"))
    answers = tmp_path / "answers" / "answers.jsonl"
    answers.parent.mkdir()
    answers.write_text("".join(json.dumps({"question_id": s.question_id, "text": "4"}) + "\n" for s in samples))
    caplog.set_level(logging.DEBUG)
    with StubJudge(mode) as judge:
        code, out, err = run_cli(capsys, ["-v", "score", "--task", "mmvet", "--answers", answers, "--data-root",
                                          judged_root, "--json", "--judge-base-url", judge.url, "--judge-model", "j",
                                          "--judge-api-key-env", KEY_ENV, "--judge-cache", tmp_path / "cache" / "c.sqlite",
                                          "--judge-max-retries", "0", "--allow-missing-judgements"])
        assert judge.auth and set(judge.auth) == {f"Bearer {SECRET}"}  # the key was really sent
    assert code == 0, err
    logged = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    for text in (out, err, logged):
        assert SECRET not in text
    assert SECRET.encode() not in _everything_written(tmp_path / "cache", tmp_path / "answers")
    if mode == "echo401":
        assert json.loads(out)["metrics"]["judge"]["missing"] == len(samples)


def test_judge_error_echoing_the_key_is_scrubbed(judged_root, tmp_path, monkeypatch):
    """The judge error text lands in samples.jsonl (``judge_error``): the key is cut out of it."""
    from aligngpt.evaluators import get_evaluator
    from aligngpt.judge import JudgeClient

    monkeypatch.setenv(KEY_ENV, SECRET)
    samples = load_samples(load_task("llava_bench"), RunSettings(data_root=str(judged_root), source="local"))
    evaluator = get_evaluator(load_task("llava_bench").evaluator)
    with StubJudge("echo401") as judge:
        evaluator.judge = JudgeClient(judge.url, "j", api_key_env=KEY_ENV, cache_path=tmp_path / "c.sqlite", max_retries=0)
        result = evaluator.score(samples, {s.key: "an answer" for s in samples})
    errors = [r["judge_error"] for r in result.per_sample.values()]
    assert len(errors) == len(samples)
    for error in errors:
        assert error.startswith("HTTP 401 from judge") and "Bearer [redacted]" in error and SECRET not in error


def test_run_with_a_judge_writes_no_key(official_tiny, judged_root, tmp_path, capsys, caplog, monkeypatch):
    """A whole `run` of LLaVA-Bench (judge echoing the key in its errors, missing allowed):
    results.json, samples.jsonl, answers, journals, state, cache, output and logs are clean."""
    use_model(monkeypatch, official_tiny / "checkpoint")
    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)
    out_dir, cache = tmp_path / "runs", tmp_path / "cache"
    with StubJudge("echo401") as judge:
        code, out, err = run_cli(capsys, ["-v", "run", "--tasks", "llava_bench", "--model", official_tiny / "checkpoint",
                                          "--data-root", judged_root, "--output-dir", out_dir, "--max-new-tokens", "2",
                                          "--judge-base-url", judge.url, "--judge-model", "j", "--judge-api-key-env",
                                          KEY_ENV, "--judge-cache", cache / "c.sqlite", "--judge-max-retries", "0",
                                          "--allow-missing-judgements", "--json"])
        assert set(judge.auth) == {f"Bearer {SECRET}"}
    assert code == 0, err
    written = _everything_written(out_dir, cache)
    assert SECRET.encode() not in written and b"[redacted]" in written  # the echoed error is there, scrubbed
    results = json.loads((run_dir_of(out_dir) / "results.json").read_text())
    assert results["settings"]["judge"]["api_key_env"] == KEY_ENV  # which variable, never its value
    logged = "\n".join(f"{r.getMessage()} {r.args}" for r in caplog.records)
    assert SECRET not in out + err + logged
