"""``aligngpt-eval``: run, score, tasks (and the later grid/table/plot/serve commands)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import AlignGPTError, ConfigError
from . import checks as C

if TYPE_CHECKING:
    from ..harness.settings import RunSettings


def _add_data_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="LLaVA-1.5 evaluation root (playground/data/eval layout)")
    p.add_argument("--source", choices=["local", "hf", "toy"], default=None,
                   help="local: --data-root; hf: lmms-lab datasets via `datasets`; toy: bundled toy data (default without --data-root)")
    p.add_argument("--hf-path", action="append", default=[], metavar="TASK=PATH",
                   help="override the HF dataset id or local parquet folder of a task (repeatable)")
    p.add_argument("--limit", type=C.integer(1), default=None,
                   help="about N questions per task, spread over its splits/subtasks, scoring units kept whole")


def _add_judge_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("LLM judge (LLaVA-Bench, MM-Vet; optional answer matching for MMBench)")
    g.add_argument("--judge-base-url", help="OpenAI-compatible endpoint, e.g. https://api.openai.com/v1")
    g.add_argument("--judge-model", help="judge model name, e.g. gpt-4-0613")
    g.add_argument("--judge-api-key-env", default="OPENAI_API_KEY", help="name of the environment variable holding the key")
    g.add_argument("--judge-cache", default=None, help="judge cache file (default: $ALIGNGPT_CACHE/judge-cache.sqlite)")
    g.add_argument("--judge-concurrency", type=C.integer(1), default=4)
    g.add_argument("--judge-max-retries", type=C.integer(0), default=5)
    g.add_argument("--judge-timeout", type=C.number(above=0), default=60.0)
    g.add_argument("--allow-missing-judgements", action="store_true",
                   help="report metrics over the judged questions (with coverage) instead of failing")


def build_parser() -> argparse.ArgumentParser:
    parser = C.OneLineParser(prog="aligngpt-eval", description="Evaluate AlignGPT / LLaVA-1.5 models exactly as the official scripts do.")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--include-path", action="append", default=[], metavar="DIR",
                        help="a folder of extra benchmark folders (each with task.yaml), or one such folder; "
                             "repeatable; also read from ALIGNGPT_TASK_PATH (docs/adding-a-benchmark.md)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="evaluate a model on tasks (resumes an interrupted run)")
    run.add_argument("--tasks", required=True, help="comma-separated task names (see `aligngpt-eval tasks`)")
    run.add_argument("--model", default="toy", help="'toy' (bundled tiny model), a checkpoint folder, or a hub id")
    _add_data_flags(run)
    run.add_argument("--output-dir", default="results/runs")
    run.add_argument("--batch-size", type=C.integer(1, also=("auto",)), default=8, help="an integer, or 'auto' (largest that fits on the GPU)")
    run.add_argument("--canary", choices=["auto", "always", "never"], default="auto",
                     help="batch-invariance check before the run (auto: runs of >= 64 questions)")
    run.add_argument("--align-mode", default=None, help="gated | local | global | average | fixed:K | none")
    run.add_argument("--conv-mode", type=C.conv_mode, default=None,
                     help="conversation template for every task; 'auto': the checkpoint's")
    run.add_argument("--device", type=C.device, default="cpu", help="cpu | cuda | cuda:N | mps")
    run.add_argument("--dtype", choices=C.DTYPES, default=None, help="default: fp16 on GPU, fp32 on CPU")
    run.add_argument("--max-new-tokens", type=C.integer(1), default=None, help="override the task's official budget")
    run.add_argument("--seed", type=C.integer(0, 2**63 - 1), default=0)
    run.add_argument("--num-workers", type=C.integer(0), default=0, help="DataLoader workers decoding images")
    run.add_argument("--image-cache", default=None, metavar="DIR",
                     help="keep preprocessed images here (exact float32, keyed by image and processor settings) "
                          "for later runs, e.g. every cell of a grid; within a run they are cached in memory anyway")
    run.add_argument("--fresh", action="store_true", help="discard a previous partial run instead of resuming")
    run.add_argument("--num-processes", type=C.integer(1), default=1,
                     help="data-parallel processes (launches torchrun; same as `torchrun --nproc_per_node N -m aligngpt.cli.eval_cli run ...`)")
    run.add_argument("--json", action="store_true", help="print results.json on stdout")
    _add_judge_flags(run)

    score = sub.add_parser("score", help="score an existing LLaVA-format answer file")
    score.add_argument("--task", required=True)
    score.add_argument("--answers", required=True)
    _add_data_flags(score)
    score.add_argument("--json", action="store_true", help="one JSON object on stdout, nothing else")
    score.add_argument("--submission-dir", default=None,
                       help="server-scored tasks (vqav2, vizwiz, mmbench): write the upload file here (default: beside the answers)")
    score.add_argument("--no-submission-processor", dest="submission_processor", action="store_false",
                       help="vqav2_val, vizwiz_val: score the raw answer text with the official API, "
                            "without LLaVA's m4c submission processor (applied by default, as the upload carries it)")
    _add_judge_flags(score)

    sub.add_parser("tasks", help="list tasks, their data sources and how they are scored")

    from .serve_cli import add_serve_parser
    from .report_cli import add_report_parsers

    from .prepare_cli import add_prepare_parser

    add_serve_parser(sub)
    add_report_parsers(sub)
    add_prepare_parser(sub)
    from .view_cli import add_view_parser

    add_view_parser(sub)

    bench = sub.add_parser("bench", help="time our engine against the reference-style batch-1 loop")
    bench.add_argument("--model", default="toy", help="'toy', '7b-random' (GPU: 7B-shaped, random weights), or a checkpoint")
    bench.add_argument("--questions", type=C.integer(1), default=64)
    bench.add_argument("--new-tokens", type=C.integer(1), default=12)
    bench.add_argument("--batch-sizes", type=C.csv_integers(1), default="1,8,16,32")
    bench.add_argument("--device", type=C.device, default="cpu")
    bench.add_argument("--dtype", choices=C.DTYPES, default=None)
    bench.add_argument("--repeats", type=C.integer(1), default=2, help="timed passes per mode; the fastest is reported")
    bench.add_argument("--training-samples", type=C.integer(0), default=16, help="batch of the training-step benchmark (0 skips it)")
    bench.add_argument("--out", default=None, help="also write the report as JSON here")
    for command in sub.choices.values():  # also accepted after the command, as lm-evaluation-harness does
        command.add_argument("--include-path", action="append", default=[], dest="include_path_cmd",
                             metavar="DIR", help=argparse.SUPPRESS)
    return parser


def _settings(args) -> "RunSettings":
    from ..harness.settings import RunSettings

    source = args.source or ("local" if args.data_root else "toy")
    if source == "hf":  # before any folder or work
        from ..extras import import_optional

        import_optional("datasets", "--source hf")
    data_root = args.data_root
    if source == "toy":
        if args.data_root:
            raise ConfigError("--source toy uses the bundled toy data; drop --data-root (or use --source local)")
        from ..harness.toy import toy_data_root

        data_root = str(toy_data_root())
    from .validate import hf_paths as parse_hf_paths

    hf_paths = parse_hf_paths(args.hf_path, None)
    from ..harness.judging import JudgeSettings

    judge = JudgeSettings(
        base_url=args.judge_base_url, model=args.judge_model, api_key_env=args.judge_api_key_env,
        cache_path=args.judge_cache, concurrency=args.judge_concurrency, max_retries=args.judge_max_retries,
        timeout=args.judge_timeout, allow_missing=args.allow_missing_judgements,
    )
    kwargs = dict(data_root=data_root, source=source, limit=args.limit, hf_paths=hf_paths, judge=judge)
    if args.command == "run":
        kwargs.update(
            model=args.model, output_dir=args.output_dir, batch_size=args.batch_size, align_mode=args.align_mode,
            device=args.device, dtype=args.dtype, max_new_tokens=args.max_new_tokens, seed=args.seed,
            fresh=args.fresh, num_workers=args.num_workers, image_cache=args.image_cache, canary=args.canary,
            conv_mode=args.conv_mode,
        )
    return RunSettings(**kwargs)


def _flatten(metrics: dict, prefix: str = "") -> list[tuple[str, object]]:
    rows = []
    for k, v in metrics.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            rows.extend(_flatten(v, key + "."))
        else:
            rows.append((key, v))
    return rows


def _print_metrics(task: str, metrics: dict, headline: str | None, stream) -> None:
    from tabulate import tabulate

    rows = [(k, v) for k, v in _flatten(metrics) if v is not None]  # None: not computable from what ran
    if headline:
        rows.sort(key=lambda kv: kv[0] != headline)
    table = [(task if i == 0 else "", k, f"{v:.2f}" if isinstance(v, float) else v) for i, (k, v) in enumerate(rows)]
    print(tabulate(table, headers=["task", "metric", "value"], tablefmt="github"), file=stream)


def _relaunch_with_torchrun(argv: list[str], n: int) -> int:
    """``--num-processes N``: hand the same command to torchrun (the standard launcher)."""
    import os
    import subprocess

    rest, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--num-processes":
            skip = True
            continue
        if a.startswith("--num-processes="):
            continue
        rest.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "aligngpt.cli.eval_cli", *rest]
    return subprocess.call(cmd, env=dict(os.environ))


def cmd_run(args) -> int:
    import os

    from ..harness.pipeline import execute_run
    from ..harness.tasks import parse_task_list

    if args.num_processes > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return _relaunch_with_torchrun(args._argv, args.num_processes)

    tasks = parse_task_list(args.tasks)
    settings = _settings(args)
    result = execute_run(tasks, settings)
    if result.results is None:  # a non-zero rank of a data-parallel run: rank 0 reports
        return 0
    out = sys.stderr if args.json else sys.stdout
    if result.results["model"]["bundled_toy_model"]:
        print("model: bundled toy model (tiny, for smoke tests and CI regression checks; not a real AlignGPT)", file=out)
    if settings.source == "toy":
        print("data: bundled toy benchmark data (synthetic; numbers are not comparable to the papers)", file=out)
    limited = {t: r["limited"] for t, r in result.results["tasks"].items() if "limited" in r}
    if limited:
        counts = ", ".join(f"{t} {v['questions']} of {v['of']}" for t, v in limited.items())
        print(f"limited run (--limit {settings.limit}): {counts} questions; not the benchmarks' numbers, and "
              "totals over parts that did not run are left out", file=out)
    for spec in tasks:
        _print_metrics(spec.name, result.results["tasks"][spec.name]["metrics"], spec.headline, out)
    print(f"results: {result.run_dir / 'results.json'}", file=out)
    if args.json:
        print(json.dumps(result.results))
    return 0


def cmd_score(args) -> int:
    from ..harness.score import score_file
    from ..harness.tasks import load_task

    spec = load_task(args.task)
    submission_dir = Path(args.submission_dir) if args.submission_dir else Path(args.answers).resolve().parent
    result, written = score_file(spec, args.answers, _settings(args), submission_dir=submission_dir,
                                 submission_processor=args.submission_processor)
    for path in written:
        print(f"submission: {path}", file=sys.stderr)
    if args.json:
        print(json.dumps({"task": spec.name, "n": len(result.per_sample) or result.n, "metrics": result.metrics}))
    else:
        _print_metrics(spec.name, result.metrics, spec.headline, sys.stdout)
    return 0


def cmd_tasks(args) -> int:
    from tabulate import tabulate

    from ..data.base import available_loaders
    from ..harness.tasks import available_tasks, load_task

    loaders = available_loaders()
    rows, files = [], []
    for name in available_tasks():
        spec = load_task(name)
        sources = [*loaders.get(name, []), *(["toy"] if spec.toy is not None else [])]
        scored = spec.scoring + (" (judge optional)" if spec.judge == "optional" else "")
        rows.append((name, spec.title, scored, ", ".join(sources) or "-", spec.headline))
        local = spec.sources.get("local") or []
        files.append((name, ", ".join([local] if isinstance(local, str) else local) or "-", spec.sources.get("hf") or "-"))
    print(tabulate(rows, headers=["task", "benchmark", "scored", "sources", "headline metric"], tablefmt="github"))
    print()
    print(tabulate(files, headers=["task", "files under --data-root", "hf dataset"], tablefmt="github"))
    print("\nsources: toy = the bundled synthetic suite, the default without --data-root (numbers not comparable to "
          "the papers); local = --data-root DIR (LLaVA-1.5 playground/data/eval layout); hf = --source hf "
          "(lmms-lab copies, or --hf-path TASK=FOLDER)")
    return 0


def cmd_bench(args) -> int:
    from tabulate import tabulate

    from ..engine.bench import random_7b_model, run_bench
    from ..io import atomic_write_json

    if args.model == "7b-random":
        import torch

        from ..harness.toy import toy_model_dir
        from ..modeling.loading import load_pretrained

        model = random_7b_model(args.device, torch.float16 if args.dtype in (None, "float16", "fp16") else torch.bfloat16)
        _, processor = load_pretrained(toy_model_dir())
        from ..processing.image import ImageProcessorSettings

        processor.image_settings = ImageProcessorSettings()  # CLIP-L/336 preprocessing
    else:
        from ..harness.toy import toy_model_dir
        from ..modeling.loading import load_pretrained

        path = toy_model_dir() if args.model == "toy" else args.model
        model, processor = load_pretrained(path, device=args.device, dtype=args.dtype)
    sizes = args.batch_sizes
    report = run_bench(model, processor, model_name=args.model, questions=args.questions, new_tokens=args.new_tokens,
                       batch_sizes=sizes, repeats=args.repeats, training_samples=args.training_samples)
    rows = [(r.mode, r.batch_size, f"{r.samples_per_s:.2f}", f"{r.speedup_vs_reference:.2f}x",
             "" if r.speedup_vs_own_batch1_loop is None else f"{r.speedup_vs_own_batch1_loop:.2f}x",
             f"{100 * r.outside_model_share:.1f}%", r.identical_to_reference) for r in report.rows]
    print(f"model {report.model} on {report.device} ({report.dtype}), {report.questions} questions, {report.new_tokens} new tokens")
    print(tabulate(rows, headers=["mode", "batch", "samples/s", "vs reference-faithful", "vs own batch-1", "outside model",
                                  "identical"], tablefmt="github"))
    if report.gpu:
        g = report.gpu
        print(f"prefill: {g['prefill_flops_per_s'] / 1e12:.1f} TFLOP/s = {100 * g['prefill_fraction_of_peak']:.1f}% of measured "
              f"{g['matmul_flops'] / 1e12:.1f} TFLOP/s; decode: {g['decode_bandwidth_bytes_per_s'] / 1e9:.0f} GB/s = "
              f"{100 * g['decode_fraction_of_peak']:.1f}% of measured {g['copy_bandwidth_bytes_per_s'] / 1e9:.0f} GB/s")
    if report.training:
        print("training step (forward + backward):")
        print(tabulate([(t["mode"], t["batch"], t["tokens"], f"{t['tokens_per_s']:.0f}", f"{t['loss']:.6f}") for t in report.training],
                       headers=["assembly", "batch", "tokens", "tokens/s", "loss"], tablefmt="github"))
    if args.out:
        atomic_write_json(args.out, report.to_dict())
    return 0


def cmd_serve(args) -> int:
    from .serve_cli import cmd_serve as serve

    return serve(args)


def _report_command(name: str):
    def run(args) -> int:
        from . import report_cli

        return getattr(report_cli, f"cmd_{name}")(args)

    return run


COMMANDS = {"run": cmd_run, "score": cmd_score, "tasks": cmd_tasks, "bench": cmd_bench, "serve": cmd_serve,
            "prepare": lambda args: __import__("aligngpt.cli.prepare_cli", fromlist=["cmd_prepare"]).cmd_prepare(args),
            "grid": _report_command("grid"), "table": _report_command("table"), "plot": _report_command("plot"),
            "view": lambda args: __import__("aligngpt.cli.view_cli", fromlist=["cmd_view"]).cmd_view(args)}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args._argv = argv
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        from ..harness.task_registry import add_include_path
        from .validate import validate

        for folder in [*args.include_path, *getattr(args, "include_path_cmd", [])]:
            add_include_path(folder)
        validate(args)  # every flag checked before any work or folder
        return COMMANDS[args.command](args)
    except AlignGPTError as exc:
        print(f"aligngpt-eval: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, read-only output folder, permission denied
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"aligngpt-eval: error: cannot read or write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aligngpt-eval: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
