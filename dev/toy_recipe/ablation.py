"""The paper's ablations re-run on the toy world: Table 3, Table 4, the baseline and Fig. 5.

``python -m dev.toy_ablation --work WORK --out DIR`` (from the repository root, after
``python -m dev.train_toy_model --work WORK ...``) trains every variant with ``aligngpt-train`` from
the recipe's own data, tiny CLIP and base LM, evaluates them all with ``aligngpt-eval grid`` on the
locally scored toy tasks, and writes the tables, figures and significance summary to ``DIR``
(the committed ones: ``--out results/toy_ablation``). ``--bundled-results results/toy`` adds the
comparison of the retrained N = 8 row with the bundled model's committed scores:

===========  ==========================================================  =====================
variant      what changes (everything else is the recipe's)              paper
===========  ==========================================================  =====================
``N=4..10``  alignment levels N in ``score-alignment`` and stage 1       Table 3
``local``    stage 2 and inference use the local (per-sample) level only  Table 4
``global``   ... the global embedding only                               Table 4
``average``  ... the mean of local and global                            Table 4
``gated``    ... the gate's mixture (the recipe's model, N = 8)          Table 4 (AlignGPT)
``none``     no alignment at either stage (LLaVA-1.5)                    baseline row
``random``   stage 2 starts from a re-initialised alignment table        Fig. 5
===========  ==========================================================  =====================

Stage-1 runs are shared wherever the paper's setup shares them (Table 4 and the random table
reuse the N = 8 stage 1). Every variant, the recipe's own N = 8 model included, is trained here
from the recipe's data, CLIP and base LM, so all rows come from the same machine and software
(the N = 8 row is then also a replicate of the bundled model). Each training stage leaves a ``.done`` marker, so an interrupted ablation continues where it
stopped; the grid dedupes and resumes its evaluation cells on its own. ``--jobs K`` trains K
variants at a time, each in its own ``aligngpt-train`` process (for machines with more cores;
every process runs with the recipe's thread count, so the numbers do not depend on K).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from .pipeline import LOCAL_TASKS, Recipe, Work, _run, _train_common, stage_env, train_into

#: Table 3's level counts (the paper: 4, 6, 8, 10; 8 is AlignGPT's default).
LEVELS = (4, 6, 8, 10)


@dataclass(frozen=True)
class Variant:
    name: str
    levels: int
    mode: str = "gated"
    random_table: bool = False
    tables: tuple[str, ...] = field(default_factory=tuple)

    @property
    def stage1_key(self) -> str:
        return "none" if self.mode == "none" else f"N{self.levels}"


def variants(default_levels: int = 8) -> list[Variant]:
    out = [Variant(f"N={n}", n, tables=("table3",) + (("table4",) if n == default_levels else ())) for n in LEVELS]
    out += [Variant(m, default_levels, mode=m, tables=("table4",)) for m in ("local", "global", "average")]
    out += [Variant("none", default_levels, mode="none", tables=("table3", "table4")),
            Variant("random", default_levels, random_table=True, tables=("random",))]
    return out


def _slug(name: str) -> str:
    return name.replace("=", "")


class Ablation:
    def __init__(self, work: Work, recipe: Recipe, threads: int, device: str = "cpu",
                 work_arg: str | None = None, bundled_results: str | None = None) -> None:
        self.work, self.recipe, self.threads, self.device = work, recipe, threads, device
        self.root = work.root / "ablation"
        self.env = stage_env(threads)
        self.work_arg = work_arg or str(work.root)  # as the user typed it, for the README
        #: the bundled model's results folder (its metrics.json), as the user typed it; None: no comparison
        self.bundled_results = bundled_results

    # ------------------------------------------------------------------ folders
    def stage1_dir(self, key: str) -> Path:
        return self.root / "stage1" / key

    def scored_json(self, levels: int) -> Path:
        return self.root / "score" / f"N{levels}" / "blip_laion_cc_sbu_558k_with_similarity_number.json"

    def model_dir(self, v: Variant) -> Path:
        return self.root / "finetune" / _slug(v.name)

    def default_variant(self) -> Variant:
        """The recipe's own model: gated, N = recipe.levels."""
        return next(v for v in variants(self.recipe.levels) if v.name == f"N={self.recipe.levels}")

    # ------------------------------------------------------------------ training
    def _common(self, args) -> list[str]:
        return _train_common(self.work, self.recipe, args, use_cpu=self.device == "cpu")

    def _stage(self, out: Path, argv: list[str]) -> None:
        """One ``aligngpt-train`` command into ``out``, skipped when ``out/.done`` exists."""
        if (out / ".done").is_file():
            return
        started = time.time()
        train_into(out, argv, self.env)
        (out / ".done").write_text(f"{time.time() - started:.1f}\n")

    def score(self, levels: int) -> None:
        target = self.scored_json(levels)
        data = self.work.data / "LLaVA-Pretrain"
        self._stage(target.parent, ["score-alignment", "--data", str(data / "blip_laion_cc_sbu_558k.json"),
                                    "--image-folder", str(data / "images"), "--clip", str(self.work.stage("clip")),
                                    "--levels", str(levels), "--bucketing", "quantile", "--out", str(target),
                                    "--no-progress"])

    def stage1(self, key: str) -> None:
        out = self.stage1_dir(key)
        data = self.work.data / "LLaVA-Pretrain"
        if key == "none":
            source, extra = data / "blip_laion_cc_sbu_558k.json", ["--align-mode", "none"]
        else:
            levels = int(key[1:])
            self.score(levels)
            source, extra = self.scored_json(levels), ["--n-indicators", str(levels)]
        self._stage(out, ["pretrain", "--data", str(source), "--image-folder", str(data / "images"),
                          "--output-dir", str(out), *extra,
                          *self._common(self.recipe.stage1)])

    def stage2(self, v: Variant) -> None:
        out = self.model_dir(v)
        extra = ["--align-mode", v.mode]
        if v.random_table:
            extra.append("--random-align-table")
        self._stage(out, ["finetune", "--data", str(self.work.data / "llava_v1_5_mix665k.json"),
                          "--image-folder", str(self.work.data),
                          "--pretrain-mm-mlp-align", str(self.stage1_dir(v.stage1_key) / "mm_projector_align.bin"),
                          "--output-dir", str(out), *extra,
                          *self._common(self.recipe.stage2)])

    def train(self, jobs: int) -> None:
        all_variants = variants(self.recipe.levels)
        keys = sorted({v.stage1_key for v in all_variants})
        started = time.time()
        pending = [v for v in all_variants if not (self.model_dir(v) / ".done").is_file()]
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:  # each job is its own process
            list(pool.map(self.stage1, keys))
            list(pool.map(self.stage2, all_variants))
        if pending:
            self.write_provenance(jobs, time.time() - started)

    def write_provenance(self, jobs: int, seconds: float) -> None:
        """Where and how the variants were trained (the README shows it next to the tables)."""
        import os
        import platform

        import torch
        import transformers

        info = {"train_device": self.device, "jobs": jobs, "threads_per_job": self.threads,
                "cpu_count": os.cpu_count(), "machine": platform.machine(), "python": platform.python_version(),
                "torch": torch.__version__, "seconds": round(seconds, 1)}
        if self.device == "cuda" and torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
        info["transformers"] = transformers.__version__
        (self.root / "provenance.json").write_text(json.dumps(info, indent=2) + "\n")

    # ------------------------------------------------------------------ evaluation and reports
    def grid_spec(self, tasks: tuple[str, ...]) -> Path:
        models = [{"label": v.name, "path": str(self.model_dir(v))} for v in variants(self.recipe.levels)]
        spec = {
            "models": models,
            "align_modes": [None],
            "tasks": list(tasks),
            "seeds": [0],
            "settings": {"source": "toy", "batch_size": self.recipe.eval_batch_size},
            "baseline": "none/default",
            "output_dir": str(self.root / "grid"),
            "stats": {"n_resamples": 1000, "alpha": 0.05, "seed": 0},
        }
        path = self.root / "grid.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    def fixed_spec(self, tasks: tuple[str, ...]) -> Path:
        """The gated model forced to each level in turn (the accuracy-vs-level figure)."""
        spec = {
            "models": [{"label": "gated", "path": str(self.model_dir(self.default_variant()))}],
            "align_modes": ["fixed:*"],
            "tasks": list(tasks),
            "seeds": [0],
            "settings": {"source": "toy", "batch_size": self.recipe.eval_batch_size},
            "output_dir": str(self.root / "grid_fixed"),
        }
        path = self.root / "grid_fixed.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path

    def evaluate(self, tasks: tuple[str, ...], fixed_tasks: tuple[str, ...]) -> None:
        cli = [sys.executable, "-m", "aligngpt.cli.eval_cli"]
        _run([*cli, "grid", str(self.grid_spec(tasks)), "--quiet"], self.env, self.root / "grid.log")
        _run([*cli, "grid", str(self.fixed_spec(fixed_tasks)), "--quiet"], self.env, self.root / "grid_fixed.log")


