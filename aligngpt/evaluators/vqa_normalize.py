"""VQA-style answer normalisation and soft accuracy, as the official scorers compute them.

Three scorer lineages share these constants but differ in *when* they normalise
(docs/protocol/README.md, "VQA answer normalisation"), so each is exposed as its own function:

* :func:`vqa_api_score`      -- GT-Vision-Lab/VQA 2021 HEAD ``vqaEval.py`` (VQAv2 server);
* :func:`vizwiz_api_score`   -- the VizWiz API from vizwiz.org (VizWiz server);
* :func:`m4c_textvqa_score`  -- LLaVA ``llava/eval/m4c_evaluator.py`` (TextVQA, copied from MMF).

:func:`m4c_process` is the m4c ``EvalAIAnswerProcessor`` that LLaVA's VQAv2/VizWiz submission
converters also apply to every prediction before upload.

Quirks reproduced on purpose (each is what the official code does; every one is pinned by a test
in ``tests/test_vqa_normalize.py`` and checked against the official code itself by the vectors in
``tests/data/official_vectors/``):

* the period regex's look-behind is malformed (``(?!<=\\d)`` is a look-*ahead* for the
  literal ``<=``), so every ``.`` not followed by a digit is deleted, and ``re.UNICODE`` is
  passed where ``count`` goes, so at most 32 periods are deleted;
* :func:`process_punctuation` decides per mark from the *original* text whether to delete the
  mark or replace it by a space, and a digit-comma-digit anywhere forces deletion of every mark;
* contraction keys that are capitalised (``Im``, ``Ive``, ...) never match after lower-casing;
  ``somebody'd`` maps to ``somebodyd``;
* leave-one-out excludes annotators by index (the VQA API compares whole answer dicts, which
  differ by ``answer_id``; the VizWiz API and m4c exclude by index);
* the final comparison is exact string equality in all three lineages: no case folding. With
  unanimous VQA answers nothing is normalised, so "yes" does not match ten "Yes".

The 2021 VQA API is Python 2 code, run on ``unicode`` strings; :func:`vqa_api_score` reproduces
Python 2's string semantics where they differ from Python 3 (:class:`Py2Text`): ``\\d`` matches
ASCII digits only (the pattern is compiled without ``re.UNICODE``), ``lower()`` maps character
by character with Unicode 5.2's simple mappings (no final sigma, "İ" -> "i"), and U+180E counts
as whitespace. The VizWiz API and m4c are Python 3 code and use Python 3's semantics.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

# Contractions map (120 entries), ASCII apostrophes.
# Source: haotian-liu/LLaVA llava/eval/m4c_evaluator.py (EvalAIAnswerProcessor.CONTRACTIONS);
# identical to GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py (2021 HEAD,
# self.contractions).
CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn't've", "couldnt've": "couldn't've",
    "didnt": "didn't", "doesnt": "doesn't", "dont": "don't", "hadnt": "hadn't",
    "hadnt've": "hadn't've", "hadn'tve": "hadn't've", "hasnt": "hasn't", "havent": "haven't",
    "hed": "he'd", "hed've": "he'd've", "he'dve": "he'd've", "hes": "he's", "howd": "how'd",
    "howll": "how'll", "hows": "how's", "Id've": "I'd've", "I'dve": "I'd've", "Im": "I'm",
    "Ive": "I've", "isnt": "isn't", "itd": "it'd", "itd've": "it'd've", "it'dve": "it'd've",
    "itll": "it'll", "let's": "let's", "maam": "ma'am", "mightnt": "mightn't",
    "mightnt've": "mightn't've", "mightn'tve": "mightn't've", "mightve": "might've",
    "mustnt": "mustn't", "mustve": "must've", "neednt": "needn't", "notve": "not've",
    "oclock": "o'clock", "oughtnt": "oughtn't", "ow's'at": "'ow's'at", "'ows'at": "'ow's'at",
    "'ow'sat": "'ow's'at", "shant": "shan't", "shed've": "she'd've", "she'dve": "she'd've",
    "she's": "she's", "shouldve": "should've", "shouldnt": "shouldn't",
    "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": "somebodyd",
    "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've",
    "somebodyll": "somebody'll", "somebodys": "somebody's", "someoned": "someone'd",
    "someoned've": "someone'd've", "someone'dve": "someone'd've", "someonell": "someone'll",
    "someones": "someone's", "somethingd": "something'd", "somethingd've": "something'd've",
    "something'dve": "something'd've", "somethingll": "something'll", "thats": "that's",
    "thered": "there'd", "thered've": "there'd've", "there'dve": "there'd've",
    "therere": "there're", "theres": "there's", "theyd": "they'd", "theyd've": "they'd've",
    "they'dve": "they'd've", "theyll": "they'll", "theyre": "they're", "theyve": "they've",
    "twas": "'twas", "wasnt": "wasn't", "wed've": "we'd've", "we'dve": "we'd've",
    "weve": "we've", "werent": "weren't", "whatll": "what'll", "whatre": "what're",
    "whats": "what's", "whatve": "what've", "whens": "when's", "whered": "where'd",
    "wheres": "where's", "whereve": "where've", "whod": "who'd", "whod've": "who'd've",
    "who'dve": "who'd've", "wholl": "who'll", "whos": "who's", "whove": "who've",
    "whyll": "why'll", "whyre": "why're", "whys": "why's", "wont": "won't",
    "wouldve": "would've", "wouldnt": "wouldn't", "wouldnt've": "wouldn't've",
    "wouldn'tve": "wouldn't've", "yall": "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
    "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've",
    "youd": "you'd", "youd've": "you'd've", "you'dve": "you'd've", "youll": "you'll",
    "youre": "you're", "youve": "you've",
}

# The same 120 entries as the VizWiz API writes them: most apostrophes are typographic (U+2019),
# a few stayed ASCII (the first five entries, the keys "couldn'tve"/"hadn'tve" and the values of
# "weve", "wheres", "whove"). Typographic keys never match model text, and typographic values
# never equal the (unnormalised, ASCII) VizWiz ground truth.
# Source: VizWiz VQA evaluation code, vqaEval.py by Qing Li ("example code from
# https://vizwiz.org/tasks-and-datasets/vqa/"), class VQAEval, self.contractions.
VIZWIZ_CONTRACTIONS: dict[str, str] = {
    "aint": "ain't", "arent": "aren't", "cant": "can't", "couldve": "could've",
    "couldnt": "couldn't", "couldn'tve": "couldn’t’ve", "couldnt’ve": "couldn’t’ve",
    "didnt": "didn’t", "doesnt": "doesn’t", "dont": "don’t", "hadnt": "hadn’t",
    "hadnt’ve": "hadn’t’ve", "hadn'tve": "hadn’t’ve", "hasnt": "hasn’t", "havent": "haven’t",
    "hed": "he’d", "hed’ve": "he’d’ve", "he’dve": "he’d’ve", "hes": "he’s", "howd": "how’d",
    "howll": "how’ll", "hows": "how’s", "Id’ve": "I’d’ve", "I’dve": "I’d’ve", "Im": "I’m",
    "Ive": "I’ve", "isnt": "isn’t", "itd": "it’d", "itd’ve": "it’d’ve", "it’dve": "it’d’ve",
    "itll": "it’ll", "let’s": "let’s", "maam": "ma’am", "mightnt": "mightn’t",
    "mightnt’ve": "mightn’t’ve", "mightn’tve": "mightn’t’ve", "mightve": "might’ve",
    "mustnt": "mustn’t", "mustve": "must’ve", "neednt": "needn’t", "notve": "not’ve",
    "oclock": "o’clock", "oughtnt": "oughtn’t", "ow’s’at": "’ow’s’at", "’ows’at": "’ow’s’at",
    "’ow’sat": "’ow’s’at", "shant": "shan’t", "shed’ve": "she’d’ve", "she’dve": "she’d’ve",
    "she’s": "she’s", "shouldve": "should’ve", "shouldnt": "shouldn’t",
    "shouldnt’ve": "shouldn’t’ve", "shouldn’tve": "shouldn’t’ve", "somebody’d": "somebodyd",
    "somebodyd’ve": "somebody’d’ve", "somebody’dve": "somebody’d’ve",
    "somebodyll": "somebody’ll", "somebodys": "somebody’s", "someoned": "someone’d",
    "someoned’ve": "someone’d’ve", "someone’dve": "someone’d’ve", "someonell": "someone’ll",
    "someones": "someone’s", "somethingd": "something’d", "somethingd’ve": "something’d’ve",
    "something’dve": "something’d’ve", "somethingll": "something’ll", "thats": "that’s",
    "thered": "there’d", "thered’ve": "there’d’ve", "there’dve": "there’d’ve",
    "therere": "there’re", "theres": "there’s", "theyd": "they’d", "theyd’ve": "they’d’ve",
    "they’dve": "they’d’ve", "theyll": "they’ll", "theyre": "they’re", "theyve": "they’ve",
    "twas": "’twas", "wasnt": "wasn’t", "wed’ve": "we’d’ve", "we’dve": "we’d’ve",
    "weve": "we've", "werent": "weren’t", "whatll": "what’ll", "whatre": "what’re",
    "whats": "what’s", "whatve": "what’ve", "whens": "when’s", "whered": "where’d",
    "wheres": "where's", "whereve": "where’ve", "whod": "who’d", "whod’ve": "who’d’ve",
    "who’dve": "who’d’ve", "wholl": "who’ll", "whos": "who’s", "whove": "who've",
    "whyll": "why’ll", "whyre": "why’re", "whys": "why’s", "wont": "won’t",
    "wouldve": "would’ve", "wouldnt": "wouldn’t", "wouldnt’ve": "wouldn’t’ve",
    "wouldn’tve": "wouldn’t’ve", "yall": "y’all", "yall’ll": "y’all’ll", "y’allll": "y’all’ll",
    "yall’d’ve": "y’all’d’ve", "y’alld’ve": "y’all’d’ve", "y’all’dve": "y’all’d’ve",
    "youd": "you’d", "youd’ve": "you’d’ve", "you’dve": "you’d’ve", "youll": "you’ll",
    "youre": "you’re", "youve": "you’ve",
}

# Number words -> digits ("manualMap"). Source: GT-Vision-Lab/VQA vqaEval.py (self.manualMap);
# LLaVA llava/eval/m4c_evaluator.py (NUMBER_MAP).
NUMBER_MAP: dict[str, str] = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10",
}

# Source: GT-Vision-Lab/VQA vqaEval.py (self.articles); LLaVA m4c_evaluator.py (ARTICLES).
ARTICLES: tuple[str, ...] = ("a", "an", "the")

# The 21 punctuation marks, in order (apostrophe, colon and period are not among them).
# Source: GT-Vision-Lab/VQA vqaEval.py 2021 HEAD (self.punct); LLaVA m4c_evaluator.py
# (PUNCTUATIONS); the VizWiz API (self.punct) -- all three identical.
PUNCTUATION: tuple[str, ...] = (
    ";", "/", "[", "]", '"', "{", "}", "(", ")", "=", "+", "\\", "_", "-", ">", "<", "@", "`",
    ",", "?", "!",
)

# Source: GT-Vision-Lab/VQA vqaEval.py (self.periodStrip); same text in m4c and VizWiz.
# Quirk: "(?!<=\d)" is a negative look-ahead for "<=" followed by a digit, which can never match
# where the next character is ".", so the pattern is effectively "\.(?!\d)".
PERIOD_STRIP = re.compile(r"(?!<=\d)(\.)(?!\d)")
# Quirk: the official code calls periodStrip.sub("", text, re.UNICODE): re.UNICODE (== 32) lands
# in the ``count`` slot, so at most 32 periods are removed.
PERIOD_STRIP_COUNT: int = int(re.UNICODE)

# Digit-comma-digit detector. Source: GT-Vision-Lab/VQA vqaEval.py and the VizWiz API
# (self.commaStrip).
COMMA_STRIP_VQA = re.compile(r"(\d)(\,)(\d)")
# The same two patterns as Python 2 compiles them (vqaEval.py L62-63 pass no flags, and in
# Python 2 ``\d`` is then [0-9] only, even on unicode text).
PERIOD_STRIP_PY2 = re.compile(r"(?!<=\d)(\.)(?!\d)", re.ASCII)
COMMA_STRIP_PY2 = re.compile(r"(\d)(\,)(\d)", re.ASCII)
# The m4c variant (one or more commas between digits). Source: LLaVA m4c_evaluator.py
# (COMMA_STRIP). In m4c it never fires: word_tokenize has already deleted every comma.
COMMA_STRIP_M4C = re.compile(r"(?<=\d)(\,)+(?=\d)")


# Code points whose lower-case mapping Python 3 knows but Python 2.7 (Unicode 5.2) does not:
# Python 2 leaves them unchanged. Generated by comparing unichr(i).lower() under Python 2.7.18
# with chr(i).lower() under Python 3.11 (Unicode 14) for every code point. A later Python (newer
# Unicode) may lower-case further letters that Python 2 leaves alone; those are not covered.
_PY2_UNCASED = (
    (0x037F, 0x037F), (0x0526, 0x052E), (0x10C7, 0x10C7), (0x10CD, 0x10CD), (0x13A0, 0x13F5),
    (0x1C90, 0x1CBA), (0x1CBD, 0x1CBF), (0x2C2F, 0x2C2F), (0x2CF2, 0x2CF2), (0xA660, 0xA660),
    (0xA698, 0xA69A), (0xA78D, 0xA78D), (0xA790, 0xA792), (0xA796, 0xA7C9), (0xA7D0, 0xA7D0),
    (0xA7D6, 0xA7D8), (0xA7F5, 0xA7F5), (0x104B0, 0x104D3), (0x10570, 0x10595),
    (0x10C80, 0x10CB2), (0x118A0, 0x118BF), (0x16E40, 0x16E5F), (0x1E900, 0x1E921),
)
# Python 2.7's unicode whitespace = Python 3's plus U+180E (Zs in Unicode 5.2).
_PY2_EXTRA_SPACE = "\u180e"


def _py2_lower_char(ch: str) -> str:
    if ch == "\u0130":          # simple mapping; Python 3's full mapping gives "i" + U+0307
        return "i"
    code = ord(ch)
    if any(lo <= code <= hi for lo, hi in _PY2_UNCASED):
        return ch
    return ch.lower()           # one character at a time: no final-sigma context rule


class Py2Text:
    """Python 2.7 ``unicode`` string methods that differ from Python 3's (see module doc)."""

    @staticmethod
    def lower(text: str) -> str:
        return text.lower() if text.isascii() else "".join(_py2_lower_char(c) for c in text)

    @staticmethod
    def split(text: str) -> list[str]:
        return text.replace(_PY2_EXTRA_SPACE, " ").split()

    @staticmethod
    def strip(text: str) -> str:
        if _PY2_EXTRA_SPACE not in text:
            return text.strip()
        stripped = text.strip()
        while stripped != (again := stripped.strip(_PY2_EXTRA_SPACE).strip()):
            stripped = again
        return stripped


