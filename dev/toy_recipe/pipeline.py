"""The whole toy recipe as one command: data -> tokenizer -> CLIP -> base LM -> AlignGPT -> scores.

From the repository root (``dev/`` is not installed with the package)::

    python -m dev.train_toy_model --work /tmp/toyrun \
        --install-to aligngpt/toy_assets/model --results-dir results/toy

(the same as ``python -m dev.toy_recipe all ...``) runs, in order:

=============  ==============================================================================
``data``       :func:`aligngpt.toy.generate_toy_data` (caption pairs + instruction mix)
``tokenizer``  sentencepiece model on the toy training text (:mod:`.tokenizers`)
``clip``       tiny CLIP, contrastive (:mod:`.clip`)
``base_lm``    tiny Llama pretrained on toy text, the Vicuna stand-in (:mod:`.base_lm`)
``score``      ``aligngpt-train score-alignment`` (CLIP similarity -> N levels)
``pretrain``   ``aligngpt-train pretrain`` (stage 1: projector + alignment table)
``finetune``   ``aligngpt-train finetune`` (stage 2: LLM + projector + gate)
``install``    copies the stage-2 checkpoint into ``--install-to DIR``
``evaluate``   ``aligngpt-eval run`` on every locally scored toy task (bundled toy data)
``results``    writes ``metrics.json`` and ``README.md`` into ``--results-dir DIR``
=============  ==============================================================================

Each stage runs in its own Python process with the same thread settings (``--threads``,
default 2), writes into ``WORK/<stage>/`` and leaves a ``.done`` marker, so an interrupted run
continues where it stopped (``--from STAGE`` redoes a stage and everything after it).
The training stages call the real ``aligngpt-train`` command line, so the bundled model is
exactly what that tool produces.

Every output goes where the command line says: ``--work`` for intermediate files, ``--install-to``
for the checkpoint (required when the install or evaluate stage runs; other backbones default to
``WORK/model``) and ``--results-dir`` for the results page (required when the results stage runs).
Relative paths are taken from the current directory. Nothing is written next to this file.

Runtime settings, applied to every stage process: ``OMP_WAIT_POLICY=PASSIVE`` (OpenMP threads
sleep instead of spinning, which otherwise collapses throughput when the 2 cores are shared)
and glibc malloc thresholds that keep freed memory in the process (tiny models allocate and
free activation buffers at every step; returning them to the OS costs a page fault per page).
Neither changes a number, only the speed.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from .backbones import BACKBONES, CHAT_TEMPLATES, check_backbone, copy_tokenizer, export_siglip_tower, train_chatml_bpe
from .base_lm import LMRecipe
from .clip import ClipRecipe
from .drills import DrillRecipe
from .loop import train_device

log = logging.getLogger(__name__)

#: The folder ``dev`` is imported from (a source checkout; ``dev/`` is never installed). Stage
#: processes start there so that ``python -m dev.toy_recipe`` resolves; nothing is written there.
IMPORT_ROOT = Path(__file__).resolve().parents[2]
STAGES = ("data", "tokenizer", "clip", "base_lm", "score", "pretrain", "finetune", "install", "evaluate", "results")


def local_toy_tasks() -> tuple[str, ...]:
    """The locally scored tasks that have a toy version, in the paper's column order (registry)."""
    from aligngpt.harness.task_registry import ordered_specs

    return tuple(s.name for s in ordered_specs() if s.toy is not None and s.scoring == "local")


#: What the recipe evaluates and reports: every locally scored toy task the registry knows.
LOCAL_TASKS = local_toy_tasks()
INSTALL_FILES = ("config.json", "model.safetensors", "preprocessor_config.json")  # + the tokenizer's files
#: What the bundled config names as its vision tower (the weights are embedded in the checkpoint).
TOWER_NAME = "aligngpt-toy-clip"
#: The stages that need a folder named on the command line, and the flag that names it.
NEEDS_FOLDER = {"install": ("install_dir", "--install-to"), "evaluate": ("install_dir", "--install-to"),
                "results": ("results_dir", "--results-dir")}