def load_grid(grid_dir: Path) -> dict:
    """A grid's ``grid_results.json``."""
    return json.loads((grid_dir / "grid_results.json").read_text())


def _cells(grid_dir: Path, data: dict) -> dict[str, Path]:
    """model label -> run folder of each complete cell of a grid (``data``: its results file)."""
    return {c["model"] if c["align_mode"] is None else f"{c['model']}/{c['align_mode']}": grid_dir / c["run_dir"]
            for c in data["cells"] if c["status"] == "complete"}


def write_reports(ablation: Ablation, out_dir: Path, command_line: str) -> None:
    """Tables (LaTeX + Markdown), figures and the significance summary into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = load_grid(ablation.root / "grid")
    cells = _cells(ablation.root / "grid", grid)
    all_v = variants(ablation.recipe.levels)
    groups = {
        "table3_levels": ([v.name for v in all_v if "table3" in v.tables and v.mode != "none"] + ["none"],
                          "Toy ablation of the number of alignment levels N (cf. AlignGPT Table 3)"),
        "table4_strategies": (["local", "global", "average", "N=8", "none"],
                              "Toy ablation of the alignment strategy (cf. AlignGPT Table 4; N=8 is gated)"),
        "random_table": (["N=8", "random", "none"],
                         "Learned vs randomly initialised alignment table (cf. AlignGPT Fig. 5)"),
    }
    cli = [sys.executable, "-m", "aligngpt.cli.eval_cli"]
    env = ablation.env
    for name, (labels, caption) in groups.items():
        dirs = [str(cells[lab]) for lab in labels]
        common = ["table", *dirs, "--labels", ",".join(labels), "--baseline", "none", "--ci",
                  "--caption", caption]
        for fmt, ext in (("latex", "tex"), ("markdown", "md")):
            _run([*cli, *common, "--format", fmt, "--out", str(out_dir / f"{name}.{ext}")], env,
                 ablation.root / f"table_{name}_{fmt}.log")
    figures = out_dir / "figures"
    figures.mkdir(exist_ok=True)
    gated = str(cells["N=8"])
    _run([*cli, "plot", "--kind", "gate-heatmap", gated, "--labels", "gated (N=8)", "--out",
          str(figures / "gate_heatmap")], env, ablation.root / "plot_heatmap.log")
    fixed = _cells(ablation.root / "grid_fixed", load_grid(ablation.root / "grid_fixed"))
    fixed_dirs = [str(d) for _, d in sorted(fixed.items(), key=lambda kv: int(kv[0].rsplit(":", 1)[-1]))]
    if fixed_dirs:
        _run([*cli, "plot", "--kind", "fixed-level", *fixed_dirs, "--out", str(figures / "fixed_level")], env,
             ablation.root / "plot_fixed.log")
    if len(grid["tasks"]) >= 3:  # a radar needs 3 axes
        _run([*cli, "plot", "--kind", "radar", str(cells["N=8"]), str(cells["random"]), str(cells["none"]),
              "--labels", "gated (N=8),random table,none (LLaVA-1.5)", "--out", str(figures / "radar")], env,
             ablation.root / "plot_radar.log")
    summary = significance_summary(grid)
    (out_dir / "significance.md").write_text(summary)
    (out_dir / "COMMAND.txt").write_text(command_line + "\n")
    (out_dir / "README.md").write_text(render_readme(ablation, grid, out_dir, groups, summary, command_line))
    shutil.copyfile(ablation.work.recipe_file, out_dir / "recipe.json")
    for spec in ("grid.yaml", "grid_fixed.yaml"):
        shutil.copyfile(ablation.root / spec, out_dir / spec)
    shutil.copyfile(ablation.root / "grid" / "grid_results.json", out_dir / "grid_results.json")


def render_readme(ablation: Ablation, grid: dict, out_dir: Path, groups: dict, summary: str, command_line: str) -> str:
    provenance_file = ablation.root / "provenance.json"
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    lines = ["# Toy ablation: AlignGPT's Tables 3 and 4 and Fig. 5 re-run on the toy world", "",
             "Every row is a model trained by `aligngpt-train` (score-alignment -> pretrain -> finetune) from the",
             "toy recipe's data, tiny CLIP and base LM, then evaluated with `aligngpt-eval grid` on the locally",
             "scored toy tasks (the bundled toy data). Synthetic data: the numbers show what the tooling",
             "measures, not what AlignGPT-7B does. Each cell: score, then ± the half-width of its 95% bootstrap",
             "CI over questions; † marks a paired-bootstrap difference from the `none` row (LLaVA-1.5",
             "baseline) with p < 0.05.", "",
             "Regenerate (recipe first, then the ablation):", "", "```bash",
             f"python -m dev.train_toy_model --work {ablation.work_arg} --recipe {_cwd_relative(out_dir)}/recipe.json "
             "--until base_lm", command_line, "```", "",
             "(`recipe.json` pins the recipe these rows were trained with; the ablation needs only the recipe's",
             "data, tokenizer, CLIP and base LM, hence `--until base_lm`.)", ""]
    if provenance:
        where = f"{provenance.get('gpu', provenance['train_device'])}" if provenance["train_device"] == "cuda" else "CPU"
        lines += [f"This run trained its variants with `--jobs {provenance['jobs']} --train-device "
                  f"{provenance['train_device']}` on {where} ({provenance['jobs']} at a time, "
                  f"{provenance['cpu_count']} cores, torch {provenance['torch']}, transformers "
                  f"{provenance['transformers']}, {provenance['seconds']:.0f} s) and evaluated them on this "
                  "machine's CPU. A rerun on other hardware gives different numbers (see the training-run variance below).", ""]
    headings = {"table3_levels": "Table 3: number of alignment levels", "table4_strategies": "Table 4: alignment strategy",
                "random_table": "Fig. 5: learned vs random alignment table"}
    for name in groups:
        lines += [f"## {headings.get(name, name)}", "", (out_dir / f"{name}.md").read_text().strip(), "",
                  f"LaTeX: [`{name}.tex`]({name}.tex)", ""]
    lines += replicate_note(ablation, grid)
    lines += ["## Figures", "", "- `figures/gate_heatmap.{png,pdf}`: mean gate weight per alignment level and task (N=8).",
              "- `figures/fixed_level.{png,pdf}`: the N=8 model forced to each level (`fixed:K`).",
              "- `figures/radar.{png,pdf}`: gated vs random table vs none (cf. Fig. 5).", "",
              summary.replace("# Which", "## Which")]
    return "\n".join(lines)


def _cwd_relative(path: Path) -> str:
    """``path`` relative to the current directory (where the commands are run) when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def replicate_note(ablation: Ablation, grid: dict) -> list[str]:
    """The N = recipe-levels row is a retrained replicate of the bundled model: how far apart are
    the two? (Training-run variance, which bootstrap intervals over questions do not include.)"""
    if not ablation.bundled_results:
        return []
    bundled = Path(ablation.bundled_results) / "metrics.json"
    if not bundled.is_file():
        return []
    ref = json.loads(bundled.read_text())["tasks"]
    name = ablation.default_variant().name
    cell = next((c for c in grid["cells"] if c["model"] == name and c.get("tasks")), None)
    if cell is None:
        return []
    diffs = []
    for task, row in ref.items():
        metrics = (cell["tasks"].get(task) or {}).get("metrics")
        if metrics is None:
            continue
        value = metrics
        for part in row["headline"].split("."):
            value = value[part]
        diffs.append((task, value, row["value"]))
    if not diffs:
        return []
    largest = max(diffs, key=lambda d: abs(d[1] - d[2]))
    lines = ["## Training-run variance", "",
             f"The `{name}` row is the recipe's own model retrained here; the bundled model "
             f"(`{ablation.bundled_results.rstrip('/')}/`) is the same recipe trained once more on a CPU. Their scores:", "",
             "| task | this ablation | bundled | difference |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {t} | {a:.1f} | {b:.1f} | {a - b:+.1f} |" for t, a, b in diffs]
    lines += ["", f"The largest gap ({largest[0]}, {largest[1] - largest[2]:+.1f}) is as large as most ablation "
              "effects below: the bootstrap intervals and tests cover the sampling of questions, not the "
              "randomness of training, so a significant difference here means 'these two trained models "
              "differ on these questions', not 'this design choice is better'. Seeds (the grid's `seeds`, "
              "several trainings per row) are what separates the two.", ""]
    return lines