def normalize_whitespace(text: str, *, strip: Callable[[str], str] = str.strip) -> str:
    """Newlines and tabs to spaces, then strip: the first step of every lineage."""
    return strip(text.replace("\n", " ").replace("\t", " "))


def process_punctuation(text: str, *, comma_strip: re.Pattern = COMMA_STRIP_VQA,
                        period_strip: re.Pattern = PERIOD_STRIP) -> str:
    """``processPunctuation``: delete or space out each punctuation mark, then strip periods.

    A mark is deleted when the *original* text has it next to a space (``p + " "`` or
    ``" " + p``) or contains a digit-comma-digit; otherwise each occurrence becomes a space.
    """
    has_digit_comma = comma_strip.search(text) is not None
    out = text
    for mark in PUNCTUATION:
        if has_digit_comma or (mark + " ") in text or (" " + mark) in text:
            out = out.replace(mark, "")
        else:
            out = out.replace(mark, " ")
    return period_strip.sub("", out, count=PERIOD_STRIP_COUNT)


def process_digit_article(text: str, *, contractions: Mapping[str, str] = CONTRACTIONS,
                          text_ops: type = str) -> str:
    """``processDigitArticle``: lower-case, number words to digits, drop articles, contractions.

    ``text_ops`` supplies ``lower``/``split`` (``str`` or :class:`Py2Text`).
    """
    words = [NUMBER_MAP.get(w, w) for w in text_ops.split(text_ops.lower(text))]
    kept = [w for w in words if w not in ARTICLES]
    return " ".join(contractions.get(w, w) for w in kept)


