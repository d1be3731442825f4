"""``aligngpt-train``: score-alignment, pretrain, finetune, merge-lora, toy-setup.

Flag names mirror the reference's ``train.py`` arguments with dashes (``--model-max-length``,
``--pretrain-mm-mlp-align``, ``--group-by-modality-length``, ...); the reference's underscore
spellings are accepted too. Unset stage-dependent flags take the recipe defaults in
:data:`aligngpt.training.run.STAGE_DEFAULTS`.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from aligngpt.cli import checks as C
from aligngpt.errors import AlignGPTError, ConfigError


def _flag(parser, *names: str, **kwargs) -> None:
    """Add ``--some-flag`` plus the reference spelling ``--some_flag``."""
    spelled = list(names)
    for name in names:
        if "-" in name[2:]:
            spelled.append("--" + name[2:].replace("-", "_"))
    parser.add_argument(*spelled, **kwargs)


def _bool(parser, name: str, default: bool | None, help: str) -> None:
    dest = name[2:].replace("-", "_")
    _flag(parser, name, dest=dest, action=argparse.BooleanOptionalAction, default=default, help=help)


def _score_parser(sub) -> None:
    p = sub.add_parser("score-alignment", help="CLIP similarity of every caption pair, bucketed into N levels")
    p.add_argument("--data", required=True, help="LLaVA pretraining JSON (records with image + conversations)")
    _flag(p, "--image-folder", required=True, help="folder the records' image paths are relative to")
    p.add_argument("--clip", required=True, help="CLIPModel folder (config, weights, tokenizer files)")
    p.add_argument("--levels", type=C.integer(2), default=8, help="number of alignment levels N (default 8)")
    p.add_argument("--bucketing", choices=("quantile", "width"), default="quantile")
    p.add_argument("--out", required=True, help="output JSON: the records plus 'similarity' and 'clip_score'")
    _flag(p, "--batch-size", type=C.integer(1), default=64)
    p.add_argument("--device", type=C.device, default="cpu", help="cpu | cuda | cuda:N | mps")
    p.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), default=None)
    _flag(p, "--num-workers", type=C.integer(0), default=0, help="image-decoding worker processes")
    p.add_argument("--fresh", action="store_true", help="ignore an existing journal and score everything again")
    p.add_argument("--no-progress", action="store_true")


def _train_parser(sub, stage: str, help: str) -> None:
    p = sub.add_parser(stage, help=help)
    g = p.add_argument_group("model")
    _flag(g, "--model", "--model-name-or-path", dest="model", required=True, help="base LLM folder (Llama/Vicuna: config, weights, tokenizer.model)")
    _flag(g, "--vision-tower", required=True, help="CLIP vision tower folder")
    _flag(g, "--mm-projector-type", default="mlp2x_gelu")
    _flag(g, "--mm-vision-select-layer", type=C.integer(), default=-2)
    _flag(g, "--mm-vision-select-feature", default="patch", choices=("patch", "cls_patch"))
    _flag(g, "--n-indicators", type=C.integer(2), default=None, help="alignment levels N (stage 1 default 8; stage 2: from the stage-1 file)")
    _flag(g, "--align-mode", default="gated", help="gated | local | global | average | fixed:K | none (trained that way)")
    _flag(g, "--gate-text", default="all", choices=("all", "prompt"), help="text the gate averages: all (reference) or prompt only")
    _flag(g, "--attn-implementation", default=None, choices=("eager", "sdpa", "flash_attention_2"),
          help="default: flash_attention_2 when installed on CUDA, else sdpa")
    _flag(g, "--load-dtype", default="auto", choices=("auto", "float32", "bfloat16", "float16"))
    if stage == "finetune":
        _flag(g, "--pretrain-mm-mlp-align", default=None, help="stage-1 mm_projector_align.bin (reference or ours)")
        _bool(g, "--random-align-table", False, "re-initialise the alignment table instead of loading it (paper Fig. 5)")
        _bool(g, "--tune-align-table", False, "train the alignment table at stage 2 (the reference freezes it)")
        _bool(g, "--freeze-mm-mlp-adapter", False, "freeze the projector at stage 2")
        _bool(g, "--lora-enable", False, "LoRA on the LLM linear layers (projector and gate fully trained)")
        _flag(g, "--lora-r", type=C.integer(1), default=128)
        _flag(g, "--lora-alpha", type=C.integer(1), default=256)
        _flag(g, "--lora-dropout", type=C.number(0, 1), default=0.05)
        _flag(g, "--bits", type=int, default=16, choices=(4, 8, 16), help="4/8: QLoRA (bitsandbytes, CUDA)")
    g = p.add_argument_group("data")
    _flag(g, "--data", "--data-path", dest="data", required=True, help="training JSON (558K with 'similarity' / mix665k)")
    _flag(g, "--image-folder", default=None)
    _flag(g, "--version", default=None, help="conversation template (plain | vicuna_v1 | v1); stage default")
    _flag(g, "--image-aspect-ratio", default=None, choices=("pad", "square"))
    _bool(g, "--group-by-modality-length", None, "LLaVA's modality-grouped sampler (stage default)")
    _flag(g, "--text-truncation", default="none", choices=("none", "reference"), help="reference: cut text-only rows in mixed batches (quirk 9)")
    _flag(g, "--model-max-length", type=C.integer(1), default=2048)
    _flag(g, "--max-samples", type=C.integer(1), default=None, help="use only the first N records (smoke runs)")
    g = p.add_argument_group("optimisation")
    _flag(g, "--output-dir", required=True)
    _flag(g, "--per-device-train-batch-size", type=C.integer(1), default=None)
    _flag(g, "--gradient-accumulation-steps", type=C.integer(1), default=None)
    _flag(g, "--learning-rate", type=C.number(0), default=None)
    _flag(g, "--mm-projector-lr", type=C.number(0), default=None)
    _flag(g, "--num-train-epochs", type=C.number(above=0), default=1.0)
    _flag(g, "--max-steps", type=C.integer(-1), default=-1, help="-1: from --num-train-epochs")
    _flag(g, "--warmup-ratio", type=C.number(0, 1), default=0.03)
    _flag(g, "--weight-decay", type=C.number(0), default=0.0)
    _flag(g, "--max-grad-norm", type=C.number(0), default=1.0)
    _flag(g, "--lr-scheduler-type", default="cosine", help="a transformers SchedulerType: cosine, linear, constant, ...")
    _bool(g, "--bf16", False, "bf16 mixed precision")
    _bool(g, "--fp16", False, "fp16 mixed precision")
    _bool(g, "--tf32", False, "allow TF32 matmuls (Ampere+ GPUs)")
    _bool(g, "--gradient-checkpointing", False, "activation checkpointing of the LLM layers")
    ev = p.add_argument_group("evaluation during training")
    _flag(ev, "--eval-tasks", default=None, help="comma-separated tasks to evaluate on the live model, e.g. pope,gqa")
    _flag(ev, "--eval-every", type=C.integer(0), default=0, help="evaluate every K optimizer steps (0: never)")
    _flag(ev, "--eval-limit", type=C.integer(1), default=None, help="first N questions of each task")
    _flag(ev, "--eval-data-root", default=None, help="LLaVA evaluation root (default: the bundled toy data)")
    _flag(ev, "--eval-batch-size", type=C.integer(1), default=8)
    _flag(ev, "--eval-max-new-tokens", type=C.integer(1), default=None)
    p.add_argument("--deepspeed", default=None,
                   help="DeepSpeed JSON (aligngpt/training/configs/zero2.json, zero3.json)")
    _flag(g, "--save-steps", type=C.integer(1), default=None)
    _flag(g, "--save-total-limit", type=C.integer(1), default=1)
    _flag(g, "--logging-steps", type=C.number(above=0), default=1)
    p.add_argument("--seed", type=C.integer(0, 2**32 - 1), default=42)
    _flag(g, "--dataloader-num-workers", type=C.integer(0), default=4)
    _flag(g, "--resume-from-checkpoint", default=None, help="a checkpoint folder, or 'latest' (newest in --output-dir)")
    _flag(g, "--report-to", default="none")
    _bool(g, "--use-cpu", False, "train on CPU even if a GPU is present")
    _flag(g, "--ddp-backend", default=None, choices=("nccl", "gloo", "mpi", "ccl", "hccl", "cncl", "mccl"))
    _bool(g, "--disable-tqdm", None, "no progress bars")


def _model_folder(flag: str, value: str) -> None:
    """Training reads local folders only (config.json beside the weights)."""
    C.existing_dir(flag, value)


def validate(ns: argparse.Namespace) -> None:
    """Flags that need the filesystem or each other; one-line ConfigError before any work."""
    if ns.command == "score-alignment":
        C.existing_file("--data", ns.data)
        C.existing_dir("--image-folder", ns.image_folder)
        _model_folder("--clip", ns.clip)
        C.file_target("--out", ns.out)
    elif ns.command == "toy-setup":
        C.writable_dir("root", ns.root)
    elif ns.command == "merge-lora":
        from aligngpt.extras import import_optional

        import_optional("peft", "merge-lora")  # what to install comes before what to fix
        C.existing_dir("run_dir", ns.run_dir)
        C.writable_dir("--out", ns.out)
    else:
        if getattr(ns, "lora_enable", False):
            from aligngpt.extras import import_optional

            import_optional("peft", "LoRA (--lora-enable)")
        _model_folder("--model", ns.model)
        _model_folder("--vision-tower", ns.vision_tower)
        C.existing_file("--data", ns.data)
        C.existing_dir("--image-folder", ns.image_folder)
        C.writable_dir("--output-dir", ns.output_dir)
        C.existing_file("--deepspeed", ns.deepspeed)
        if ns.command == "finetune":
            C.existing_file("--pretrain-mm-mlp-align", ns.pretrain_mm_mlp_align)
        C.align_mode("--align-mode", ns.align_mode, None, ns.n_indicators or 8)
        from aligngpt.modeling.projector import build_projector

        try:
            build_projector(ns.mm_projector_type, 1, 1)
        except ValueError as exc:
            raise ConfigError(f"--mm-projector-type: {exc}") from None
        if ns.version is not None:
            from aligngpt.processing.conversation import get_template

            get_template(ns.version)
        C.known_tasks("--eval-tasks", ns.eval_tasks)
        C.existing_dir("--eval-data-root", ns.eval_data_root)
        if ns.resume_from_checkpoint not in (None, "latest"):
            C.existing_dir("--resume-from-checkpoint", ns.resume_from_checkpoint)
        if ns.bf16 and ns.fp16:
            raise ConfigError("choose one of --bf16 and --fp16")
        from transformers.integrations.integration_utils import INTEGRATION_TO_CALLBACK
        from transformers.trainer_utils import SchedulerType

        schedulers = [t.value for t in SchedulerType]
        if ns.lr_scheduler_type not in schedulers:
            raise ConfigError(f"--lr-scheduler-type {ns.lr_scheduler_type!r}: choose from {', '.join(schedulers)}")
        bad = [r for r in ns.report_to.split(",") if r.strip() not in ("none", "all", *INTEGRATION_TO_CALLBACK)]
        if bad:
            raise ConfigError(f"--report-to {ns.report_to!r}: choose none, all or {', '.join(INTEGRATION_TO_CALLBACK)}")


def build_parser() -> argparse.ArgumentParser:
    parser = C.OneLineParser(prog="aligngpt-train", description="AlignGPT training: alignment scoring and both stages.")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)
    _score_parser(sub)
    _train_parser(sub, "pretrain", "stage 1: projector + alignment table (alignment level-aware pretraining)")
    _train_parser(sub, "finetune", "stage 2: LLM + projector + gate (adaptive alignment-based instruction tuning)")
    t = sub.add_parser("toy-setup", help="write tiny random stand-ins for every recipe input (CPU toy recipe)")
    t.add_argument("root")
    t.add_argument("--pretrain-samples", type=C.integer(1), default=512)
    t.add_argument("--instruct-samples", type=C.integer(1), default=512)
    t.add_argument("--seed", type=C.integer(0, 2**32 - 1), default=0)
    m = sub.add_parser("merge-lora", help="merge a LoRA/QLoRA run's adapter into a full model folder")
    m.add_argument("run_dir")
    m.add_argument("--out", default=None, help="target folder (default: the run folder)")
    return parser


def _run_score(ns: argparse.Namespace) -> int:
    from ..training.scoring import ScoreOptions, score_alignment

    opts = ScoreOptions(
        data=Path(ns.data),
        image_folder=Path(ns.image_folder),
        clip=ns.clip,
        levels=ns.levels,
        out=Path(ns.out),
        bucketing=ns.bucketing,
        batch_size=ns.batch_size,
        device=ns.device,
        dtype=ns.dtype,
        num_workers=ns.num_workers,
        fresh=ns.fresh,
        progress=not ns.no_progress,
    )
    report = score_alignment(opts)
    print(json.dumps({"out": str(opts.out), "counts": report["counts"], "edges": report["edges"]}))
    return 0


def _run_train(ns: argparse.Namespace) -> int:
    from ..training.run import TrainOptions, train

    values = {k: v for k, v in vars(ns).items() if k not in ("command", "verbose")}
    result = train(TrainOptions(stage=ns.command, **values))
    losses = [h["loss"] for h in result.log_history if "loss" in h]
    print(json.dumps({"output_dir": str(result.output_dir), "steps": result.global_step, "last_loss": losses[-1] if losses else None}))
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if ns.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        validate(ns)  # every flag checked before any work or folder
        if ns.command == "score-alignment":
            return _run_score(ns)
        if ns.command == "toy-setup":
            from ..training.toy import setup_toy

            paths = setup_toy(Path(ns.root), n_pretrain=ns.pretrain_samples, n_instruct=ns.instruct_samples, seed=ns.seed)
            print(json.dumps(paths, indent=2))
            return 0
        if ns.command == "merge-lora":
            from ..training.merge import merge_lora

            print(merge_lora(ns.run_dir, ns.out))
            return 0
        return _run_train(ns)
    except AlignGPTError as exc:
        print(f"aligngpt-train: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, read-only output folder, permission denied
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        print(f"aligngpt-train: error: cannot read or write{where}: {exc.strerror or exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