def significance_summary(data: dict) -> str:
    """Markdown: every (row, task) whose headline metric differs from the baseline row with
    p < 0.05 in the paired bootstrap, then the count of those that do not."""
    from aligngpt.harness.tasks import load_task

    lines = ["# Which toy-ablation differences are significant", "",
             f"Paired bootstrap over the same questions against the baseline row `{data.get('baseline')}` "
             "(MME image pairs, MMBench circular groups and POPE splits resampled whole), headline metric "
             "of each task; two-sided p < 0.05 listed.", ""]
    sig, nonsig = [], 0
    for cell in data["cells"]:
        for task, t in (cell.get("tasks") or {}).items():
            headline = load_task(task).headline
            test = t.get("vs_baseline", {}).get(headline)
            if not test:
                continue
            if test["p_value"] < 0.05:
                sig.append(f"- **{cell['model']}** on `{task}` ({headline}): {test['diff']:+.2f} "
                           f"(95% CI {test['ci_low']:+.2f} .. {test['ci_high']:+.2f}), p = {test['p_value']:.3f}")
            else:
                nonsig += 1
    lines += sig or ["- none"]
    lines += ["", f"{len(sig)} significant and {nonsig} not significant (row, task) differences at p < 0.05."]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m dev.toy_ablation", description=__doc__.split("\n")[0])
    p.add_argument("--work", required=True, help="the work folder of a finished dev.train_toy_model run")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="where the tables, figures and README go (the committed ones: results/toy_ablation)")
    p.add_argument("--bundled-results", default=None, metavar="DIR",
                   help="the bundled model's results folder (results/toy): adds the training-run variance "
                        "section, the retrained N=8 row against its committed scores")
    p.add_argument("--threads", type=int, default=2, help="torch threads per training process (as the recipe)")
    p.add_argument("--jobs", type=int, default=1, help="variants trained at once (one process each)")
    p.add_argument("--train-device", choices=("cpu", "cuda"), default="cpu",
                   help="where aligngpt-train runs (cuda: all variants share the GPU; numbers then differ "
                        "slightly from a CPU run of the same recipe)")
    p.add_argument("--tasks", default=",".join(LOCAL_TASKS))
    p.add_argument("--fixed-tasks", default="gqa,pope,mme,textvqa", help="tasks of the forced-level figure")
    p.add_argument("--until", choices=("train", "evaluate", "report"), default="report")
    return p