def m4c_word_tokenize(text: str) -> str:
    """m4c ``word_tokenize``: lower-case, delete ``,`` and ``?``, split off ``'s``, strip."""
    return text.lower().replace(",", "").replace("?", "").replace("'s", " 's").strip()


def m4c_process(text: str) -> str:
    """The m4c ``EvalAIAnswerProcessor.__call__`` (LLaVA ``llava/eval/m4c_evaluator.py``).

    word_tokenize, whitespace, punctuation (with the m4c comma regex), digits/articles.
    E.g. "Yes." -> "yes", "Two" -> "2", "1,000" -> "1000", "McDonald's" -> "mcdonald 's".
    """
    text = normalize_whitespace(m4c_word_tokenize(text))
    text = process_punctuation(text, comma_strip=COMMA_STRIP_M4C)
    return process_digit_article(text)


def soft_accuracy(
    prediction: str, answers: Sequence[str], *, key: Callable[[str], str] | None = None
) -> float:
    """VQA accuracy: mean over annotators i of min(1, #matches among the *other* answers / 3).

    Annotators are excluded by index (two identical answers are still two annotators). ``key``
    maps both sides before the exact comparison; the official scorers use none.
    With 10 answers of which k equal the prediction: 0, 0.3, 0.6, 0.9, then 1.0 for k >= 4.
    """
    if not answers:
        raise ValueError("soft accuracy needs at least one ground-truth answer")
    if key is not None:
        prediction = key(prediction)
        answers = [key(a) for a in answers]
    matches = [a == prediction for a in answers]
    total = sum(matches)
    accs = [min(1, (total - int(hit)) / 3) for hit in matches]
    return sum(accs) / len(accs)


