"""Option-letter drills: the base LM's first lesson, before it reads any toy text.

Four toy benchmarks (ScienceQA-IMG, SEED, MMBench, MMBench-CN) answer with an option's letter.
Naming the letter of an option that matches is an induction-style lookup, and a tiny LM trained
only on benchmark-shaped chats sits on a one-letter plateau for thousands of steps
(``results/toy/drill_probe.md``). A short, dense drill first (``A. w1 B. w2 C. w3 D. w4 ? w3 =``
then the letter, ~30 tokens) crosses that plateau cheaply; a chat-shaped drill afterwards (the
benchmark's option block and letter suffix in the chat template) moves the skill into the format
the benchmarks ask in. The drill words are the toy world's option words; the drills never see a
benchmark question.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

import torch

from aligngpt.constants import IGNORE_INDEX
from aligngpt.processing.training_preprocess import TrainingExample, collate, preprocess_sample
from aligngpt.toy.layout import LETTERS, MC_ANSWER, mc_block
from aligngpt.toy.world import COLORS, SHAPES, WORDS

from .loop import optimizer_step, warmup_cosine

log = logging.getLogger(__name__)

FORMATS = ("short", "chat")


@dataclass
class DrillRecipe:
    """Steps of each drill phase (0 = no drills: the recipe of the bundled model)."""

    short_steps: int = 0
    chat_steps: int = 0
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    n_options: int = 4

    @property
    def steps(self) -> int:
        return self.short_steps + self.chat_steps


def option_pool() -> list[str]:
    """The toy world's option words (colours, shapes, words, small counts)."""
    return sorted(set(COLORS) | set(SHAPES) | set(WORDS) | {str(n) for n in range(10)})


def short_drill(tokenizer, options: list[str], answer: int) -> TrainingExample:
    """``A. w1 B. w2 ... ? wk =`` then the letter; only the letter's tokens are targets."""
    prompt = " ".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options)) + f" ? {options[answer]} ="
    head = tokenizer.encode(prompt)
    full = tokenizer.encode(prompt + " " + LETTERS[answer])
    if full[: len(head)] != head:
        raise ValueError(f"drill prompt tokens are not a prefix of the answered drill: {prompt!r}")
    return TrainingExample(full, [IGNORE_INDEX] * len(head) + full[len(head):])


def chat_drill(tokenizer, options: list[str], answer: int, template: str = "vicuna_v1") -> TrainingExample:
    """``Which option is wk?`` with the benchmarks' option block and letter suffix, as a masked chat."""
    question = f"Which option is {options[answer]}?" + mc_block(options) + MC_ANSWER
    turns = [{"from": "human", "value": question}, {"from": "gpt", "value": LETTERS[answer]}]
    return preprocess_sample(turns, tokenizer, template, has_image=False)


def drill(fmt: str, tokenizer, rng: random.Random, pool: list[str], n_options: int = 4,
          template: str = "vicuna_v1") -> TrainingExample:
    """One drill of format ``fmt`` with options and answer drawn from ``rng``."""
    options = rng.sample(pool, n_options)
    answer = rng.randrange(n_options)
    if fmt == "short":
        return short_drill(tokenizer, options, answer)
    if fmt == "chat":
        return chat_drill(tokenizer, options, answer, template)
    raise ValueError(f"unknown drill format {fmt!r} ({', '.join(FORMATS)})")


def first_answer_position(example: TrainingExample) -> int:
    """Index of the logit that predicts the first answer token."""
    return next(i for i, t in enumerate(example.labels) if t != IGNORE_INDEX) - 1


@torch.no_grad()
def letter_accuracy(model, tokenizer, examples: list[TrainingExample]) -> tuple[float, int]:
    """Greedy first-answer-token accuracy over the whole vocabulary, and how many distinct tokens it predicts."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ids, _, mask = collate(examples, tokenizer.pad_token_id)
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    hits, predicted = 0, set()
    for row, ex in enumerate(examples):
        pos = first_answer_position(ex)
        guess = int(logits[row, pos].argmax())
        predicted.add(guess)
        hits += guess == ex.labels[pos + 1]
    model.train(was_training)
    return 100.0 * hits / len(examples), len(predicted)


def held_out_chat_drills(tokenizer, n: int = 400, n_options: int = 4, template: str = "vicuna_v1") -> list[TrainingExample]:
    """The fixed check set: chat drills from seeds no training stream uses."""
    pool = option_pool()
    return [drill("chat", tokenizer, random.Random(10_000 + i), pool, n_options, template) for i in range(n)]


def train_drills(model, tokenizer, recipe: DrillRecipe, seed: int, template: str = "vicuna_v1",
                 eval_every: int = 250, phases: list[tuple[str, int]] | None = None) -> list[dict]:
    """Run the drill phases (short, then chat, unless ``phases`` says otherwise) on ``model`` in place.

    Returns the curve: held-out chat-drill letter accuracy every ``eval_every`` steps. One warm-up
    and cosine schedule spans all phases.
    """
    phases = phases if phases is not None else [("short", recipe.short_steps), ("chat", recipe.chat_steps)]
    total = sum(steps for _, steps in phases)
    if total == 0:
        return []
    device = next(model.parameters()).device
    rng = random.Random(seed)
    pool = option_pool()
    held = held_out_chat_drills(tokenizer, n_options=recipe.n_options, template=template)
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.learning_rate, betas=(0.9, 0.95), weight_decay=0.0)
    model.train()
    acc, distinct = letter_accuracy(model, tokenizer, held)
    curve = [{"step": 0, "phase": phases[0][0], "chat_accuracy": acc, "distinct": distinct, "seconds": 0.0}]
    step, started = 0, time.time()
    for fmt, steps in phases:
        for _ in range(steps):
            batch = [drill(fmt, tokenizer, rng, pool, recipe.n_options, template) for _ in range(recipe.batch_size)]
            ids, labels, mask = collate(batch, tokenizer.pad_token_id)
            loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            lr = warmup_cosine(step, peak=recipe.learning_rate, warmup=recipe.warmup_steps, total=total, floor=0.1)
            optimizer_step(opt, loss, lr, model.parameters())
            step += 1
            if step % eval_every == 0 or step == total:
                acc, distinct = letter_accuracy(model, tokenizer, held)
                curve.append({"step": step, "phase": fmt, "loss": round(loss.item(), 4), "chat_accuracy": acc,
                              "distinct": distinct, "seconds": round(time.time() - started, 1)})
                log.info("drill %s", curve[-1])
    return curve
