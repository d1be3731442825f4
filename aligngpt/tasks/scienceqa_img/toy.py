"""The toy ScienceQA-IMG copy in LLaVA-1.5's layout (written by :func:`write_scienceqa`).

ScienceQA (docs/protocol/scienceqa_img.md): ``problems.json`` (pid -> question, choices, answer
index, hint, image, subject, ...), ``pid_splits.json``, images ``images/test/{pid}/image.png``
and LLaVA's ``llava_test_CQM-A.json`` (human turn
``[<image>\\n][Context: hint\\n]question\\nA. ..``, gpt turn = the letter; written with
``indent=2`` like the real file). Text-only problems are included, as in the real test split, so
``accuracy`` and ``img_accuracy`` differ.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from aligngpt.toy import text as T
from aligngpt.toy.layout import LETTERS, Out, mc_block, unique_ints
from aligngpt.toy.world import SHAPES, WORDS, Scene, Size, render_scene, rng_for, sample_scene

# --- ScienceQA --------------------------------------------------------------------------------

# family -> (subject, topic, category, skill)
SQA_IMAGE_FAMILIES = {
    "color": ("natural science", "colors", "Identify colors", "Identify the color of a shape"),
    "shape_at": ("natural science", "shapes", "Identify shapes", "Identify a shape"),
    "count": ("natural science", "counting", "Count objects", "Count shapes in a picture"),
    "word": ("language science", "reading", "Read words", "Read a word in a picture"),
    "side": ("social science", "geography", "Read a map", "Tell left from right"),
    "most_corners": ("natural science", "geometry", "Compare shapes", "Compare numbers of corners"),
    "background": ("natural science", "colors", "Identify colors", "Identify a background color"),
}
SQA_HINTS = ("Look at the picture.", "The picture shows shapes on a plain background.",
             "Shapes can differ in color, size and place.")
SQA_TEXT_HINTS = ("Select the best answer.", "Use what you know about shapes and words.")


def _trim_options(qa: T.QA, k: int) -> list[str]:
    """Keep the answer and ``k-1`` of the distractors, order preserved."""
    assert qa.options is not None
    ans = qa.option_answer
    keep = {ans} | set([o for o in qa.options if o != ans][: k - 1])
    return [o for o in qa.options if o in keep]


def _sqa_text_problem(rng: np.random.Generator) -> tuple[str, list[str], int, tuple[str, str, str, str], str]:
    kind = int(rng.integers(4))
    if kind == 0:
        qa = T.q_sides_knowledge(Scene((), "black"), rng)
        assert qa is not None and qa.options is not None
        return (qa.question, qa.options, qa.answer_index,
                ("natural science", "geometry", "Shapes", "Count the corners of a shape"),
                f"A {qa.meta['shape']} has {qa.answer} corners.")
    if kind == 1:
        word = WORDS[int(rng.integers(len(WORDS)))]
        ans = T.SPANISH[word]
        others = [T.SPANISH[w] for w in WORDS if w != word]
        opts = [ans] + [others[i] for i in rng.permutation(len(others))[:3].tolist()]
        opts = [opts[i] for i in rng.permutation(len(opts)).tolist()]
        return (f"What is the Spanish word for {word.lower()}?", opts, opts.index(ans),
                ("language science", "translation", "Translate words", "Translate a word into Spanish"),
                f"The Spanish word for {word.lower()} is {ans}.")
    if kind == 2:
        _, qa = T.arithmetic_qa(rng)
        problem = qa.meta["problem"].rstrip("=")
        sym = next(c for c in problem if c in "+-*")
        a, b = problem.split(sym)
        q = f"What is {a} {dict(zip('+-*', ('plus', 'minus', 'times')))[sym]} {b}?"
        assert qa.options is not None
        return (q, qa.options, qa.answer_index, ("natural science", "arithmetic", "Add and subtract", "Compute"),
                f"The answer is {qa.answer}.")
    shape = SHAPES[int(rng.integers(len(SHAPES)))]
    name = T.CHARACTER_NAMES[shape]
    others = [s for s in SHAPES if s != shape]
    opts = [shape] + [others[i] for i in rng.permutation(len(others))[:3].tolist()]
    opts = [opts[i] for i in rng.permutation(len(opts)).tolist()]
    return (f"Which shape is the character {name}?", opts, opts.index(shape),
            ("social science", "culture", "Know characters", "Match a character to its shape"),
            f"{name} is a {shape}.")


def write_scienceqa(root: Path, seed: int, n: int, size: Size = 48) -> dict:
    out = Out(root / "scienceqa")
    rng = rng_for(seed, "scienceqa")
    n_extra = 10  # a few train/val problems so pid_splits has every key, as the real file
    pids = [str(p) for p in unique_ints(rng, n + 2 * n_extra, 1, 21209)]
    test_pids, train_pids, val_pids = pids[:n], pids[n:n + n_extra], pids[n + n_extra:]
    problems: dict[str, dict] = {}
    llava = []
    fams = list(SQA_IMAGE_FAMILIES)
    inv_img, inv_all = [], []
    split_of = {**{p: "train" for p in train_pids}, **{p: "val" for p in val_pids}, **{p: "test" for p in test_pids}}
    for pid in pids:
        split = split_of[pid]
        with_image = split == "test" and rng.random() < 0.75
        hint = ""
        if with_image:
            while True:
                fam = fams[int(rng.integers(len(fams)))]
                scene = sample_scene(rng, word=WORDS[int(rng.integers(len(WORDS)))] if fam == "word" else None)
                qa = T.ask(fam, scene, rng)
                if qa is not None and qa.options is not None:
                    break
            choices = _trim_options(qa, int(rng.integers(2, 5)))
            answer = choices.index(qa.option_answer)
            question = qa.question
            subject, topic, category, skill = SQA_IMAGE_FAMILIES[fam]
            solution = f"The answer is {qa.option_answer}."
            if rng.random() < 0.6:
                hint = SQA_HINTS[int(rng.integers(len(SQA_HINTS)))]
            out.image(f"images/test/{pid}/image.png", render_scene(scene, size))
        else:
            question, choices, answer, (subject, topic, category, skill), solution = _sqa_text_problem(rng)
            if rng.random() < 0.5:
                hint = SQA_TEXT_HINTS[int(rng.integers(len(SQA_TEXT_HINTS)))]
        problems[pid] = {
            "question": question, "choices": choices, "answer": answer, "hint": hint,
            "image": "image.png" if with_image else None, "task": "closed choice",
            "grade": f"grade{int(rng.integers(1, 9))}", "subject": subject, "topic": topic,
            "category": category, "skill": skill, "lecture": "Shapes, colors and words can be seen and named.",
            "solution": solution, "split": split,
        }
        if split != "test":
            continue
        human = ("<image>\n" if with_image else "") + (f"Context: {hint}\n" if hint else "") + question + mc_block(choices)
        entry: dict = {"id": pid}
        if with_image:
            entry["image"] = f"{pid}/image.png"
        entry["conversations"] = [{"from": "human", "value": human}, {"from": "gpt", "value": LETTERS[answer]}]
        llava.append(entry)
        inv_all.append(1 / len(choices))
        if with_image:
            inv_img.append(1 / len(choices))
    splits = {"train": train_pids, "val": val_pids, "test": test_pids, "trainval": train_pids + val_pids,
              "minitrain": train_pids[:5], "minival": val_pids[:5], "minitest": test_pids[: max(1, n // 4)]}
    out.json("problems.json", problems)
    out.json("pid_splits.json", splits)
    out.json("llava_test_CQM-A.json", llava, indent=2)
    return {"questions": len(llava), "image_questions": len(inv_img), "images": out.n_images,
            "chance": {"img_accuracy": 100 * float(np.mean(inv_img)) if inv_img else 0.0,
                       "accuracy": 100 * float(np.mean(inv_all))}}
