"""Every command works after the install the README names for it.

Each command runs as it would after ``pip install aligngpt`` (base) and after ``aligngpt[X]`` for
the extra it needs (see ``install_sim`` for how an install is simulated from package metadata).
A command may succeed, or stop with exactly one line on stderr naming the extra to install;
a traceback, a multi-line error, or a failure with its own extra present fails the test.
Every project module must also import on the base install (optional packages are imported
where they are used).
"""
from __future__ import annotations

import json
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import aligngpt
from .builders_gqa_pope_mme import build_pope_hf
from .install_sim import hidden_modules, project_requirements

HERE = Path(__file__).resolve().parent
PROGRESS = re.compile(r"\d+%\|")  # a tqdm bar (model loading prints them before an error)


def _modules() -> list[str]:
    return [info.name for info in pkgutil.walk_packages(aligngpt.__path__, "aligngpt.")]


def _commands(tmp: Path, pope_hf: Path) -> list[dict]:
    """(name, entry, argv, needs): ``needs`` is the extra that must make the command succeed."""
    runs = tmp / "runs"
    toy = tmp / "toy"
    common = ["--model", str(toy / "vicuna-tiny"), "--vision-tower", str(toy / "clip-vision-tiny"),
              "--use-cpu", "--dataloader-num-workers", "0", "--disable-tqdm", "--per-device-train-batch-size", "4",
              "--gradient-accumulation-steps", "1", "--max-steps", "1"]
    spec = tmp / "grid.yaml"
    spec.write_text(f"models: [toy]\nalign_modes: [gated]\ntasks: [pope]\nsettings: {{limit: 6}}\n"
                    f"output_dir: {tmp / 'grid'}\n")
    c = [
        ("import every module", "import", _modules(), None),
        ("eval tasks", "eval", ["tasks"], None),
        ("eval run", "eval", ["run", "--tasks", "pope", "--limit", "6", "--output-dir", str(runs), "--canary", "never"], None),
        ("eval run mmbench", "eval", ["run", "--tasks", "mmbench", "--limit", "8", "--output-dir", str(runs), "--canary", "never"], None),
        ("eval run --source hf", "eval", ["run", "--tasks", "pope", "--source", "hf", "--hf-path", f"pope={pope_hf}",
                                          "--limit", "3", "--output-dir", str(tmp / "hfruns"), "--canary", "never"], "hf"),
        ("eval prepare", "eval", ["prepare", "--tasks", "pope", "--out", str(tmp / "prepared"), "--hf-path", f"pope={pope_hf}"], "hf"),
        ("eval table", "eval", ["table", "GLOB:runs/*pope*"], None),
        ("eval plot", "eval", ["plot", "GLOB:runs/*pope*", "--kind", "gate-heatmap", "--out", str(tmp / "figs" / "gates")], "plots"),
        ("eval view", "eval", ["view", "GLOB:runs/*pope*", "--out", str(tmp / "report.html")], None),
        ("eval grid", "eval", ["grid", str(spec), "--quiet"], None),
        ("eval bench", "eval", ["bench", "--questions", "2", "--batch-sizes", "1", "--repeats", "1", "--new-tokens", "2",
                                "--training-samples", "0"], None),
        ("train toy-setup", "train", ["toy-setup", str(toy), "--pretrain-samples", "8", "--instruct-samples", "8"], None),
        ("train score-alignment", "train", ["score-alignment", "--data", str(toy / "data" / "LLaVA-Pretrain" / "blip_laion_cc_sbu_558k.json"),
                                            "--image-folder", str(toy / "data" / "LLaVA-Pretrain" / "images"),
                                            "--clip", str(toy / "clip-scorer"), "--levels", "4",
                                            "--out", str(toy / "scored.json"), "--no-progress"], "train"),
        ("train pretrain", "train", ["pretrain", *common, "--data", str(toy / "scored.json"),
                                     "--image-folder", str(toy / "data" / "LLaVA-Pretrain" / "images"),
                                     "--output-dir", str(toy / "stage1")], "train"),
        ("train finetune --lora-enable", "train", ["finetune", *common, "--data", str(toy / "data" / "llava_v1_5_mix665k.json"),
                                                   "--image-folder", str(toy / "data"),
                                                   "--pretrain-mm-mlp-align", str(toy / "stage1" / "mm_projector_align.bin"),
                                                   "--lora-enable", "--lora-r", "4", "--lora-alpha", "8",
                                                   "--output-dir", str(toy / "lora")], "train"),
        ("train merge-lora", "train", ["merge-lora", str(toy / "lora"), "--out", str(toy / "merged")], "train"),
    ]
    return [{"name": n, "entry": e, "argv": a, "needs": x, "cwd": str(tmp)} for n, e, a, x in c]


def _run(env_extras: tuple[str, ...], commands: list[dict], tmp: Path) -> list[dict]:
    plan = tmp / "plan.json"
    plan.write_text(json.dumps({"hidden": hidden_modules(env_extras), "commands": commands}))
    result = tmp / "result.json"
    subprocess.run([sys.executable, str(HERE / "cli_install_runner.py"), str(plan), str(result)],
                   check=True, timeout=900, cwd=tmp)
    return json.loads(result.read_text())


def _verdict(result: dict, needs: str | None, env_extras: tuple[str, ...]) -> str | None:
    """None when the outcome is acceptable, else why not."""
    err = result["stderr"].strip()
    if "Traceback (most recent call last)" in err:
        return f"traceback:\n{err[-3000:]}"
    if needs is None or needs in env_extras:
        return None if result["code"] == 0 else f"failed with its extra installed (exit {result['code']}):\n{err[-3000:]}"
    if result["code"] == 0:
        return None
    lines = [line for line in err.splitlines() if line.strip() and not PROGRESS.search(line)]
    if len(lines) != 1 or f"aligngpt[{needs}]" not in lines[0]:
        return f"exit {result['code']} without a one-line error naming aligngpt[{needs}]:\n{err[-3000:]}"
    return None


@pytest.mark.slow
def test_each_command_after_its_own_install(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setenv("ALIGNGPT_CACHE", str(tmp_path / "cache"))
    _, optional = project_requirements()
    extras = tuple(e for e in optional if e not in ("test", "lmms"))
    pope_hf = build_pope_hf(tmp_path / "pope_hf")
    failures = []
    # Base install: every command. With one extra: the commands that need it (adding packages
    # cannot take away what the base install already did).
    for env in [()] + [(e,) for e in extras]:
        work = tmp_path / ("base" if not env else env[0])
        work.mkdir()
        commands = [c for c in _commands(work, pope_hf) if not env or c["needs"] in env]
        if not commands:
            continue
        if env:  # the commands that depend on earlier ones: give them their inputs first
            setup = [c for c in _commands(work, pope_hf) if c["name"] in ("eval run", "train toy-setup")]
            if any(c["name"].startswith("train ") and c["name"] != "train toy-setup" for c in commands):
                commands = [setup[1]] + commands
            if any("GLOB:runs/*pope*" in c["argv"] for c in commands):
                commands = [setup[0]] + commands
            if env == ("train",):  # pretrain before finetune before merge, in that order
                commands = sorted(commands, key=lambda c: ["train toy-setup", "train score-alignment", "train pretrain",
                                                           "train finetune --lora-enable", "train merge-lora"].index(c["name"]))
        results = _run(env, commands, work)
        for c, r in zip(commands, results):
            why = _verdict(r, c["needs"], env)
            if why:
                failures.append(f"[{'+'.join(env) or 'base'}] {c['name']}: {why}")
    assert not failures, "\n\n".join(failures)
