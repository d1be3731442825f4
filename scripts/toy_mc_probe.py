#!/usr/bin/env python
"""How fast does a toy-sized Llama learn to answer with an option's letter? (issue 6 diagnosis)

    python scripts/toy_mc_probe.py [--layers 4] [--steps 1200] [--options 4] [--bare] [--out results/toy/mc_probe.md]

Every multiple-choice toy benchmark (ScienceQA-IMG, SEED-Bench, MMBench, MMBench-CN) stays at
chance for the bundled model, and in a GPU sweep of longer recipes too. This probe strips the
task to its core, text only: "Which option is X?" followed by the options (``A. ...``, the
prompt layout of those benchmarks) and the benchmarks' answer instruction; the answer is the
letter of the option that *is* X, so nothing has to be seen or known, only looked up. A fresh
Llama of the recipe's base-LM shape (tokenizer: the bundled model's) is trained on fresh
batches of such questions, and held-out first-token accuracy is reported as it trains, with the
number of distinct letters it predicts: a curve at the constant-guess rate with one distinct
letter means the model has not started to look the option up.

``--bare`` drops the chat template (system prompt and roles), leaving "USER: ... ASSISTANT:",
so the context is short. Seeded; on one CPU thread 0.1 s (bare, 2 layers) to 0.3 s (chat template,
4 layers) per step.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from aligngpt.harness.toy import toy_model_dir
from aligngpt.io import atomic_write_text
from aligngpt.processing import LlamaSPTokenizer
from aligngpt.processing.training_preprocess import TrainingExample, collate, preprocess_sample
from aligngpt.toy import text as T
from aligngpt.toy.layout import LETTERS, MC_ANSWER, mc_block
from aligngpt.toy.recipe.base_lm import LMRecipe, build_llama
from aligngpt.toy.world import COLORS, SHAPES

import toy_lm_reading as reading  # beside this file (scripts/ is on sys.path when a script runs)


def single_piece_words(tok: LlamaSPTokenizer) -> list[str]:
    """Toy-world words that are one sentencepiece token (so matching X needs no multi-token span)."""
    words = set(COLORS) | set(SHAPES) | set(T.NUM_WORDS) | set(T.SPANISH) | set(T.SPANISH.values())
    return sorted(w for w in words if len(tok.sp.encode(w)) == 1)


def lookup_question(rng: np.random.Generator, pool: list[str], n_options: int) -> tuple[str, str]:
    options = [str(w) for w in rng.choice(pool, n_options, replace=False)]
    k = int(rng.integers(n_options))
    return f"Which option is {options[k]}?" + mc_block(options) + MC_ANSWER, LETTERS[k]


def encode(tok: LlamaSPTokenizer, question: str, answer: str, bare: bool) -> TrainingExample:
    if not bare:
        turns = [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
        return preprocess_sample(turns, tok, "vicuna_v1", has_image=False)
    prompt = tok.encode(f"USER: {question} ASSISTANT:")
    target = tok.sp.encode(" " + answer)[-1:] + [tok.eos_token_id]
    return TrainingExample(prompt + target, [-100] * len(prompt) + target)


def probe(layers: int, steps: int, n_options: int, bare: bool, seed: int, every: int = 100,
          batch: int = 32, lr: float = 2e-3, n_test: int = 300) -> dict:
    tok = LlamaSPTokenizer.from_pretrained(toy_model_dir())
    pool = single_piece_words(tok)
    test_rng = np.random.default_rng(seed + 10_000)
    test_items = [lookup_question(test_rng, pool, n_options) for _ in range(n_test)]
    test = [encode(tok, q, a, bare) for q, a in test_items]
    constant_guess = max(Counter(a for _, a in test_items).values()) / n_test
    lm = build_llama(LMRecipe(num_layers=layers, seed=seed), tok)
    distinct: list[int] = []

    def evaluate() -> float:
        predicted = reading.first_answer_logits(lm, test, tok.pad_token_id).argmax(-1).tolist()
        distinct.append(len(set(predicted)))
        lm.train()
        return float(np.mean(reading.answer_hits(predicted, test)))

    def batch_loss(rng: np.random.Generator) -> torch.Tensor:
        ids, labels, mask = collate([encode(tok, *lookup_question(rng, pool, n_options), bare) for _ in range(batch)],
                                    tok.pad_token_id)
        return lm(input_ids=ids, attention_mask=mask, labels=labels).loss

    lm.train()
    started = time.time()
    curve = reading.train_loop(lm.parameters(), steps, lr, batch_loss, evaluate, every, seed)
    return {"layers": layers, "steps": steps, "options": n_options, "bare": bare, "seed": seed, "batch": batch,
            "lr": lr, "pool": pool, "constant_guess": constant_guess, "seconds": round(time.time() - started, 1),
            "curve": [[s, a, d] for (s, a), d in zip(curve, distinct)]}


def render(reports: list[dict], command: str) -> str:
    lines = ["# Option-letter lookup from scratch (issue 6 diagnosis)", "",
             f"`{command}`; `scripts/toy_mc_probe.py` says what is measured. Held-out first-token accuracy "
             "(%), and in brackets the number of distinct letters predicted.", ""]
    for r in reports:
        context = "bare USER/ASSISTANT" if r["bare"] else "vicuna_v1 chat template"
        lines += [f"## {r['layers']} layers, {r['options']} options, {context}", "",
                  f"{len(r['pool'])} one-token words; constant guess {100 * r['constant_guess']:.1f}%; "
                  f"{r['steps']} steps of {r['batch']} at lr {r['lr']:g} took {r['seconds']:.0f} s.", ""]
        lines += reading.step_table([s for s, _, _ in r["curve"]],
                                    {"accuracy": [f"{100 * a:.1f} ({d})" for _, a, d in r["curve"]]})
        lines += [""]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--layers", type=int, nargs="+", default=[4])
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--options", type=int, default=4)
    p.add_argument("--bare", action="store_true")
    p.add_argument("--lr", type=float, default=2e-3, help="constant learning rate (the base LM's peak: 2e-3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="results/toy/mc_probe.md")
    opts = p.parse_args(argv)
    torch.set_num_threads(opts.threads)
    reports = [probe(n, opts.steps, opts.options, opts.bare, opts.seed, lr=opts.lr) for n in opts.layers]
    command = "python scripts/toy_mc_probe.py " + " ".join(argv if argv is not None else sys.argv[1:])
    out = Path(opts.out)
    atomic_write_text(out.with_suffix(".json"), json.dumps({"command": command, "reports": reports}, indent=2) + "\n")
    atomic_write_text(out, render(reports, command))
    print(render(reports, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