@dataclass
class StageArgs:
    """``aligngpt-train`` flags of one stage (learning rates scaled for a 1M-parameter LLM)."""

    batch_size: int
    learning_rate: float
    epochs: float
    grad_accum: int = 1
    warmup_ratio: float = 0.03
    extra: list = field(default_factory=list)


@dataclass
class Recipe:
    seed: int = 0
    n_pretrain: int = 4000
    n_instruct: int = 12000
    n_described: int = 15000
    vocab_size: int = 1024
    levels: int = 8
    clip: ClipRecipe = field(default_factory=ClipRecipe)
    lm: LMRecipe = field(default_factory=LMRecipe)
    drill: DrillRecipe = field(default_factory=DrillRecipe)
    """Option-letter and reading drills before the base LM's text (:mod:`.drills`); none by default."""
    blind_conversations: bool = True
    """Whether the base LM's text holds the instruction chats without their images (answers from
    priors alone, which teaches the LM to answer without looking)."""
    stage1: StageArgs = field(default_factory=lambda: StageArgs(batch_size=32, learning_rate=2e-3, epochs=1))
    stage2: StageArgs = field(default_factory=lambda: StageArgs(batch_size=16, learning_rate=1e-3, epochs=2))
    eval_batch_size: int = 16
    backbone: str = "llama-clip"
    """``llama-clip`` (the bundled model) or ``qwen2-siglip`` (:mod:`.backbones`)."""

    def to_json(self) -> str:
        """The recipe file; ``backbone``, ``drill`` and ``blind_conversations`` only when not the
        default, so earlier recipe files still match."""
        d = dataclasses.asdict(self)
        if d["blind_conversations"]:
            del d["blind_conversations"]
        if d["backbone"] == "llama-clip":
            del d["backbone"]
        if self.drill == DrillRecipe():
            del d["drill"]
        return json.dumps(d, indent=2, sort_keys=True) + "\n"

    @property
    def tower_subdir(self) -> str:
        """Where the vision tower lies inside the ``clip`` stage folder ('' = the CLIP itself)."""
        return "siglip_tower" if self.backbone == "qwen2-siglip" else ""

    @staticmethod
    def from_dict(d: dict) -> "Recipe":
        d = dict(d)
        d["clip"] = ClipRecipe(**d.get("clip", {}))
        d["lm"] = LMRecipe(**d.get("lm", {}))
        d["drill"] = DrillRecipe(**d.get("drill", {}))
        d["stage1"] = StageArgs(**d["stage1"]) if "stage1" in d else Recipe().stage1
        d["stage2"] = StageArgs(**d["stage2"]) if "stage2" in d else Recipe().stage2
        return Recipe(**d)


# ---------------------------------------------------------------------------- environment
def stage_env(threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "OMP_WAIT_POLICY": "PASSIVE",
        "MALLOC_MMAP_THRESHOLD_": str(1 << 40),
        "MALLOC_TRIM_THRESHOLD_": str(1 << 40),
        "TOKENIZERS_PARALLELISM": "false",
        "PYTHONHASHSEED": "0",
        "ALIGNGPT_TOY_THREADS": str(threads),
    })
    return env


def set_threads() -> None:
    import torch

    torch.set_num_threads(int(os.environ.get("ALIGNGPT_TOY_THREADS", "2")))


# ---------------------------------------------------------------------------- paths
@dataclass
class Work:
    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()

    def stage(self, name: str) -> Path:
        return self.root / name

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def recipe_file(self) -> Path:
        return self.root / "recipe.json"

    def done(self, name: str) -> Path:
        return self.stage(name) / ".done"

    def read_recipe(self) -> Recipe:
        return Recipe.from_dict(json.loads(self.recipe_file.read_text()))


# ---------------------------------------------------------------------------- stages run in-process
def stage_data(work: Work, recipe: Recipe) -> None:
    from aligngpt.toy import generate_toy_data

    generate_toy_data(work.data, seed=recipe.seed, n_per_task=0, benchmarks=(),
                      n_pretrain=recipe.n_pretrain, n_instruct=recipe.n_instruct, image_size=recipe.clip.image_size)