@dataclass(frozen=True)
class VQAScore:
    """One question's score plus the strings that were compared (for per-sample logs)."""

    score: float
    prediction: str
    answers: tuple[str, ...]


def vqa_api_score(prediction: str, answers: Sequence[str]) -> VQAScore:
    """Official VQA API, GT-Vision-Lab/VQA 2021 HEAD ``VQAEval.evaluate`` for one question.

    vqaEval.py L87-94: newlines/tabs to spaces and strip on the answers and the prediction.
    L98-103: only when the stripped answers are not all identical, processPunctuation then
    processDigitArticle run on every answer *and* on the prediction. L105-108: leave-one-out
    with ``item['answer'] == resAns``, an exact, case-sensitive comparison. So with ten "Yes"
    the prediction "yes" scores 0, and with ten "yes" the prediction "Yes." scores 0.
    String operations follow Python 2 (:class:`Py2Text`, ASCII-only ``\\d``).
    """
    gts = [normalize_whitespace(a, strip=Py2Text.strip) for a in answers]
    pred = normalize_whitespace(prediction, strip=Py2Text.strip)
    if len(set(gts)) > 1:
        gts = [_vqa_api_process(a) for a in gts]
        pred = _vqa_api_process(pred)
    score = soft_accuracy(pred, gts)
    return VQAScore(score, pred, tuple(gts))