def main(argv: Optional[list[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    opts = build_parser().parse_args(argv)
    work = Work(opts.work)
    for stage in ("data", "clip", "base_lm"):
        if not work.done(stage).is_file():
            raise SystemExit(f"{work.root}: the recipe's '{stage}' stage has not finished; "
                             f"run python -m dev.train_toy_model --work {work.root} first")
    if opts.bundled_results and not (Path(opts.bundled_results) / "metrics.json").is_file():
        raise SystemExit(f"--bundled-results {opts.bundled_results}: no metrics.json there")
    recipe = work.read_recipe()
    ablation = Ablation(work, recipe, opts.threads, opts.train_device, work_arg=opts.work,
                        bundled_results=opts.bundled_results)
    started = time.time()
    ablation.train(opts.jobs)
    print(f"[toy ablation] trained in {time.time() - started:.0f}s", file=sys.stderr, flush=True)
    if opts.until == "train":
        return 0
    tasks = tuple(t for t in opts.tasks.split(",") if t)
    ablation.evaluate(tasks, tuple(t for t in opts.fixed_tasks.split(",") if t))
    print(f"[toy ablation] evaluated at {time.time() - started:.0f}s", file=sys.stderr, flush=True)
    if opts.until == "evaluate":
        return 0
    write_reports(ablation, Path(opts.out), "python -m dev.toy_ablation " + " ".join(argv))
    print(f"[toy ablation] reports in {opts.out} at {time.time() - started:.0f}s", file=sys.stderr, flush=True)
    return 0
