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


# --------------------------------------------------------------------------- yes/no (POPE, MME)
YES_NO_TOKENS = ["yes", "Yes", "YES", "no", "No", "NO", "not", "Not", "NOT", "nope", "Nope", "none",
                 "there", "is", "a", "dog", "in", "the", "image", "no.", "No,", "not,", "n't", "isn't",
                 "No!", "(no)", "no\n", "\tno", ".", ",", "yes.", "Yes,", "yeah", "y", "n", "eyes",
                 "nothing", "know", "I", "cannot", "No.5", "ｎｏ", "no\u00a0dog", "NO.", "yes\nno", ""]
SEPARATORS = [" ", " ", " ", "  ", ",", ", ", ".", ". ", "\n", "\t", "", " , "]


def yes_no_text(rng: random.Random, tokens: list[str] = YES_NO_TOKENS) -> str:
    parts = [rng.choice(tokens) for _ in range(rng.choice((1, 1, 1, 2, 3, 5)))]
    text = parts[0]
    for p in parts[1:]:
        text += rng.choice(SEPARATORS) + p
    return text


def pope_cases(n: int = 3000, seed: int = 21) -> list[dict]:
    """Answer text + label; labels are mostly yes/no, sometimes odd spellings."""
    rng = random.Random(seed)
    labels = ["yes", "no"] * 8 + ["No", "YES", "Yes", "no ", "", "n"]
    return [{"id": i, "text": yes_no_text(rng), "label": rng.choice(labels)} for i in range(n)]


MME_TOKENS = [t for t in YES_NO_TOKENS if "\n" not in t and "\t" not in t] + [
    "Yes, there is", "No, there is not", "The answer is yes", "nO", "yES", "y e s", "no-", "yesno"]


def mme_cases(n: int = 3000, seed: int = 22) -> list[dict]:
    """Prediction + gold (Yes/No spellings); no tab or newline (they break calculation.py's
    line format, which we document as a deviation instead)."""
    rng = random.Random(seed)
    seps = [s for s in SEPARATORS if s not in ("\n", "\t")]
    out = []
    for i in range(n):
        parts = [rng.choice(MME_TOKENS) for _ in range(rng.choice((1, 1, 1, 2, 3)))]
        text = parts[0]
        for p in parts[1:]:
            text += rng.choice(seps) + p
        out.append({"id": i, "pred": text, "gt": rng.choice(["Yes", "No", "yes", "no", "YES", "NO"])})
    return out


# --------------------------------------------------------------------------- GQA
GQA_GOLD = ["yes", "no", "left", "right", "table", "t-shirt", "white", "man", "straße", "café",
            "1", "two", "a", "the table", "dr. pepper", "u.s.", ""]


def gqa_cases(n: int = 2000, seed: int = 23) -> list[dict]:
    rng = random.Random(seed)
    decorations = [lambda s: s, lambda s: s, str.upper, str.title, lambda s: s + ".", lambda s: s + "..",
                   lambda s: s + ". ", lambda s: " " + s, lambda s: s + " ", lambda s: "a " + s,
                   lambda s: "The " + s + ".", lambda s: s + "!", lambda s: s + ".\n", lambda s: "." + s,
                   lambda s: s.replace("e", "é"), lambda s: s + "…", lambda s: "İ" + s]
    out = []
    for i in range(n):
        gold = rng.choice(GQA_GOLD)
        base = gold if rng.random() < 0.7 else rng.choice(GQA_GOLD)
        text = rng.choice(decorations)(base)
        out.append({"id": f"q{i}", "text": text, "answer": gold,
                    "structural": rng.choice(["query", "verify", "logical", "choose", "compare"]),
                    "balanced": rng.random() < 0.9})
    return out


# --------------------------------------------------------------------------- letters (SQA, SEED)
LETTER_TEXTS = ["A", "B", "C", "D", "E", "F", "Z", "a", "b", "A.", "B.", "A. ", "A. cat", "B. the dog",
                "A.cat", "(A)", "A)", "A) cat", " A", "A ", "A\n", "AB", "", " ", "E. something",
                "The answer is B.", "The answer is B", "The answer is b.", "The answer is BB.",
                "The answer is B. The answer is C.", "the answer is A.", "The answer is Z.",
                "The answer is A.\nThe answer is A.", "Answer: A", "Option A", "A, B", "A.\n",
                "Ａ", "A。", "The answer is (A).", "The answer is A,", "The answer is E!", "C.  x",
                "D. ", "The answer is C.D", "I think the answer is D.", "A.B.", "nan", "B\t"]


def sqa_cases(n: int = 2000, seed: int = 24) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        n_choices = rng.randint(2, 5)
        text = rng.choice(LETTER_TEXTS)
        if rng.random() < 0.3:
            text = rng.choice(LETTER_TEXTS) + rng.choice(["", " ", "\n", ". "]) + rng.choice(LETTER_TEXTS)
        out.append({"id": str(i), "text": text, "n_choices": n_choices,
                    "answer": rng.randrange(n_choices), "image": rng.random() < 0.6})
    return out