def _vqa_api_process(text: str) -> str:
    """processPunctuation + processDigitArticle as the Python 2 API runs them."""
    text = process_punctuation(text, comma_strip=COMMA_STRIP_PY2, period_strip=PERIOD_STRIP_PY2)
    return process_digit_article(text, text_ops=Py2Text)


def vizwiz_api_score(
    prediction: str,
    answers: Sequence[str],
    *,
    contractions: Mapping[str, str] = VIZWIZ_CONTRACTIONS,
) -> VQAScore:
    """VizWiz API ``VQAEval.evaluate`` for one question.

    The prediction is always whitespace/punctuation/digit-article normalised (with the VizWiz
    contractions table); the answers are used as given (no normalisation, case-sensitive).
    """
    pred = process_digit_article(
        process_punctuation(normalize_whitespace(prediction)), contractions=contractions
    )
    gts = tuple(answers)
    return VQAScore(soft_accuracy(pred, gts), pred, gts)


def m4c_textvqa_score(
    prediction: str, answers: Sequence[str], *, require_ten: bool = True
) -> VQAScore:
    """LLaVA/MMF ``TextVQAAccuracyEvaluator`` for one question: m4c processor on both sides.

    The official code asserts exactly 10 answers (``require_ten``).
    """
    if require_ten and len(answers) != 10:
        raise ValueError(f"m4c TextVQA scoring needs exactly 10 answers, got {len(answers)}")
    gts = tuple(m4c_process(a) for a in answers)
    pred = m4c_process(prediction)
    return VQAScore(soft_accuracy(pred, gts), pred, gts)
