"""Run CLI commands as an install without some packages would (see ``install_sim``).

usage: python cli_install_runner.py PLAN.json RESULT.json

PLAN: {"hidden": [module, ...], "commands": [{"name", "entry": "eval"|"train"|"import", "argv", "cwd"}]}.
An argument ``GLOB:pattern`` becomes the first path matching ``pattern`` in ``cwd`` when the
command starts (a run folder named by an earlier command).
The heavy imports (torch, transformers) happen once; each command then runs in a forked child
with its own stdout/stderr files, so one command's state or crash cannot leak into the next.
"""
from __future__ import annotations

import json
import os
import sys
import traceback


def _hide(modules: list[str]) -> None:
    for name in modules:
        for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[loaded]
        sys.modules[name] = None  # type: ignore[assignment]


def _child(command: dict, out_path: str, err_path: str) -> None:
    out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(err, 2)
    code = 1
    try:
        os.chdir(command["cwd"])
        from pathlib import Path

        argv = [str(sorted(Path(".").glob(a[5:]))[0].resolve()) if a.startswith("GLOB:") else a
                for a in command["argv"]]
        if command["entry"] == "eval":
            from aligngpt.cli.eval_cli import main
        elif command["entry"] == "train":
            from aligngpt.cli.train_cli import main
        else:  # "import": the argv are module names that must import
            import importlib

            for module in argv:
                importlib.import_module(module)
            main = lambda argv: 0  # noqa: E731
        code = main(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # what a user would see: a traceback
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(int(code or 0))


def main() -> int:
    plan = json.loads(open(sys.argv[1], encoding="utf-8").read())
    _hide(plan["hidden"])
    import torch  # noqa: F401  (once, before forking)
    import transformers  # noqa: F401

    results = []
    for i, command in enumerate(plan["commands"]):
        out_path, err_path = f"{sys.argv[2]}.{i}.out", f"{sys.argv[2]}.{i}.err"
        pid = os.fork()
        if pid == 0:
            _child(command, out_path, err_path)
        _, status = os.waitpid(pid, 0)
        with open(out_path, encoding="utf-8", errors="replace") as f:
            stdout = f.read()
        with open(err_path, encoding="utf-8", errors="replace") as f:
            stderr = f.read()
        results.append({"name": command["name"], "code": os.waitstatus_to_exitcode(status),
                        "stdout": stdout, "stderr": stderr})
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
