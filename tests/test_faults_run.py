"""Fault injection inside `aligngpt-eval run` (in-process, official-tiny loaded once).

* A bad image mid-run (corrupt, empty, truncated): the documented policy (aligngpt/data/images.py)
  is one error naming the question id and the file, ``run_state.json`` = failed with that reason,
  the batches answered before it kept in the journal, and after the file is fixed the same command
  resumes and ends with exactly the uninterrupted answers.
* A full disk (ENOSPC) or a read-only / forbidden output folder (EROFS / EACCES), both from a real
  tmpfs where the test may mount one and from monkeypatched writers everywhere: one error line,
  exit 2, never a ``results.json`` (nor a half or temporary one), and the same command finishes the
  run once the disk is usable again.
* Journals holding answers for unknown ids, a second answer for an id, or a garbage line: ignored
  / first answer kept / the tail regenerated; answers equal the uninterrupted run.
* Prompts longer than the context: multimodal rows are cut to ``tokenizer_model_max_length - 1``
  tokens before the alignment slot (reference behaviour), text-only rows are not cut; nothing
  crashes, in the model and in a whole run.
SIGKILLs: tests/test_faults_kill.py and tests/test_harness_resume.py.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from PIL import ImageFile

import aligngpt.harness.pipeline as run_mod
from aligngpt.harness.settings import RunSettings
from aligngpt.harness.samples import load_samples
from aligngpt.harness.tasks import load_task

from .faults_support import (
    Tmpfs,
    copy_journals,
    journal_keys,
    one_error_line,
    run_cli,
    run_dir_of,
    tiny_model,
    use_model,
)

TASK = "vizwiz_val"  # one image per question


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    from aligngpt.toy import write_benchmarks

    root = tmp_path_factory.mktemp("toy") / "eval"
    write_benchmarks(root, seed=21, n_per_task=6, benchmarks=["vizwiz"])
    return root


@pytest.fixture(scope="module")
def ckpt(official_tiny) -> Path:
    return official_tiny / "checkpoint"


def _args(ckpt, root, out, *extra, batch_size: int = 3):
    """Always the clean run's batch size: greedy answers do not depend on the batch, but the
    recorded alignment weights may differ in the last float bits (fp32 matmuls of other shapes),
    and these tests compare samples.jsonl byte for byte."""
    return ["run", "--tasks", TASK, "--model", ckpt, "--data-root", root, "--output-dir", out, "--max-new-tokens", "2",
            "--batch-size", str(batch_size), *extra]


@pytest.fixture(scope="module")
def clean(toy, ckpt, tmp_path_factory):
    """The uninterrupted run: its folder and its answer / samples files."""
    out = tmp_path_factory.mktemp("clean")
    with pytest.MonkeyPatch.context() as mp:
        use_model(mp, ckpt)
        from aligngpt.cli.eval_cli import main

        assert main([str(a) for a in _args(ckpt, toy, out)]) == 0
    run_dir = run_dir_of(out)
    return run_dir, {name: (run_dir / TASK / name).read_bytes() for name in ("answers.jsonl", "samples.jsonl")}


@pytest.fixture(autouse=True)
def _model(monkeypatch, ckpt):
    use_model(monkeypatch, ckpt)


def _without_answer_ids(data: bytes) -> list[dict]:
    return [{k: v for k, v in json.loads(l).items() if k != "answer_id"} for l in data.splitlines()]


def _same_answers(out: Path, clean, same_root: bool = True) -> None:
    """Byte-identical files; from a copy of the data (``same_root=False``) the run name, and so the
    deterministic ``answer_id``, differs: everything else must still be equal."""
    run_dir = run_dir_of(out)
    for name, data in clean[1].items():
        got = (run_dir / TASK / name).read_bytes()
        if same_root or name != "answers.jsonl":
            assert got == data, name
        else:
            assert _without_answer_ids(got) == _without_answer_ids(data)
    assert json.loads((run_dir / "run_state.json").read_text())["status"] == "complete"
    keys = journal_keys(run_dir / TASK)
    assert len(keys) == len(set(keys))


def _no_results(out: Path) -> None:
    assert not list(out.rglob("results.json"))
    assert not list(out.rglob(".*.tmp")), list(out.rglob(".*.tmp"))  # no temporary file left behind


def _forbid_generation(monkeypatch) -> None:
    import aligngpt.engine.batched as batched

    real = batched.InferenceEngine.generate

    def only_empty(self, samples, **kw):
        assert not samples, "a run whose answers are all journaled must not generate"
        return real(self, samples, **kw)

    monkeypatch.setattr(batched.InferenceEngine, "generate", only_empty)


# ---------------------------------------------------------------------------- bad image mid-run
def _engine_order(toy, ckpt) -> list:
    """The samples in the order the engine answers them (longest prompt first, then file order)."""
    from aligngpt.engine.batched import InferenceEngine

    samples = load_samples(load_task(TASK), RunSettings(data_root=str(toy), source="local"))
    model, processor = tiny_model(str(ckpt))
    engine = InferenceEngine(model, processor)
    lengths = [len(processor.tokenize(engine.prompt_for(s, load_task(TASK).template))) for s in samples]
    return [samples[i] for i in sorted(range(len(samples)), key=lambda i: (-lengths[i], i))]


@pytest.mark.parametrize("damage, workers", [("corrupt", 0), ("empty", 0), ("truncated", 0), ("corrupt", 1)])
def test_bad_image_stops_naming_it_and_the_fixed_run_resumes(toy, ckpt, clean, tmp_path, capsys, monkeypatch, damage,
                                                              workers):
    """``workers``: images decoded in a DataLoader worker process, whose exceptions torch would
    re-raise as a RuntimeError traceback; the error must still be the one line."""
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)  # see test_faults_data.strict_truncation
    root = tmp_path / "eval"
    shutil.copytree(toy, root)
    order = _engine_order(root, ckpt)
    # the image whose first question comes latest: everything answered before it must survive
    first_use: dict[Path, int] = {}
    for pos, s in enumerate(order):
        first_use.setdefault(s.image, pos)
    image, pos = max(first_use.items(), key=lambda kv: kv[1])
    victim = order[pos]
    batch = 3
    answered_before = (pos // batch) * batch  # whole batches before the one holding the bad image
    assert answered_before > 0
    original = image.read_bytes()
    image.write_bytes({"corrupt": b"\x89PNG\r\n\x1a\n garbage", "empty": b"", "truncated": original[: len(original) // 2]}[damage])

    out = tmp_path / "runs"
    code, _, err = run_cli(capsys, _args(ckpt, root, out, "--num-workers", workers, batch_size=batch))
    assert code == 2
    line = one_error_line(err)
    assert f"question {victim.question_id}:" in line and str(image) in line, line
    _no_results(out)
    run_dir = run_dir_of(out)
    state = json.loads((run_dir / "run_state.json").read_text())
    assert state["status"] == "failed" and f"question {victim.question_id}" in state["reason"]
    assert sorted(journal_keys(run_dir / TASK)) == sorted(s.key for s in order[:answered_before])  # kept
    kept = (run_dir / TASK / "journal.jsonl").read_bytes()

    image.write_bytes(original)  # the user fixes the file and runs the same command
    code, _, err = run_cli(capsys, _args(ckpt, root, out))
    assert code == 0, err
    _same_answers(out, clean, same_root=False)
    assert (run_dir / TASK / "journal.jsonl").read_bytes().startswith(kept)  # appended to, never rewritten


# ---------------------------------------------------------------------------- disk faults (real)
def _fill_at(monkeypatch, point: str, fs: Tmpfs, fillers: list) -> None:
    real = run_mod._fault_point

    def hook(name: str) -> None:
        if name == point and not fillers:
            fillers.append(fs.fill())
        real(name)

    monkeypatch.setattr(run_mod, "_fault_point", hook)


@pytest.mark.parametrize("point", ["batch", "score", "results"])
def test_disk_fills_up_mid_run(toy, ckpt, clean, tmp_path, capsys, monkeypatch, point):
    """A real full disk (tmpfs) from the first batch / scoring / the results write on."""
    with Tmpfs(tmp_path / "mnt", size=4 << 20) as fs:
        out = fs.path / "runs"
        if point != "batch":  # answers already journaled: the disk fills up at scoring / writing
            copy_journals(clean[0], out)
            _forbid_generation(monkeypatch)
        fillers: list[Path] = []
        _fill_at(monkeypatch, point, fs, fillers)
        code, _, err = run_cli(capsys, _args(ckpt, toy, out))
        assert fillers and code == 2, err
        line = one_error_line(err)
        assert "No space left on device" in line, line
        if point == "results":
            assert "results.json" in line  # the file that could not be written is named
        _no_results(out)
        for filler in fillers:
            filler.unlink()
        monkeypatch.setattr(run_mod, "_fault_point", lambda name: None)
        code, _, err = run_cli(capsys, _args(ckpt, toy, out))
        assert code == 0, err
        _same_answers(out, clean)


def test_read_only_output_folder(toy, ckpt, clean, tmp_path, capsys, monkeypatch):
    with Tmpfs(tmp_path / "mnt") as fs:
        out = fs.path / "runs"
        copy_journals(clean[0], out)
        before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
        fs.remount("ro")
        try:
            code, _, err = run_cli(capsys, _args(ckpt, toy, out))
        finally:
            fs.remount("rw")
        assert code == 2 and "Read-only file system" in one_error_line(err)
        assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing touched
        _forbid_generation(monkeypatch)
        code, _, err = run_cli(capsys, _args(ckpt, toy, out))
        assert code == 0, err
        _same_answers(out, clean)


# ---------------------------------------------------------------------------- disk faults (patched)
def test_enospc_on_results_rename_leaves_no_results(toy, ckpt, clean, tmp_path, capsys, monkeypatch):
    import aligngpt.io as io_mod

    out = tmp_path / "runs"
    copy_journals(clean[0], out)
    real_replace = os.replace

    def full_disk(src, dst):
        if str(dst).endswith("results.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_replace(src, dst)

    monkeypatch.setattr(io_mod.os, "replace", full_disk)
    _forbid_generation(monkeypatch)
    code, _, err = run_cli(capsys, _args(ckpt, toy, out))
    assert code == 2
    line = one_error_line(err)
    assert "results.json" in line and "No space left on device" in line, line
    _no_results(out)
    state = json.loads((run_dir_of(out) / "run_state.json").read_text())
    assert state["status"] == "failed" and "No space left" in state["reason"]
    monkeypatch.setattr(io_mod.os, "replace", real_replace)
    assert run_cli(capsys, _args(ckpt, toy, out))[0] == 0
    _same_answers(out, clean)


def test_permission_denied_output_folder(toy, ckpt, tmp_path, capsys, monkeypatch):
    """As root chmod does not stop writes: refuse every temporary file the writers create."""
    import aligngpt.io as io_mod

    def denied(*a, dir=None, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))

    monkeypatch.setattr(io_mod.tempfile, "mkstemp", denied)
    out = tmp_path / "runs"
    code, _, err = run_cli(capsys, _args(ckpt, toy, out))
    assert code == 2 and "Permission denied" in one_error_line(err)
    _no_results(out)


def test_read_only_journal_names_the_journal(toy, ckpt, clean, tmp_path, capsys, monkeypatch):
    import aligngpt.harness.journal as journal_mod

    out = tmp_path / "runs"
    run_dir = copy_journals(clean[0], out)
    journal = run_dir / TASK / "journal.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:-3]))  # the last batch (3 questions) left to answer

    def read_only(path, mode="r", *a, **k):
        if "a" in mode:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(path))
        return open(path, mode, *a, **k)

    monkeypatch.setattr(journal_mod, "open", read_only, raising=False)
    code, _, err = run_cli(capsys, _args(ckpt, toy, out))
    assert code == 2
    line = one_error_line(err)
    assert "journal.jsonl" in line and "Read-only file system" in line, line
    _no_results(out)
    monkeypatch.undo()
    use_model(monkeypatch, ckpt)
    assert run_cli(capsys, _args(ckpt, toy, out))[0] == 0
    _same_answers(out, clean)


# ---------------------------------------------------------------------------- odd journals
def test_unknown_duplicate_and_garbage_journal_lines(toy, ckpt, clean, tmp_path, capsys):
    out = tmp_path / "runs"
    run_dir = copy_journals(clean[0], out)
    journal = run_dir / TASK / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    first = json.loads(lines[0])
    foreign = {**first, "key": "no-such-question", "question_id": "no-such-question", "text": "x"}
    second_answer = {**first, "text": "a different answer"}
    # unknown id and a second answer for the first question appended; a garbage line inside
    journal.write_bytes(b"".join(lines[:-3]) + b"\xff\xfe not json\n" + b"".join(lines[-3:])
                        + (json.dumps(foreign) + "\n").encode() + (json.dumps(second_answer) + "\n").encode())
    code, _, err = run_cli(capsys, _args(ckpt, toy, out))
    assert code == 0, err
    _same_answers(out, clean)  # the first answer of a question wins; the unknown id goes nowhere
    rows = [json.loads(l) for l in (run_dir / TASK / "samples.jsonl").read_text().splitlines()]
    assert "no-such-question" not in {str(r["question_id"]) for r in rows}
    # the garbage line and everything after it were cut, and the cut questions answered again
    assert journal.read_bytes().startswith(b"".join(lines[:-3])) and b"\xff\xfe" not in journal.read_bytes()
    assert len(journal_keys(run_dir / TASK)) == len(lines)


# ---------------------------------------------------------------------------- long prompts
def test_prompt_longer_than_the_context_is_cut_like_the_reference(ckpt, official_tiny):
    from PIL import Image

    model, processor = tiny_model(str(ckpt))
    limit = model.config.tokenizer_model_max_length  # 2048 for official-tiny
    n_ctx = model.config.max_position_embeddings  # 1024: both are exceeded below
    long_text = "word " * 2500
    image = Image.open(official_tiny / "images" / "img0.png")
    with_image = processor.build_prompt(long_text, has_image=True, template="vicuna_v1")
    text_only = processor.build_prompt(long_text, has_image=False, template="vicuna_v1")
    n_text = len(processor.tokenize(text_only))
    assert n_text > limit > n_ctx
    with torch.no_grad():
        out = model(**processor(prompts=[with_image], images=[image]))
        # image row: (tokens - 1 placeholder + 576 patches) cut to limit - 1, plus the alignment slot
        assert out.logits.shape[1] == limit
        out = model(**processor(prompts=[text_only], images=[None]))
        assert out.logits.shape[1] == n_text  # text-only rows are not cut
        assert bool(out.logits.isfinite().all())
        new = model.generate(**processor(prompts=[with_image, text_only], images=[image, None]), max_new_tokens=2,
                             do_sample=False)
    assert new.shape == (2, 2)


def test_run_with_a_prompt_longer_than_the_context(toy, ckpt, tmp_path, capsys):
    root = tmp_path / "eval"
    shutil.copytree(toy, root)
    qfile = root / "vizwiz" / "val.json"
    rows = json.loads(qfile.read_text())
    rows[0]["question"] = "Is there " + "a very " * 320 + "big circle?"
    qfile.write_text(json.dumps(rows))
    model, processor = tiny_model(str(ckpt))
    prompt = processor.build_prompt(rows[0]["question"], has_image=True, template=load_task(TASK).template)
    n_patches = (model.config.vision_config["image_size"] // model.config.vision_config["patch_size"]) ** 2
    assert len(processor.tokenize(prompt)) - 1 + n_patches > model.config.tokenizer_model_max_length
    out = tmp_path / "runs"
    code, _, err = run_cli(capsys, _args(ckpt, root, out, "--limit", "2"))
    assert code == 0, err
    samples = [json.loads(l) for l in (run_dir_of(out) / TASK / "samples.jsonl").read_text().splitlines()]
    long_row = next(r for r in samples if r["question_id"] == rows[0]["image"])
    assert "a very " * 320 in long_row["prompt"]  # the full prompt is recorded; the model saw it cut
    assert isinstance(long_row["prediction"], str) and len(samples) == 2
    assert (run_dir_of(out) / "results.json").is_file()
