"""Adversarial inputs for the differential test vectors (deterministic: fixed seeds).

Each ``*_cases`` function returns a list of plain dicts (JSON-ready). The drivers in this folder
feed them to the *official* scorers and store the official outputs next to the inputs under
``tests/data/official_vectors/``. Nothing here knows what the official answer is.
"""
from __future__ import annotations

import random
from typing import Callable

# Groups of surface variants of one answer: the scorers must decide which ones match.
VQA_GROUPS: list[list[str]] = [
    ["yes", "Yes", "YES", "Yes.", "yes.", "yes!", "yes!!", "(yes)", '"yes"', " yes ", "yes\n", "\tYes", "yes,"],
    ["no", "No", "NO", "No.", "no.", "nope", "no!", "no ,", "[no]", "No\t", "not", "none", "None"],
    ["2", "two", "Two", "TWO", "2.", "2.0", "2 ", " two.", "02", "２", "٢", "2 dogs", "two dogs"],
    ["10", "ten", "Ten", "10.", "1 0", "10!"],
    ["0", "zero", "none", "None", "Zero.", "0.0", "nothing"],
    ["1000", "1,000", "1, 000", "1 ,000", "1.000", "one thousand", "１,０００", "1,000.", "10,00"],
    ["3.5", "3.5.", "3,5", "3 .5", "three and half", "3. 5", ".5", "5.", "4:30", "4 : 30"],
    ["dog", "a dog", "the dog", "A dog", "The Dog", "an dog", "dogs", "dog's", "Dog's", "dog’s", "the dog's"],
    ["mcdonald's", "McDonald's", "mcdonalds", "mcdonald 's", "McDonald’s", "mc donald's", "MCDONALD'S"],
    ["coca-cola", "coca cola", "Coca-Cola", "cocacola", "coca - cola", "coca-cola!", "coca_cola", "coca/cola"],
    ["t-shirt", "t shirt", "tshirt", "T-Shirt", "t-shirt.", "t - shirt"],
    ["don't", "dont", "Dont", "don’t", "do not", "DONT", "dont."],
    ["can't", "cant", "can’t", "cannot", "Can't"],
    ["i'm", "Im", "im", "I'm", "i’m"],
    ["let's", "lets", "Let's", "let’s"],
    ["somebodyd", "somebody'd", "somebody’d", "somebodyd've"],
    ["o'clock", "oclock", "o’clock", "5 oclock", "5 o'clock"],
    ["'twas", "twas", "’twas"],
    ["y'all", "yall", "y’all", "yall'll", "y'all'll"],
    ["a.m.", "am", "a.m", "AM", "a. m.", "p.m.", "pm"],
    ["u.s.a.", "usa", "USA", "u.s.a", "U.S.A.", "us"],
    ["st. louis", "st louis", "St. Louis", "saint louis", "st.louis"],
    ["left/right", "left right", "left / right", "leftright", "left-right"],
    ["50/50", "50 50", "5050", "50 / 50", "50-50"],
    ["c++", "c", "C++", "c + +"],
    ["snake_case", "snake case", "snakecase", "snake _ case"],
    ["café", "cafe", "Café", "CAFÉ", "café."],
    ["straße", "strasse", "STRASSE", "Straße"],
    ["istanbul", "İstanbul", "ISTANBUL", "i̇stanbul"],
    ["οδος", "ΟΔΟΣ", "οδοσ", "Οδος"],
    ["東京", "東京。", "東京.", " 東京 "],
    ["unanswerable", "Unanswerable", "unanswerable.", "unsuitable", "unsuitable image", "UNANSWERABLE"],
    ["", " ", ".", "..", "!", "?", "a", "the", "an", "\n", "\t "],
    ["hello world", "hello  world", "hello\tworld", "hello\nworld", "hello,world", "hello , world",
     "hello, world", "hello ,world", "hello;world", "hello ; world"],
    ["red and white", "red & white", "red, white", "red/white", "red-white", "white and red"],
    ["yes\u00a0sir", "yes sir", "yes\u2003sir", "yes\u180esir", "yes\u200bsir", "yes\x85sir", "yes\x1csir"],
    ["٣,٤", "3,4", "٣ ٤", "1.٥", "١.٥", "１.５", "٣.", "x,٤ ,y", "٣,٤ a.b"],
    ["ᲐᲑ", "აბ", "Ꭰ", "ꭰ", "Ϳ", "ϳ", "Ꞔ", "ꞔ", "İİ", "ii", "i̇i̇"],
    ["..." * 12, "a." * 40, "1." * 35, "x" + "." * 33 + "y", ". " * 20],
]

DECORATIONS: list[Callable[[str], str]] = [
    lambda s: s, lambda s: s, lambda s: s,
    str.upper, str.lower, str.title, str.capitalize,
    lambda s: s + ".", lambda s: s + "!", lambda s: s + "?", lambda s: s + " .",
    lambda s: " " + s + " ", lambda s: "\n" + s, lambda s: s + "\t",
    lambda s: "a " + s, lambda s: "The " + s, lambda s: "(" + s + ")", lambda s: '"' + s + '"',
    lambda s: s + "'s", lambda s: s + "’s", lambda s: s + ",", lambda s: "-" + s,
    lambda s: s.replace("'", "’"), lambda s: s.replace(" ", "  "), lambda s: s + "...",
    lambda s: s + " 1,000", lambda s: s + " 3.5", lambda s: "it's " + s, lambda s: s + " dont",
]

ANSWER_TYPES = ("yes/no", "number", "other")
VIZWIZ_TYPES = ("yes/no", "number", "other", "unanswerable")


def _atom(rng: random.Random) -> str:
    return rng.choice(rng.choice(VQA_GROUPS))


def _decorated(rng: random.Random, group: list[str]) -> str:
    text = rng.choice(group)
    for _ in range(rng.choice((0, 1, 1, 2))):
        text = rng.choice(DECORATIONS)(text)
    return text


def _answers(rng: random.Random, group: list[str], n: int) -> list[str]:
    """Ten annotator answers: unanimous, split between variants, or a few matches among noise."""
    mode = rng.random()
    if mode < 0.25:                                   # unanimous (any surface form)
        return [rng.choice(group)] * n
    if mode < 0.7:                                    # split among variants of one answer
        k = rng.randint(0, n)
        main = rng.choice(group)
        rest = [rng.choice(group) if rng.random() < 0.5 else _atom(rng) for _ in range(n - k)]
        out = [main] * k + rest
    else:                                             # decorated variants and noise
        out = [_decorated(rng, group) if rng.random() < 0.6 else _atom(rng) for _ in range(n)]
    rng.shuffle(out)
    return out


def vqa_cases(n: int = 3000, seed: int = 18, n_answers: int = 10, types=ANSWER_TYPES) -> list[dict]:
    """Prediction + 10 answers (+ answer type) for the VQA API, VizWiz API and m4c TextVQA."""
    rng = random.Random(seed)
    cases = []
    for i in range(n):
        group = rng.choice(VQA_GROUPS)
        answers = _answers(rng, group, n_answers)
        r = rng.random()
        if r < 0.35:
            pred = rng.choice(answers)                # verbatim annotator answer
        elif r < 0.85:
            pred = _decorated(rng, group)
        else:
            pred = _decorated(rng, rng.choice(VQA_GROUPS))
        cases.append({"id": i, "pred": pred, "answers": answers, "answer_type": rng.choice(types)})
    return cases
