"""Every flag of every ``aligngpt-eval`` and ``aligngpt-train`` command, given bad values: never a
traceback, a rejection is one line on stderr with exit status 2, and no folder appears.

The sweep walks the argparse parsers themselves, so a flag added later is swept too. Commands
are called in-process (``main([...])``) with their work replaced by a stub: what is tested is
that checking happens before any work. A list of common mistakes then runs unstubbed.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from aligngpt.cli import checks as C
from aligngpt.cli import eval_cli

BAD_VALUES = ("", "bogus", "-1", "0", "1.5", "nan", "inf", "1e999", "/nonexistent/aligngpt-sweep/x")
DEVICE_VALUES = ("cuda:99", "gpu", "cuda:x")
NUMERIC_TYPES = {"integer", "number", "csv_integers", "device"}


def _train_cli():
    from aligngpt.cli import train_cli as cli

    return cli


@pytest.fixture()
def world(tmp_path, monkeypatch):
    """Valid inputs for every command's required arguments, and a working folder to watch."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    folder = tmp_path / "inputs" / "folder"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text("{}")  # a finished run folder as far as table/plot can tell
    data = tmp_path / "inputs" / "data.json"
    data.write_text("[]")
    answers = tmp_path / "inputs" / "answers.jsonl"
    answers.write_text(json.dumps({"question_id": 1, "text": "yes"}) + "\n")
    spec = tmp_path / "inputs" / "grid.yaml"
    spec.write_text("models: [toy]\nalign_modes: [gated]\ntasks: [pope]\n")
    out = str(tmp_path / "out" / "x")
    eval_base = {
        "run": ["run", "--tasks", "gqa", "--output-dir", out],
        "score": ["score", "--task", "pope", "--answers", str(answers)],
        "tasks": ["tasks"],
        "serve": ["serve"],
        "prepare": ["prepare", "--tasks", "gqa", "--out", out],
        "grid": ["grid", str(spec), "--output-dir", out],
        "table": ["table", str(folder)],
        "plot": ["plot", str(folder), "--kind", "radar", "--out", out],
        "bench": ["bench", "--out", out + ".json"],
        "view": ["view", str(folder), "--out", out + ".html"],
    }
    train_base = {
        "score-alignment": ["score-alignment", "--data", str(data), "--image-folder", str(folder), "--clip", str(folder),
                            "--out", out + ".json"],
        "pretrain": ["pretrain", "--model", str(folder), "--vision-tower", str(folder), "--data", str(data),
                     "--output-dir", out],
        "finetune": ["finetune", "--model", str(folder), "--vision-tower", str(folder), "--data", str(data),
                     "--output-dir", out],
        "toy-setup": ["toy-setup", out],
        "merge-lora": ["merge-lora", str(folder)],
    }
    return {"root": tmp_path, "eval": eval_base, "train": train_base}


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _values(action: argparse.Action) -> list[str | None]:
    """Bad values for one flag; None means 'the flag with its value missing'."""
    if action.nargs == 0:
        return ["=x"]  # --flag=x on a switch
    values: list[str | None] = [*BAD_VALUES, None]
    if getattr(action.type, "__name__", "") == "device":
        values += DEVICE_VALUES
    return values