def seed_cases(n: int = 2000, seed: int = 25) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        answer = rng.choice("ABCD")
        text = rng.choice(LETTER_TEXTS) if rng.random() < 0.6 else rng.choice("ABCD")
        if rng.random() < 0.2:
            text = rng.choice(LETTER_TEXTS) + rng.choice(LETTER_TEXTS)
        out.append({"id": 100000 + i, "text": text, "answer": answer,
                    "type_id": rng.randint(1, 9), "data_type": "image"})
    return out


# --------------------------------------------------------------------------- MMBench
MMB_OPTIONS = ["cat", "a cat", "Cat", "dog", "A", "B", "yes", "no", "1", "10", "E", "the answer",
               "red and blue", "blue", "Red", "猫", "狗", "ca", "cat dog", "a", "A cat", "(A)", "none"]
MMB_TOKENS = ["A", "B", "C", "D", "E", "F", "a", "A.", "B,", "C:", "D)", "A).", "(B)", "(C).", ":D",
              ":A,", ":B.", ":C)", ":D).", "cat", "dog", "The", "answer", "is", "Option", "I", "think",
              "because", "blue", "red", "yes", "no", "1", "10", "猫", "答案", "选", "A。", "(A", "B)",
              "Answer:", "A:", "A,B", "A/B", "AB", "A-", "\n", "Cat", "RED", "the", "E."]


def mmbench_cases(n_questions: int = 700, seed: int = 26) -> list[dict]:
    """Circular groups: one row per rotation of a question's options (index + k * 1e6)."""
    rng = random.Random(seed)
    rows = []
    for q in range(n_questions):
        n_opt = rng.choice((2, 3, 4, 4))
        texts = rng.sample(MMB_OPTIONS, n_opt)
        answer = rng.randrange(n_opt)
        for k in range(n_opt):
            rotated = texts[k:] + texts[:k]
            options = {"ABCD"[j]: t for j, t in enumerate(rotated)}
            target = "ABCD"[(answer - k) % n_opt]
            r = rng.random()
            if r < 0.35:
                pred = target if rng.random() < 0.8 else rng.choice("ABCD"[:n_opt])
            elif r < 0.5:
                pred = rotated[(answer - k) % n_opt] if rng.random() < 0.7 else rng.choice(rotated)
            else:
                pred = " ".join(rng.choice(MMB_TOKENS + rotated) for _ in range(rng.choice((1, 2, 3, 4, 6))))
            rows.append({"index": q + k * 1_000_000, "question": f"Question {q}", "options": options,
                         "answer": target, "prediction": pred,
                         "category": rng.choice(["c1", "c2", "c3"]), "l2": rng.choice(["l2a", "l2b"])})
    return rows


# --------------------------------------------------------------------------- judged aggregation
REVIEW_FIRST_LINES = ["8 9", "8 9\nbecause", "8, 9", "8,9", "8  9", " 8 9", "8 9 ", "8.5 7", "10 10",
                      "1e1 2", "nan 5", "inf 3", "-1 4", "8\t9", "8", "", "Score: 8 9", "eight nine",
                      "7 6.", "9 8\n\n1 2", "3 +4", "٣ ٤", "８ ９", "0x1 2", "1_0 2", "7,", ",7"]


def review_cases(n: int = 2000, seed: int = 27) -> list[dict]:
    rng = random.Random(seed)
    return [{"id": i, "review": rng.choice(REVIEW_FIRST_LINES) + rng.choice(["", "\nThe assistant ..."])}
            for i in range(n)]


def llava_bench_sets(n_sets: int = 150, seed: int = 28) -> list[dict]:
    """Review files: (category, [reference, model]) per question, some [-1, -1]."""
    rng = random.Random(seed)
    sets = []
    for i in range(n_sets):
        reviews = []
        for q in range(rng.randint(1, 30)):
            pair = [-1, -1] if rng.random() < 0.05 else [rng.choice((5, 6, 7, 8, 8.5, 9, 10)),
                                                         rng.choice((1, 2, 3, 4, 5, 6, 7, 7.5, 8, 9, 10))]
            reviews.append({"question_id": q, "category": rng.choice(["conv", "detail", "complex"]), "tuple": pair})
        sets.append({"id": i, "reviews": reviews})
    return sets


MMVET_CAPS = ["rec", "ocr", "know", "gen", "spat", "math"]


def mmvet_sets(n_sets: int = 100, seed: int = 29) -> list[dict]:
    """Grade files: capability lists and 1-5 runs of scores in {0.0, 0.1, ..., 1.0}."""
    rng = random.Random(seed)
    sets = []
    for i in range(n_sets):
        num_run = rng.choice((1, 1, 2, 3, 5))
        questions = {}
        for q in range(rng.randint(5, 60)):
            caps = rng.sample(MMVET_CAPS, rng.choice((1, 1, 2, 2, 3)))
            questions[f"v1_{q}"] = {"capability": caps,
                                    "scores": [rng.randint(0, 10) / 10 for _ in range(num_run)]}
        sets.append({"id": i, "num_run": num_run, "questions": questions})
    return sets


