"""Option-letter and reading drills: the base LM's first lessons, before it reads any toy text.

Four toy benchmarks (ScienceQA-IMG, SEED, MMBench, MMBench-CN) answer with an option's letter.
Naming the letter of an option that matches is an induction-style lookup, and a tiny LM trained
only on benchmark-shaped chats sits on a one-letter plateau for thousands of steps
(``results/toy/drill_probe.md``). A short, dense drill first (``A. w1 B. w2 C. w3 D. w4 ? w3 =``
then the letter, ~30 tokens) crosses that plateau cheaply; a chat-shaped drill afterwards (the
benchmark's option block and letter suffix in the chat template) moves the skill into the format
the benchmarks ask in. The drill words are the toy world's option words; the drills never see a
benchmark question.

A reading drill is the first turn of a described conversation (:func:`.corpus.described_conversations`,
from a stream of its own): a scene's description, one question of the instruction mix, and only
the answer as target. It is the skill stage 1 relies on: a language model that does not look
up facts in its context gives the projector nothing to learn (``results/toy/lm_reading.md``).
An ``exist`` drill is a reading drill restricted to presence questions (POPE's "Is there a
<shape> in the image?"): one lookup per question, the case in which a copy of the base LM learnt
to read within ~600 steps where the whole mix of kinds stayed at chance. A ``copy`` drill is
stage 1's sample with the image replaced by the scene's description: the description, then a
caption of the same scene (the only target). Stage 1 trains the projector through the frozen
LM's use of what stands where the image goes; an LM that copies words from there into the
caption is what pulls image tokens towards the words they show.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass

import torch

from aligngpt.constants import DEFAULT_IMAGE_TOKEN, IGNORE_INDEX, IMAGE_TOKEN_INDEX
from aligngpt.processing.training_preprocess import TrainingExample, collate, preprocess_plain
from aligngpt.toy.layout import LETTERS, MC_ANSWER, SHORT_ANSWER, mc_block
from aligngpt.toy.world import COLORS, SHAPES, WORDS

from .corpus import chat_example, described_conversations
from .loop import adamw, optimizer_step, warmup_cosine

log = logging.getLogger(__name__)

FORMATS = ("short", "chat", "exist", "copy", "read", "mix", "presence")
#: The instruction recipe the ``exist`` drill reads from: POPE-style "Is there a <shape> in the image?".
EXIST_RECIPE = "yes_no_exist"
#: Answer kinds of a reading drill, as its benchmark scores it.
READ_KINDS = ("yes/no", "short", "mc", "mc_cn", "other")


@dataclass
class DrillRecipe:
    """Steps of each drill phase (0 = no drills: the recipe of the bundled model)."""

    short_steps: int = 0
    chat_steps: int = 0
    exist_steps: int = 0
    """Presence-only reading drills after the letter drills (the first, one-lookup reading lesson)."""
    copy_steps: int = 0
    """Caption-from-description drills (stage 1's format) after those."""
    read_steps: int = 0
    """Reading drills (every kind of question) after those."""
    mix_steps: int = 0
    """Reading drills with letter drills mixed in (last), so that reading does not wipe out the letters."""
    mix_read_share: float = 0.5
    """Share of reading drills in a mixed batch; the rest are copy drills and short and chat letter drills."""
    mix_copy_share: float = 0.0
    """Share of copy drills in a mixed batch (kept alive for stage 1)."""
    batch_size: int = 64
    learning_rate: float = 1e-3
    warmup_steps: int = 100
    n_options: int = 4
    read_pool: int = 30000
    """Described chats the reading drills draw from."""
    after_text: bool = False
    """Drill after the base LM's toy text instead of before it. Before it, the text's 300 steps wipe
    the drilled skills out (``results/toy/reading_drills.md``, section 3)."""

    @property
    def steps(self) -> int:
        return (self.short_steps + self.chat_steps + self.exist_steps + self.copy_steps + self.read_steps
                + self.mix_steps)


def option_pool() -> list[str]:
    """The toy world's option words (colours, shapes, words, small counts)."""
    return sorted(set(COLORS) | set(SHAPES) | set(WORDS) | {str(n) for n in range(10)})


def answered(tokenizer, prompt: str, answer: str) -> TrainingExample:
    """``prompt answer`` as plain text (no chat template); only the answer's tokens are targets."""
    head = tokenizer.encode(prompt)
    full = tokenizer.encode(prompt + " " + answer)
    if full[: len(head)] != head:
        raise ValueError(f"drill prompt tokens are not a prefix of the answered drill: {prompt!r}")
    return TrainingExample(full, [IGNORE_INDEX] * len(head) + full[len(head):])


def short_drill(tokenizer, options: list[str], answer: int) -> TrainingExample:
    """``A. w1 B. w2 ... ? wk =`` then the letter; only the letter's tokens are targets."""
    prompt = " ".join(f"{LETTERS[i]}. {o}" for i, o in enumerate(options)) + f" ? {options[answer]} ="
    return answered(tokenizer, prompt, LETTERS[answer])


def chat_drill(tokenizer, options: list[str], answer: int, template: str = "vicuna_v1") -> TrainingExample:
    """``Which option is wk?`` with the benchmarks' option block and letter suffix, as a masked chat."""
    question = f"Which option is {options[answer]}?" + mc_block(options) + MC_ANSWER
    return chat_example([{"from": "human", "value": question}, {"from": "gpt", "value": LETTERS[answer]}],
                        tokenizer, template)


def presence_drill(tokenizer, rng: random.Random) -> TrainingExample:
    """``red circle . blue star ? blue =`` then ``Yes`` or ``No`` (half each); only the answer is a target.

    The reading skill in its shortest form: is the asked colour or shape among the listed objects.
    """
    objects = [(rng.choice(sorted(COLORS)), rng.choice(SHAPES)) for _ in range(rng.randint(1, 4))]
    axis = rng.randrange(2)
    values = sorted(COLORS) if axis == 0 else list(SHAPES)
    present = sorted({o[axis] for o in objects})
    absent = [v for v in values if v not in present]
    asked = rng.choice(present) if rng.random() < 0.5 else rng.choice(absent)
    prompt = " . ".join(f"{c} {s}" for c, s in objects) + f" ? {asked} ="
    return answered(tokenizer, prompt, "Yes" if asked in present else "No")


def copy_pairs(seed: int, n: int, stream: str = "copy_drill") -> list[tuple[str, str]]:
    """``n`` (description, caption) pairs of unblurred scenes from their own random stream."""
    from aligngpt.toy import text as T
    from aligngpt.toy.world import rng_for, sample_scene

    rng = rng_for(seed, "base_lm", stream)
    pairs = []
    for _ in range(n):
        scene = sample_scene(rng, word_prob=0.25)
        pairs.append((T.detailed_description(scene), T.caption_full(scene, rng)))
    return pairs


def copy_drill(tokenizer, description: str, caption: str) -> TrainingExample:
    """Stage 1's plain sample (BOS, image, caption, newline, caption the only target) with the
    description's tokens where the image goes, so the caption is tokenised exactly as stage 1 does."""
    plain = preprocess_plain([{"from": "human", "value": DEFAULT_IMAGE_TOKEN}, {"from": "gpt", "value": caption}],
                             tokenizer)
    at = plain.input_ids.index(IMAGE_TOKEN_INDEX)
    context = tokenizer.encode(description)
    if context and context[0] == tokenizer.bos_token_id:
        context = context[1:]
    return TrainingExample(plain.input_ids[:at] + context + plain.input_ids[at + 1:],
                           plain.labels[:at] + [IGNORE_INDEX] * len(context) + plain.labels[at + 1:])


def mixed_format(rng: random.Random, read_share: float, copy_share: float = 0.0) -> str:
    """The format of one example of a mixed batch: reading, copy, else a letter drill (short or chat)."""
    draw = rng.random()
    if draw < read_share:
        return "read"
    if draw < read_share + copy_share:
        return "copy"
    return "chat" if rng.random() < 0.5 else "short"


def answer_kind(turns: list[dict]) -> str:
    """How the benchmark that asks a question like a conversation's first one scores its answer."""
    question, answer = turns[0]["value"], turns[1]["value"]
    if "option's letter" in question:
        return "mc"
    if "选项" in question:
        return "mc_cn"
    if answer in ("Yes", "No"):
        return "yes/no"
    return "short" if SHORT_ANSWER.strip() in question else "other"


def read_drills(seed: int, n: int, stream: str, recipes: tuple[str, ...] | None = None) -> list[list[dict]]:
    """``n`` one-turn described chats (description + question, answer) from their own stream."""
    return [conv[:2] for conv in described_conversations(seed, n, stream=stream, recipes=recipes)]


def drill(fmt: str, tokenizer, rng: random.Random, pool: list, n_options: int = 4,
          template: str = "vicuna_v1") -> TrainingExample:
    """One drill of format ``fmt`` drawn from ``rng``: option words from ``pool`` for the letter
    drills, a whole chat from ``pool`` (:func:`read_drills`) for ``read`` and ``exist``; ``presence``
    draws its own scene (``mix`` is chosen per example by :func:`train_drills`)."""
    if fmt in ("read", "exist"):
        return chat_example(rng.choice(pool), tokenizer, template)
    if fmt == "presence":
        return presence_drill(tokenizer, rng)
    if fmt == "copy":
        return copy_drill(tokenizer, *rng.choice(pool))
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
def first_token_hits(model, tokenizer, examples: list[TrainingExample], batch: int = 400) -> list[tuple[bool, int]]:
    """Per example: is the greedy first answer token (whole vocabulary) right, and which token it is."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(examples), batch):
        chunk = examples[start:start + batch]
        ids, _, mask = collate(chunk, tokenizer.pad_token_id)
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        for row, ex in enumerate(chunk):
            pos = first_answer_position(ex)
            guess = int(logits[row, pos].argmax())
            out.append((guess == ex.labels[pos + 1], guess))
    model.train(was_training)
    return out


def letter_accuracy(model, tokenizer, examples: list[TrainingExample]) -> tuple[float, int]:
    """Greedy first-answer-token accuracy over the whole vocabulary, and how many distinct tokens it predicts."""
    hits = first_token_hits(model, tokenizer, examples)
    return 100.0 * sum(h for h, _ in hits) / len(examples), len({g for _, g in hits})


def reading_accuracy(model, tokenizer, held: list[tuple[str, TrainingExample]]) -> dict[str, float]:
    """First-answer-token accuracy on held-out reading drills, per answer kind."""
    hits = first_token_hits(model, tokenizer, [ex for _, ex in held])
    by_kind: dict[str, list[bool]] = {}
    for (kind, _), (hit, _) in zip(held, hits):
        by_kind.setdefault(kind, []).append(hit)
    return {k: round(100.0 * sum(v) / len(v), 1) for k in READ_KINDS if (v := by_kind.get(k))}


def held_out_read_drills(tokenizer, seed: int, n: int = 400, template: str = "vicuna_v1") -> list[tuple[str, TrainingExample]]:
    """The fixed reading check set, with each chat's answer kind."""
    return [(answer_kind(c), chat_example(c, tokenizer, template)) for c in read_drills(seed, n, "read_held_out")]


def held_out_chat_drills(tokenizer, n: int = 400, n_options: int = 4, template: str = "vicuna_v1") -> list[TrainingExample]:
    """The fixed check set: chat drills from seeds no training stream uses."""
    pool = option_pool()
    return [drill("chat", tokenizer, random.Random(10_000 + i), pool, n_options, template) for i in range(n)]


def train_drills(model, tokenizer, recipe: DrillRecipe, seed: int, template: str = "vicuna_v1",
                 eval_every: int = 250, phases: list[tuple[str, int]] | None = None) -> list[dict]:
    """Run the drill phases (short, chat, exist, copy, read, mix, unless ``phases`` says otherwise) on ``model`` in place.

    Returns the curve: held-out chat-drill letter accuracy (and, when the phases read, held-out
    reading accuracy per answer kind) every ``eval_every`` steps. One warm-up and cosine schedule
    spans all phases.
    """
    phases = phases if phases is not None else [
        ("short", recipe.short_steps), ("chat", recipe.chat_steps), ("exist", recipe.exist_steps),
        ("copy", recipe.copy_steps), ("read", recipe.read_steps), ("mix", recipe.mix_steps)]
    phases = [(fmt, steps) for fmt, steps in phases if steps]
    total = sum(steps for _, steps in phases)
    if total == 0:
        return []
    device = next(model.parameters()).device
    rng = random.Random(seed)
    reads = any(fmt in ("read", "mix", "exist") for fmt, _ in phases)
    mixes = any(fmt == "mix" for fmt, _ in phases)
    copies = any(fmt == "copy" for fmt, _ in phases) or (mixes and recipe.mix_copy_share > 0)
    letters = option_pool()
    pools = {"short": letters, "chat": letters, "presence": [],
             "read": read_drills(seed, recipe.read_pool, "read_drill") if reads else [],
             "exist": read_drills(seed, recipe.read_pool, "exist_drill", (EXIST_RECIPE,))
             if any(fmt == "exist" for fmt, _ in phases) else [],
             "copy": copy_pairs(seed, recipe.read_pool) if copies else []}
    held = held_out_chat_drills(tokenizer, n_options=recipe.n_options, template=template)
    held_read = held_out_read_drills(tokenizer, seed, template=template) if reads else []

    def check(point: dict) -> dict:
        point["chat_accuracy"], point["distinct"] = letter_accuracy(model, tokenizer, held)
        if held_read:
            point["reading"] = reading_accuracy(model, tokenizer, held_read)
        return point

    opt = adamw(model.parameters(), recipe.learning_rate)
    model.train()
    curve = [check({"step": 0, "phase": phases[0][0], "seconds": 0.0})]
    step, started = 0, time.time()
    for fmt, steps in phases:
        for _ in range(steps):
            formats = [mixed_format(rng, recipe.mix_read_share, recipe.mix_copy_share) if fmt == "mix" else fmt
                       for _ in range(recipe.batch_size)]
            batch = [drill(f, tokenizer, rng, pools[f], recipe.n_options, template) for f in formats]
            ids, labels, mask = collate(batch, tokenizer.pad_token_id)
            loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
            lr = warmup_cosine(step, peak=recipe.learning_rate, warmup=recipe.warmup_steps, total=total, floor=0.1)
            optimizer_step(opt, loss, lr, model.parameters())
            step += 1
            if step % eval_every == 0 or step == total:
                curve.append(check({"step": step, "phase": fmt, "loss": round(loss.item(), 4),
                                    "seconds": round(time.time() - started, 1)}))
                log.info("drill %s", curve[-1])
    return curve