def stage_tokenizer(work: Work, recipe: Recipe) -> None:
    from . import corpus
    from .tokenizers import train_sentencepiece

    if recipe.backbone == "qwen2-siglip":
        train_chatml_bpe(corpus.tokenizer_sentences(work.data), work.stage("tokenizer"), recipe.vocab_size)
        return
    train_sentencepiece(corpus.tokenizer_sentences(work.data), work.stage("tokenizer"), recipe.vocab_size)


def stage_clip(work: Work, recipe: Recipe) -> None:
    from . import corpus
    from .clip import train_clip, twin_accuracy

    set_threads()
    report = train_clip(work.stage("clip"), recipe.clip, extra_captions=tuple(corpus.captions(work.data)))
    report["twin_accuracy"] = twin_accuracy(work.stage("clip"))
    if recipe.tower_subdir:
        export_siglip_tower(work.stage("clip"), work.stage("clip") / recipe.tower_subdir)
    (work.stage("clip") / "toy_clip_training.json").write_text(json.dumps(report, indent=2) + "\n")
    log.info("clip: %s", report)


def stage_base_lm(work: Work, recipe: Recipe) -> None:
    from aligngpt.processing import load_tokenizer

    from . import corpus
    from .base_lm import plain_example, train_base_lm

    set_threads()
    tok = load_tokenizer(work.stage("tokenizer"))
    template = CHAT_TEMPLATES[check_backbone(recipe.backbone)]
    examples = [plain_example(c, tok) for c in corpus.captions(work.data)]
    if recipe.blind_conversations:
        examples += [corpus.chat_example(t, tok, template) for t in corpus.blind_conversations(work.data)]
    examples += [corpus.chat_example(t, tok, template) for t in corpus.described_conversations(recipe.seed, recipe.n_described)]
    family = "qwen2" if recipe.backbone == "qwen2-siglip" else "llama"
    report = train_base_lm(examples, work.stage("tokenizer"), work.stage("base_lm"), recipe.lm, family=family,
                           drills=recipe.drill, template=template)
    log.info("base LM: %s", report)


IN_PROCESS = {"data": stage_data, "tokenizer": stage_tokenizer, "clip": stage_clip, "base_lm": stage_base_lm}


# ---------------------------------------------------------------------------- command-line stages
def _train_common(work: Work, recipe: Recipe, args: StageArgs, use_cpu: Optional[bool] = None) -> list[str]:
    if use_cpu is None:
        use_cpu = train_device() == "cpu"
    return [
        "--model", str(work.stage("base_lm")), "--vision-tower", str(work.stage("clip") / recipe.tower_subdir),
        "--per-device-train-batch-size", str(args.batch_size),
        "--gradient-accumulation-steps", str(args.grad_accum),
        "--learning-rate", str(args.learning_rate), "--num-train-epochs", str(args.epochs),
        "--warmup-ratio", str(args.warmup_ratio), "--seed", str(recipe.seed),
        "--dataloader-num-workers", "0", "--logging-steps", "50", "--disable-tqdm",
        *(["--use-cpu"] if use_cpu else []), "--report-to", "none", *map(str, args.extra),
    ]


def train_commands(work: Work, recipe: Recipe) -> dict[str, list[str]]:
    """The exact ``aligngpt-train`` command lines of the three training stages."""
    pretrain_json = work.data / "LLaVA-Pretrain" / "blip_laion_cc_sbu_558k.json"
    scored = work.stage("score") / "blip_laion_cc_sbu_558k_with_similarity_number.json"
    return {
        "score": ["score-alignment", "--data", str(pretrain_json),
                  "--image-folder", str(work.data / "LLaVA-Pretrain" / "images"), "--clip", str(work.stage("clip")),
                  "--levels", str(recipe.levels), "--bucketing", "quantile", "--out", str(scored), "--no-progress"],
        "pretrain": ["pretrain", "--data", str(scored), "--image-folder", str(work.data / "LLaVA-Pretrain" / "images"),
                     "--output-dir", str(work.stage("pretrain")), "--n-indicators", str(recipe.levels),
                     *_train_common(work, recipe, recipe.stage1)],
        "finetune": ["finetune", "--data", str(work.data / "llava_v1_5_mix665k.json"),
                     "--image-folder", str(work.data),
                     "--pretrain-mm-mlp-align", str(work.stage("pretrain") / "mm_projector_align.bin"),
                     "--output-dir", str(work.stage("finetune")),
                     *(["--version", CHAT_TEMPLATES[recipe.backbone]] if recipe.backbone != "llama-clip" else []),
                     *_train_common(work, recipe, recipe.stage2)],
    }