XLSX_TEXTS = ["", "None", "NA", "nan", "null", "#N/A", "N/A", "NULL", "<NA>", "n/a", "-nan", "none", "NaN ",
              "=1+1", "=A", "=", "'A", " A", "A ", "TRUE", "FALSE", "1", "1.0", "1e3", "0123", "A\n", "\tA",
              "_x000D_", "A_x0041_", "A\r", "A\r\nB", "€", "A. None", "#REF!", "+A", "-A", "@A"]


NA_LIKE = {"", "none", "na", "nan", "null", "#n/a", "n/a", "<na>", "-nan"}


def mmbench_xlsx_cases(n_questions: int = 400, seed: int = 30) -> list[dict]:
    """Circular groups whose predictions, questions and option cells go through LLaVA's xlsx
    export and OpenCompass' pandas re-read (NA strings, formulas, escapes)."""
    rng = random.Random(seed)
    rows = []
    for q in range(n_questions):
        n_opt = rng.choice((2, 3, 4, 4))
        # Option cells live in the TSV: no tab, newline or carriage return there; and no NA
        # text (every option is the A option of one rotation, and the loader, like LLaVA's
        # driver, stops at the first missing option: fewer than two is refused).
        pool = [t for t in MMB_OPTIONS + XLSX_TEXTS
                if not any(c in t for c in "\t\n\r") and t.strip().lower() not in NA_LIKE]
        texts = rng.sample(pool, n_opt) if rng.random() < 0.4 else rng.sample(pool[:len(MMB_OPTIONS) - 1], n_opt)
        answer = rng.randrange(n_opt)
        question = rng.choice([f"Question {q}", f"Question {q} None", f"=Question {q}"])
        for k in range(n_opt):
            rotated = texts[k:] + texts[:k]
            target = "ABCD"[(answer - k) % n_opt]
            r = rng.random()
            if r < 0.4:
                pred = target if rng.random() < 0.8 else rng.choice("ABCD"[:n_opt])
            elif r < 0.6:
                pred = rng.choice(XLSX_TEXTS)
            elif r < 0.75:
                pred = rng.choice(XLSX_TEXTS) + " " + target
            else:
                pred = " ".join(rng.choice(MMB_TOKENS + rotated) for _ in range(rng.choice((1, 2, 3))))
            rows.append({"index": q + k * 1_000_000, "question": question,
                         "options": {"ABCD"[j]: t for j, t in enumerate(rotated)},
                         "answer": target, "prediction": pred, "category": rng.choice(["c1", "c2"]),
                         "l2": rng.choice(["l2a", "l2b"])})
    return rows


GRADE_REPLIES_GOOD = ["0.5", "1.0", "0", "1", "0.0", "0.30", ".5", "1e-1", "0.5 ", "0.5\n", "0.5 because",
                      "٠.٥", "1.0\n\n", "0.9\tx"]
GRADE_REPLIES_BAD = ["1.1", "-0.1", " 0.5", "Correct", "", "5", "0.5.", "0,5", "<0.5>", "Score: 0.5", "inf",
                     "0.7|", "-inf", "1/2"]


def mmvet_grading_scripts(n: int = 800, seed: int = 31) -> list[dict]:
    """Per sample, the six replies a grader would give in turn (most need some re-asks)."""
    rng = random.Random(seed)
    texts = ["What is x?", "Line one\nline two?", "a | b", "-1 <AND> -5", "Iceland<OR>Greenland", "5<AND>6<OR>7",
             "", " spaced ", "东京", "quote \"q\"", "<AND>", "x<AND><OR>y"]
    return [{"id": f"v1_{i}", "question": rng.choice(texts), "answer": rng.choice(texts), "prediction": rng.choice(texts),
             "replies": [rng.choice(GRADE_REPLIES_BAD if rng.random() < 0.55 else GRADE_REPLIES_GOOD)
                         for _ in range(6)]} for i in range(n)]


def llava_bench_requests(n: int = 300, seed: int = 32) -> list[dict]:
    """Questions/contexts/answers for the review request, and the review each will get back."""
    rng = random.Random(seed)
    texts = ["A red bus.", "Two dogs, one cat.", "Der Bär – „groß“.", "东京塔", "line one\nline two", "",
             " spaced ", "tab\there", "quote \"x\" and 'y'", "{braces} [brackets]", "emoji 🐱", "a" * 50]
    reviews = [r for r in REVIEW_FIRST_LINES if "nan" not in r and "inf" not in r]  # keep the means finite
    out = []
    for i in range(n):
        caption = [rng.choice(texts) for _ in range(rng.randint(1, 3))] if rng.random() < 0.5 else rng.choice(texts)
        out.append({"id": i, "image": f"{i % 24:03d}.jpg", "caption": caption,
                    "question": rng.choice(texts) + "?", "reference": rng.choice(texts),
                    "answer": rng.choice(texts), "category": rng.choice(["conv", "detail", "complex"]),
                    "review": rng.choice(reviews) + rng.choice(["", "\nThe assistant ..."])})
    return out