class Sweep:
    def __init__(self, capsys, root: Path):
        self.capsys, self.root = capsys, root
        self.tried = self.flags = 0
        self.accepted: list[tuple[str, str, str | None]] = []
        self.problems: list[str] = []

    def call(self, main, prog: str, argv: list[str], what: str) -> int:
        before = _tree(self.root)
        self.capsys.readouterr()
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse
            rc = exc.code
        except BaseException as exc:  # a traceback for the user: the failure this sweep exists for
            self.problems.append(f"{what}: {type(exc).__name__}: {exc}")
            return -1
        err = self.capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip()]
        if rc:
            if rc != 2 or len(lines) != 1 or not lines[0].startswith(prog):
                self.problems.append(f"{what}: exit {rc}, stderr {err!r}")
        if _tree(self.root) != before:
            self.problems.append(f"{what}: created {sorted(_tree(self.root) - before)[:3]}")
        return rc

    def command(self, main, prog: str, name: str, parser: argparse.ArgumentParser, base: list[str]) -> None:
        assert self.call(main, prog, base, f"{name} (valid)") == 0, self.problems
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.dest == "verbose":
                continue
            self.flags += 1
            for value in _values(action):
                if action.option_strings:
                    flag = action.option_strings[0]
                    argv = [*base, flag + value] if value == "=x" else ([*base, flag] if value is None else [*base, flag, value])
                else:  # a positional: replace its valid value in the base command
                    if value is None:
                        continue
                    argv = [value if a == self._positional(base, parser, action) else a for a in base]
                what = f"{prog} {name} {action.option_strings[0] if action.option_strings else action.dest}={value!r}"
                self.tried += 1
                if self.call(main, prog, argv, what) == 0:
                    self.accepted.append((name, action.option_strings[0] if action.option_strings else action.dest, value))
                    self._must_reject(action, value, what)

    @staticmethod
    def _positional(base, parser, action) -> str:
        positionals = [a for a in parser._actions if not a.option_strings and not isinstance(a, argparse._HelpAction)]
        return base[1 + positionals.index(action)]

    def _must_reject(self, action, value, what) -> None:
        typed = getattr(action.type, "__name__", "") in NUMERIC_TYPES
        if value is None or value == "=x" or value == "bogus" and (typed or action.choices) \
                or value == "" and (typed or action.choices) or value in ("nan", "inf", "1e999") and typed \
                or value in DEVICE_VALUES:
            self.problems.append(f"{what}: accepted")


def _stub_eval(monkeypatch):
    monkeypatch.setattr(eval_cli, "COMMANDS", {name: (lambda args: 0) for name in eval_cli.COMMANDS})


def _stub_train(monkeypatch):
    cli = _train_cli()
    import aligngpt.training.merge as merge
    import aligngpt.training.toy as toy

    monkeypatch.setattr(cli, "_run_score", lambda ns: 0)
    monkeypatch.setattr(cli, "_run_train", lambda ns: 0)
    monkeypatch.setattr(toy, "setup_toy", lambda *a, **k: {})
    monkeypatch.setattr(merge, "merge_lora", lambda *a, **k: "merged")


def test_every_flag_of_every_command_rejects_bad_values_in_one_line(world, capsys, monkeypatch):
    _stub_eval(monkeypatch)
    _stub_train(monkeypatch)
    sweep = Sweep(capsys, world["root"])
    eval_subs = _subparsers(eval_cli.build_parser())
    train_cli = _train_cli()
    train_subs = _subparsers(train_cli.build_parser())
    # every command is swept: a new subcommand needs a valid base line here
    assert set(eval_subs) == set(world["eval"]) and set(train_subs) == set(world["train"])
    for name, parser in eval_subs.items():
        sweep.command(eval_cli.main, "aligngpt-eval", name, parser, world["eval"][name])
    for name, parser in train_subs.items():
        sweep.command(train_cli.main, "aligngpt-train", name, parser, world["train"][name])
    print(f"\nflag sweep: {len(eval_subs) + len(train_subs)} commands, {sweep.flags} flags, {sweep.tried} bad values "
          f"tried, {sweep.tried - len(sweep.accepted)} rejected in one line, {len(sweep.accepted)} accepted "
          "(free text such as labels, captions, hosts)")
    if os.environ.get("SWEEP_SHOW"):
        print("\n".join(map(str, sweep.accepted)))
    assert not sweep.problems, "\n".join(sweep.problems[:40])
    assert sweep.flags > 150 and sweep.tried > 1000


# ---------------------------------------------------------------------------- common mistakes, unstubbed
COMMON_MISTAKES = [
    (["--limit", "-1"], "--limit"), (["--limit", "0"], "--limit"), (["--max-new-tokens", "0"], "--max-new-tokens"),
    (["--align-mode", "bogus"], "unknown align_mode 'bogus'"), (["--align-mode", "fixed:99"], "fixed:0..fixed:7"),
    (["--num-workers", "-2"], "--num-workers"), (["--batch-size", "big"], "--batch-size"),
    (["--data-root", "/nonexistent"], "--data-root"), (["--source", "hf", "--hf-path", "gqa"], "TASK=PATH"),
    (["--judge-model", "gpt-4"], "--judge-base-url and --judge-model go together"),
]