def eval_command(model_dir: Path, out_dir: Path, batch_size: int, tasks=LOCAL_TASKS, conv_auto: bool = False) -> list[str]:
    """``conv_auto``: prompt in the checkpoint's own template (chat backbones), not the tasks' vicuna_v1."""
    return [sys.executable, "-m", "aligngpt.cli.eval_cli", "run", "--tasks", ",".join(tasks),
            "--model", str(model_dir), "--batch-size", str(batch_size), "--output-dir", str(out_dir), "--fresh",
            *(["--conv-mode", "auto"] if conv_auto else [])]


def install(work: Work, target: Path) -> None:
    """Replace the bundled checkpoint with the stage-2 output (its config names a neutral tower)."""
    src = work.stage("finetune")
    target.mkdir(parents=True, exist_ok=True)
    for old in target.iterdir():
        if old.is_file():
            old.unlink()
    for name in INSTALL_FILES:
        shutil.copyfile(src / name, target / name)
    copy_tokenizer(src, target)
    cfg = json.loads((target / "config.json").read_text())
    cfg["mm_vision_tower"] = TOWER_NAME  # the scratch path means nothing elsewhere; weights are embedded
    (target / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------- driver
def _run(cmd: list[str], env: dict, log_file: Path) -> None:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as fh:
        proc = subprocess.run(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=str(IMPORT_ROOT))
    if proc.returncode != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"stage command failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")


def _emptied(stage_dir: Path) -> Path:
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    stage_dir.mkdir(parents=True)
    return stage_dir


def train_into(out: Path, argv: list[str], env: dict) -> None:
    """One ``aligngpt-train`` command writing into ``out``, emptied first (no optimizer state or
    checkpoint of an earlier attempt is resumed from); its output goes to ``out/stage.log``."""
    _run([sys.executable, "-m", "aligngpt.cli.train_cli", *argv], env, _emptied(out) / "stage.log")


def run_stage(name: str, work: Work, recipe: Recipe, env: dict, opts: argparse.Namespace) -> None:
    stage_dir = work.stage(name)
    if name in ("score", "pretrain", "finetune"):
        train_into(stage_dir, train_commands(work, recipe)[name], env)
        return
    if name == "evaluate":
        _emptied(stage_dir)  # no earlier evaluation left for the results stage to report as this one
    stage_dir.mkdir(parents=True, exist_ok=True)
    logs = stage_dir / "stage.log"
    if name in IN_PROCESS:
        _run([sys.executable, "-m", "dev.toy_recipe", "stage", name, "--work", str(work.root)], env, logs)
    elif name == "install":
        install(work, Path(opts.install_dir))
    elif name == "evaluate":
        _run(eval_command(Path(opts.install_dir), stage_dir / "runs", recipe.eval_batch_size,
                          conv_auto=recipe.backbone != "llama-clip"), env, logs)
    elif name == "results":
        from .results import write_results

        write_results(work, Path(opts.results_dir), opts.command_line)


def check_folders(opts: argparse.Namespace, stages: list[str]) -> None:
    """Every output folder the given stages need is named; each becomes absolute (from the
    current directory), so the stage processes, which start elsewhere, write where the user said."""
    for name in stages:
        attr, flag = NEEDS_FOLDER.get(name, (None, None))
        if attr and not getattr(opts, attr, None):
            raise SystemExit(f"the {name} stage needs {flag} DIR (the bundled model's run passes "
                             "--install-to aligngpt/toy_assets/model --results-dir results/toy)")
    for attr in ("install_dir", "results_dir"):
        if getattr(opts, attr, None):
            setattr(opts, attr, str(Path(getattr(opts, attr)).resolve()))


