"""``aligngpt-eval``'s checks that need several flags or the filesystem, run after parsing and
before any command does work: a mistake costs the user one line, not a model load, a folder
or a traceback (argument types in :mod:`.checks` already caught malformed single values)."""
from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from ..errors import ConfigError
from . import checks as C


def hf_paths(items: list[str], tasks: list[str] | None) -> dict[str, str]:
    """``--hf-path TASK=PATH`` (repeatable) -> {task: path}; TASK must be one being run."""
    out = {}
    for item in items:
        task, sep, path = item.partition("=")
        if not sep or not task.strip() or not path:
            raise ConfigError(f"--hf-path expects TASK=PATH, got {item!r}")
        if tasks is not None and task.strip() not in tasks:
            raise ConfigError(f"--hf-path {item}: {task.strip()!r} is not among the tasks ({', '.join(tasks)})")
        out[task.strip()] = path
    return out


def _offline_set() -> bool:
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached (no network), else None: one connection attempt, 3 s at most."""
    import socket
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=3).close()
    except OSError as exc:
        return f"{host} is unreachable ({exc.strerror or exc})"
    return None


def go_offline() -> None:
    """Make ``datasets``/``huggingface_hub`` read only their caches: without a network they retry
    for half a minute before failing; offline they answer from the cache at once."""
    import sys

    os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    for module, name in (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE"),
                         ("datasets.config", "HF_DATASETS_OFFLINE")):
        if module in sys.modules and hasattr(sys.modules[module], name):
            setattr(sys.modules[module], name, True)


def data_flags(args: argparse.Namespace, task_names: list[str] | None) -> None:
    if args.source == "toy" and args.data_root:
        raise ConfigError("--source toy uses the bundled toy data; drop --data-root (or use --source local)")
    if args.source == "local" and not args.data_root:
        raise ConfigError("--source local needs --data-root (the playground/data/eval folder)")
    if args.source == "hf" and args.data_root:
        raise ConfigError("--source hf reads the lmms-lab copies; drop --data-root (or use --source local)")
    C.existing_dir("--data-root", args.data_root)
    paths = hf_paths(args.hf_path, task_names)
    if paths and args.source != "hf":
        raise ConfigError("--hf-path applies to --source hf")
    if args.source == "hf":
        remote = [t for t in (task_names or []) if t not in paths or not Path(paths[t]).expanduser().is_dir()]
        why = None if not remote or _offline_set() else hub_unreachable()
        if why:
            import sys

            print(f"note: {why}: reading {', '.join(remote)} from the HF cache only (a local copy: --hf-path "
                  "TASK=FOLDER)", file=sys.stderr)
            go_offline()


def judge_flags(args: argparse.Namespace) -> None:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", args.judge_api_key_env or ""):
        raise ConfigError(f"--judge-api-key-env {args.judge_api_key_env!r}: expected an environment variable name")
    if bool(args.judge_base_url) != bool(args.judge_model):
        raise ConfigError("--judge-base-url and --judge-model go together")
    if args.judge_base_url and not args.judge_base_url.startswith(("http://", "https://")):
        raise ConfigError(f"--judge-base-url {args.judge_base_url}: expected an http(s):// URL")
    C.file_target("--judge-cache", args.judge_cache)


def _task_names(text: str) -> list[str]:
    C.known_tasks("--tasks", text)
    return [t.strip() for t in text.split(",") if t.strip()]


def validate_run(args) -> None:
    names = _task_names(args.tasks)
    data_flags(args, names)
    judge_flags(args)
    folder = C.local_or_hub("--model", args.model, words=("toy",))
    if args.model == "toy":
        from ..harness.toy import toy_model_dir

        folder = toy_model_dir()
    C.align_mode("--align-mode", args.align_mode, folder)
    C.writable_dir("--output-dir", args.output_dir)
    C.writable_dir("--image-cache", args.image_cache)


def validate_score(args) -> None:
    names = _task_names(args.task)
    if len(names) != 1:
        raise ConfigError(f"--task takes one task, got {args.task!r}")
    data_flags(args, names)
    judge_flags(args)
    C.existing_file("--answers", args.answers)
    C.writable_dir("--submission-dir", args.submission_dir)


def validate_bench(args) -> None:
    C.local_or_hub("--model", args.model, words=("toy", "7b-random"))
    if args.model == "7b-random" and not args.device.startswith("cuda"):
        raise ConfigError("--model 7b-random needs --device cuda (a 7B model in fp16)")
    C.file_target("--out", args.out)


def validate_serve(args) -> None:
    C.local_or_hub("--model", args.model, words=("toy",))
    import socket

    try:
        socket.getaddrinfo(args.host, args.port)
    except (OSError, UnicodeError) as exc:
        raise ConfigError(f"--host {args.host!r}: not an address of this machine ({exc})") from None
    if args.template is not None:
        from ..processing.conversation import get_template

        get_template(args.template)


def validate_prepare(args) -> None:
    from ..harness.prepare import supported_tasks

    if args.check:
        C.existing_dir("--out", args.out)
        return
    if not args.tasks:
        raise ConfigError("prepare needs --tasks (or --check)")
    names = [t.strip() for t in args.tasks.split(",") if t.strip()]
    supported = supported_tasks()
    unknown = [t for t in names if t not in supported]
    if unknown or not names:
        raise ConfigError(f"--tasks: cannot prepare {', '.join(unknown) or 'nothing'}; choose from {', '.join(supported)}")
    hf_paths(args.hf_path, names)
    C.writable_dir("--out", args.out)
    C.writable_dir("--cache-dir", args.cache_dir)


def validate_grid(args) -> None:
    C.existing_file("SPEC.yaml", args.spec)
    C.writable_dir("--output-dir", args.output_dir)
    from ..harness.grid import load_grid_spec

    spec = load_grid_spec(args.spec)  # settings checked as run's flags are; modes, tasks, baseline
    for i, model in enumerate(spec.models):
        C.local_or_hub(f"{args.spec}: models[{i}].path", model.path, words=("toy",))
        data_root = {**spec.settings, **model.settings}.get("data_root")
        C.existing_dir(f"{args.spec}: settings.data_root", data_root)


def _run_dirs(args) -> None:
    """RUN_DIR arguments: finished run folders or grid folders, one label each if labels are given."""
    from ..report.runs import expand_run_dirs

    runs = expand_run_dirs(args.run_dirs)
    labels = [t for t in (args.labels or "").split(",") if t.strip()]
    if labels and len(labels) != len(runs):
        raise ConfigError(f"--labels gives {len(labels)} labels for {len(runs)} runs")


def validate_table(args) -> None:
    _run_dirs(args)
    if args.literature:
        from ..report.literature import literature_row

        for key in (t.strip() for t in args.literature.split(",")):
            try:
                literature_row(key) if key else None
            except KeyError as exc:
                raise ConfigError(f"--literature: {exc.args[0]}") from None
    C.file_target("--out", args.out)


def validate_plot(args) -> None:
    _run_dirs(args)
    if args.literature:
        validate_table(argparse.Namespace(run_dirs=[], labels=None, literature=args.literature, out=None))
    if args.out is not None and (args.out == "" or Path(args.out).is_dir()):
        raise ConfigError(f"--out {args.out!r}: expected a file prefix (PREFIX.png, PREFIX.pdf), not a folder")
    if args.out:
        C.writable_dir("--out", str(Path(args.out).parent))


def validate_view(args) -> None:
    from ..report.runs import expand_run_dirs

    expand_run_dirs(args.run_dirs)
    C.file_target("--out", args.out)


VALIDATORS = {"view": validate_view, "run": validate_run, "score": validate_score, "bench": validate_bench, "serve": validate_serve,
              "prepare": validate_prepare, "grid": validate_grid, "table": validate_table, "plot": validate_plot}


def validate(args) -> None:
    """Check a parsed ``aligngpt-eval`` command line; raises :class:`ConfigError` (one line)."""
    check = VALIDATORS.get(args.command)
    if check is not None:
        check(args)
