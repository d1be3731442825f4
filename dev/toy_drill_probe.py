"""How long the toy base LM needs to learn option-letter lookup and reading, and which drills first help.

Research for the toy recipe (not shipped). A fresh Llama of the recipe's base-LM shape is trained
on the drills of :mod:`dev.toy_recipe.drills` in the phases given by ``--phases``
(``short:3000,chat:1000``), and its held-out chat-drill letter accuracy (and, where a phase reads,
its held-out reading accuracy per answer kind) is measured every ``--eval-every`` steps. Writes
``curve.json`` and ``curve.md``; logs each point as it is measured.

    python -m dev.toy_drill_probe --phases chat:4000 --threads 1 --out /tmp/drill/chat_only
    python -m dev.toy_drill_probe --phases short:3000,chat:1000 --threads 1 --out /tmp/drill/curriculum
    python -m dev.toy_drill_probe --phases presence:2000,read:1000 --threads 1 --out /tmp/drill/presence
"""
from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from pathlib import Path

import torch

from aligngpt.processing import load_tokenizer
from dev.toy_recipe.base_lm import LMRecipe, build_llama
from dev.toy_recipe.drills import FORMATS, READ_KINDS, DrillRecipe, train_drills

BUNDLED_TOKENIZER = Path(__file__).resolve().parents[1] / "aligngpt" / "toy_assets" / "model"


def parse_phases(text: str) -> list[tuple[str, int]]:
    phases = []
    for part in text.split(","):
        fmt, _, steps = part.partition(":")
        if fmt not in FORMATS or not steps.isdigit() or int(steps) == 0:
            raise SystemExit(f"--phases: {part!r} is not FORMAT:STEPS with FORMAT in {FORMATS} and STEPS > 0")
        phases.append((fmt, int(steps)))
    return phases


def curve_table(curve: list[dict], chance: float) -> str:
    """Markdown: held-out chat-drill accuracy, distinct predicted first tokens, the phase's batch loss,
    and held-out reading accuracy per answer kind where the phases read."""
    kinds = [k for k in READ_KINDS if any(k in row.get("reading", {}) for row in curve)]
    lines = [f"| step | phase | batch loss | chat-drill accuracy (chance {chance:.0f}) | distinct first tokens | "
             + "".join(f"reading {k} | " for k in kinds) + "seconds |",
             "| ---: | --- | ---: | ---: | ---: | " + "---: | " * len(kinds) + "---: |"]
    for row in curve:
        loss = f"{row['loss']:.3f}" if "loss" in row else ""
        reading = "".join(f"{row['reading'][k]:.1f} | " if k in row.get("reading", {}) else " | " for k in kinds)
        lines.append(f"| {row['step']} | {row['phase']} | {loss} | {row['chat_accuracy']:.1f} | {row['distinct']} "
                     f"| {reading}{row['seconds']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phases", default="chat:3000", help=f"comma-separated FORMAT:STEPS ({', '.join(FORMATS)})")
    ap.add_argument("--layers", type=int, default=LMRecipe.num_layers)
    ap.add_argument("--hidden", type=int, default=LMRecipe.hidden_size)
    ap.add_argument("--batch-size", type=int, default=DrillRecipe.batch_size)
    ap.add_argument("--lr", type=float, default=DrillRecipe.learning_rate)
    ap.add_argument("--warmup", type=int, default=DrillRecipe.warmup_steps)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--tokenizer", type=Path, default=BUNDLED_TOKENIZER)
    ap.add_argument("--out", type=Path, required=True, help="folder for curve.json and curve.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # the curve, as it is measured
    if args.threads:
        torch.set_num_threads(args.threads)
    phases = parse_phases(args.phases)
    tokenizer = load_tokenizer(args.tokenizer)
    lm = LMRecipe(num_layers=args.layers, hidden_size=args.hidden, intermediate_size=args.hidden * 11 // 4, seed=args.seed)
    drills = DrillRecipe(batch_size=args.batch_size, learning_rate=args.lr, warmup_steps=args.warmup)
    model = build_llama(lm, tokenizer)
    curve = train_drills(model, tokenizer, drills, args.seed, eval_every=args.eval_every, phases=phases)
    args.out.mkdir(parents=True, exist_ok=True)
    chance = 100.0 / drills.n_options
    record = {"phases": args.phases, "lm": asdict(lm), "drills": asdict(drills), "torch_threads": torch.get_num_threads(),
              "chance": chance, "curve": curve}
    (args.out / "curve.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.out / "curve.md").write_text(f"phases `{args.phases}`, {args.layers} layers x {args.hidden}\n\n" + curve_table(curve, chance))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