def run_all(opts: argparse.Namespace) -> dict:
    work = Work(opts.work)
    recipe = Recipe()
    if opts.recipe:
        recipe = Recipe.from_dict(json.loads(Path(opts.recipe).read_text()))
    if getattr(opts, "backbone", None):
        recipe = dataclasses.replace(recipe, backbone=check_backbone(opts.backbone))
    if recipe.backbone != "llama-clip":  # never the bundled model's folder unless asked for
        opts.install_dir = opts.install_dir or str(work.root / "model")
    redo = STAGES.index(opts.from_stage) if opts.from_stage else len(STAGES)
    last = STAGES.index(opts.until) if opts.until else len(STAGES) - 1
    check_folders(opts, [name for name in STAGES[: last + 1] if name not in opts.skip])
    work.root.mkdir(parents=True, exist_ok=True)
    new = recipe.to_json()
    if work.recipe_file.is_file() and work.recipe_file.read_text() != new and not opts.from_stage:
        raise SystemExit(f"{work.recipe_file} holds a different recipe; use a fresh --work or --from data")
    work.recipe_file.write_text(new)
    os.environ["ALIGNGPT_TOY_DEVICE"] = opts.device  # read by the base-LM loop and the aligngpt-train stages
    env = stage_env(opts.threads)
    timings_path = work.root / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.is_file() else {}
    for i, name in enumerate(STAGES[: last + 1]):
        if name in opts.skip:
            continue
        if i < redo and work.done(name).is_file() and name not in ("install", "evaluate", "results"):
            continue
        started = time.time()
        print(f"[toy recipe] {name} ...", file=sys.stderr, flush=True)
        work.done(name).unlink(missing_ok=True)
        run_stage(name, work, recipe, env, opts)
        timings[name] = round(time.time() - started, 1)
        work.done(name).parent.mkdir(parents=True, exist_ok=True)
        work.done(name).write_text("ok\n")
        timings_path.write_text(json.dumps(timings, indent=2) + "\n")
        print(f"[toy recipe] {name} done in {timings[name]:.1f}s", file=sys.stderr, flush=True)
    return timings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dev.toy_recipe",
                                description="Train the bundled toy AlignGPT end to end and record its scores.")
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("all", help="every stage, in order (resumes from the .done markers)")
    a.add_argument("--work", required=True, help="scratch folder for data and intermediate models")
    a.add_argument("--threads", type=int, default=2, help="torch / OpenMP threads per stage (default 2)")
    a.add_argument("--recipe", default=None, help="JSON file overriding the Recipe defaults")
    a.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the base LM and the aligngpt-train stages train (cuda: fast for trying recipes, "
                        "but only the CPU reproduces the committed numbers)")
    a.add_argument("--backbone", choices=BACKBONES, default=None,
                   help="llama-clip (the bundled model; default) or qwen2-siglip (Qwen2-shaped LM, SigLIP-shaped tower)")
    a.add_argument("--install-to", dest="install_dir", default=None, metavar="DIR",
                   help="where the install stage puts the checkpoint and the evaluate stage reads it (required for "
                        "those stages with the default backbone; the bundled model is aligngpt/toy_assets/model; "
                        "other backbones default to WORK/model)")
    a.add_argument("--results-dir", default=None, metavar="DIR",
                   help="where the results stage writes metrics.json and README.md (required for that stage; "
                        "the committed ones are results/toy and results/toy/BACKBONE)")
    a.add_argument("--from", dest="from_stage", choices=STAGES, default=None, help="redo this stage and all after it")
    a.add_argument("--until", choices=STAGES, default=None, help="stop after this stage")
    a.add_argument("--skip", action="append", default=[], choices=STAGES, help="skip a stage (repeatable)")
    s = sub.add_parser("stage", help="run one in-process stage (used by 'all')")
    s.add_argument("name", choices=sorted(IN_PROCESS))
    s.add_argument("--work", required=True)
    return p


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if opts.cmd == "stage":
        work = Work(opts.work)
        IN_PROCESS[opts.name](work, work.read_recipe())
        return 0
    opts.command_line = "python -m dev.train_toy_model " + " ".join(argv[1:])
    started = time.time()
    timings = run_all(opts)
    print(json.dumps({"work": str(Path(opts.work).resolve()), "seconds": round(time.time() - started, 1),
                      "stages": timings}, indent=2))
    return 0