@pytest.mark.parametrize("extra,needle", COMMON_MISTAKES, ids=[" ".join(c[0]) for c in COMMON_MISTAKES])
def test_common_mistakes_are_one_line_and_leave_no_folder(tmp_path, capsys, extra, needle):
    out = tmp_path / "runs"
    rc = _main_rc(["run", "--tasks", "gqa", "--output-dir", str(out), *extra])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert not out.exists()


def test_cuda_on_a_build_without_it_is_one_line(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = _main_rc(["run", "--tasks", "gqa", "--output-dir", str(tmp_path / "runs"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "--device cpu" in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_argparse_errors_are_one_line_without_the_usage_text(capsys):
    assert _main_rc(["run", "--tasks", "gqa", "--batch-size", "big"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "usage:" not in err
    assert err.startswith("aligngpt-eval run: error: argument --batch-size: expected an integer >= 1 or 'auto', got 'big'")


def test_hf_source_without_network_reads_the_cache_at_once(tmp_path, capsys, monkeypatch):
    """No 28 s of hub retries: no network -> offline mode -> the datasets cache answers at once."""
    import sys
    import time

    from aligngpt.cli import validate

    monkeypatch.setenv("HF_HUB_OFFLINE", "")  # restored afterwards, as are the libraries' flags
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "")
    for module, name in (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE"),
                         ("datasets.config", "HF_DATASETS_OFFLINE")):
        if module in sys.modules and hasattr(sys.modules[module], name):
            monkeypatch.setattr(sys.modules[module], name, getattr(sys.modules[module], name))
    monkeypatch.setattr(validate, "hub_unreachable", lambda: "huggingface.co is unreachable (test)")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    start = time.monotonic()
    rc = _main_rc(["run", "--tasks", "pope", "--source", "hf", "--output-dir", str(tmp_path / "runs"), "--limit", "3"])
    took = time.monotonic() - start
    err = capsys.readouterr().err
    assert rc == 2 and "HF cache only" in err and err.strip().splitlines()[-1].startswith("aligngpt-eval: error:")
    assert os.environ["HF_HUB_OFFLINE"] == "1" and took < 20, took
    assert not (tmp_path / "runs").exists()


def test_integer_and_number_types_name_the_range():
    with pytest.raises(argparse.ArgumentTypeError, match=r"integer in 0..65535, got 70000"):
        C.integer(0, 65535)("70000")
    assert C.integer(1, also=("auto",))("auto") == "auto"
    for text in ("nan", "inf", "-0.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            C.number(0)(text)
    assert C.csv_integers()("1, 8,16") == [1, 8, 16]


def _main_rc(argv: list[str]) -> int:
    try:
        return eval_cli.main(argv)
    except SystemExit as exc:
        return exc.code


GRID_CASES = [
    ("models: [/nonexistent/ckpt]", "models[0].path"),
    ("models: [toy]\nsettings: {limit: -1}", "settings.limit: must be an integer >= 1"),
    ("models: [toy]\nsettings: {batch_size: big}", "settings.batch_size"),
    ("models: [toy]\nsettings: {max_new_tokens: 0}", "settings.max_new_tokens"),
    ("models: [{path: toy, settings: {num_workers: -2}}]", "models[0].settings.num_workers"),
    ("models: [toy]\nsettings: {device: 'cuda:99'}", "settings.device"),
    ("models: [toy]\nsettings: {dtype: fp64}", "settings.dtype"),
    ("models: [toy]\nalign_modes: ['fixed:99']", "only 8 levels"),
]


@pytest.mark.parametrize("body,needle", GRID_CASES, ids=[c[1] for c in GRID_CASES])
def test_grid_spec_settings_are_checked_like_run_flags(tmp_path, capsys, monkeypatch, body, needle):
    monkeypatch.chdir(tmp_path)
    text = body + "\ntasks: [pope]\n" + ("" if "align_modes" in body else "align_modes: [gated]\n")
    Path("grid.yaml").write_text(text)
    rc = _main_rc(["grid", "grid.yaml", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and needle in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.yaml"]
