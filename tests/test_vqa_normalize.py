"""The shared VQA normaliser: the documented examples, every branch, the three lineages.

Expected strings and scores are worked out by hand from the algorithm as
docs/protocol/README.md, "VQA answer normalisation" states it; the comment on each case says
how.
"""
import re

import pytest

from aligngpt.evaluators.vqa_normalize import (
    ARTICLES, COMMA_STRIP_M4C, COMMA_STRIP_VQA, CONTRACTIONS, NUMBER_MAP, PERIOD_STRIP_COUNT,
    PUNCTUATION, VIZWIZ_CONTRACTIONS, m4c_process, m4c_textvqa_score, m4c_word_tokenize,
    normalize_whitespace, process_digit_article, process_punctuation, soft_accuracy,
    vizwiz_api_score, vqa_api_score,
)


# ------------------------------------------------------------------ constants
def test_constant_tables_have_the_documented_shape():
    assert len(CONTRACTIONS) == 120 and len(VIZWIZ_CONTRACTIONS) == 120
    assert len(NUMBER_MAP) == 12 and NUMBER_MAP["none"] == "0" and NUMBER_MAP["ten"] == "10"
    assert ARTICLES == ("a", "an", "the")
    assert len(PUNCTUATION) == 21 and PUNCTUATION[17] == "`"  # 18th item is the backtick
    assert not {"'", ":", "."} & set(PUNCTUATION)
    assert PERIOD_STRIP_COUNT == 32  # re.UNICODE, passed where `count` goes
    assert CONTRACTIONS["somebody'd"] == "somebodyd"  # the known oddity


def test_vizwiz_table_is_the_ascii_table_with_typographic_apostrophes():
    # Same keys/values in the same order once U+2019 is turned back into "'".
    ascii_ = lambda s: s.replace("\u2019", "'")
    pairs = zip(VIZWIZ_CONTRACTIONS.items(), CONTRACTIONS.items())
    assert all(ascii_(k1) == k2 and ascii_(v1) == v2 for (k1, v1), (k2, v2) in pairs)
    # The entries that kept an ASCII apostrophe in the VizWiz code.
    kept = [k for k, v in VIZWIZ_CONTRACTIONS.items() if "'" in k or "'" in v]
    assert kept == ["aint", "arent", "cant", "couldve", "couldnt", "couldn'tve", "hadn'tve",
                    "weve", "wheres", "whove"]
    assert VIZWIZ_CONTRACTIONS["dont"] == "don\u2019t"


# ---------------------------------------------------------------- m4c processor (building block 3)
@pytest.mark.parametrize("raw, expected", [
    ("Yes.", "yes"),              # lower; "." not followed by a digit is deleted
    ("Two", "2"),                 # number map
    ("1,000", "1000"),            # word_tokenize deletes the comma
    ("McDonald's", "mcdonald 's"),  # "'s" split off; apostrophe is not punctuation
    ("Coca-Cola", "coca cola"),   # "-" with no space next to it becomes a space
    ("a.m.", "am"),               # both periods deleted
    ("a", ""),                    # an article alone disappears
])
def test_m4c_examples_from_protocol(raw, expected):
    assert m4c_process(raw) == expected


def test_m4c_word_tokenize_and_whitespace():
    # lower, drop "," and "?", "'s" -> " 's", strip (newline inside is kept by word_tokenize) ...
    assert m4c_word_tokenize(" What's, up?\n") == "what 's up"
    # ... then m4c_process turns inner tabs/newlines into spaces; split() collapses them.
    assert m4c_process("\tThe\nANSWER\t") == "answer"


# ----------------------------------------------------------- processPunctuation (building block 1)
def test_punctuation_space_or_delete_decided_on_original_text():
    # "(" has " (" in the text -> deleted; ")" is at the end with no space around -> a space.
    assert process_punctuation("a (b)") == "a b "
    # "-" with spaces around -> deleted (two spaces remain).
    assert process_punctuation("yes - no") == "yes  no"


def test_punctuation_digit_comma_digit_deletes_every_mark():
    # VQA regex (\d)(,)(\d) matches "1,0": every mark (",", "-") is deleted.
    assert process_punctuation("1,000-2") == "10002"
    # "1,,2" has two commas: the VQA regex needs digit-comma-digit -> no match -> marks become
    # spaces; the m4c regex (?<=\d),+(?=\d) matches -> marks deleted.
    assert process_punctuation("1,,2-x", comma_strip=COMMA_STRIP_VQA) == "1  2 x"
    assert process_punctuation("1,,2-x", comma_strip=COMMA_STRIP_M4C) == "12x"


def test_period_regex_quirks():
    assert process_punctuation("3.5") == "3.5"       # followed by a digit: kept
    assert process_punctuation("5.") == "5"          # not followed by a digit: deleted
    assert process_punctuation(".5 x.") == ".5 x"    # the malformed look-behind never blocks
    # 40 periods: only the first 32 are deleted (count=re.UNICODE=32).
    assert process_punctuation("a." * 40) == "a" * 32 + "a." * 8


# ---------------------------------------------------------- processDigitArticle (building block 2)
def test_digit_article_and_contractions():
    assert process_digit_article("The Two  dogs") == "2 dogs"     # article dropped, two -> 2
    assert process_digit_article("none of an apple") == "0 of apple"
    assert process_digit_article("Dont  know whats") == "don't know what's"
    # Capitalised keys ("Im") never match after lower-casing.
    assert process_digit_article("Im here") == "im here"
    assert process_digit_article("dont", contractions=VIZWIZ_CONTRACTIONS) == "don\u2019t"
    assert process_digit_article("weve", contractions=VIZWIZ_CONTRACTIONS) == "we've"


def test_normalize_whitespace():
    assert normalize_whitespace(" a\tb\nc ") == "a b c"


# ---------------------------------------------------------------- soft accuracy (building block 4)
@pytest.mark.parametrize("k, expected", [
    (0, 0.0),   # nobody gave it
    (1, 0.3),   # 9 annotators see 1 match -> 9 * (1/3) / 10
    (2, 0.6),   # 2 * (1/3) + 8 * (2/3) = 6 -> / 10
    (3, 0.9),   # 3 * (2/3) + 7 * 1 = 9 -> / 10
    (4, 1.0),   # every annotator sees >= 3 matches
])
def test_soft_accuracy_closed_form(k, expected):
    answers = ["cat"] * k + [f"other{i}" for i in range(10 - k)]
    assert soft_accuracy("cat", answers) == pytest.approx(expected, abs=1e-12)


def test_soft_accuracy_leaves_one_out_by_index_not_value():
    # Ten identical answers: each annotator still sees 9 others -> 1.0. Excluding by value
    # would leave 0 matches and give 0.
    assert soft_accuracy("yes", ["yes"] * 10) == 1.0


def test_soft_accuracy_key_and_errors():
    assert soft_accuracy("YES", ["yes"] * 10) == 0.0
    assert soft_accuracy("YES", ["yes"] * 10, key=str.lower) == 1.0
    with pytest.raises(ValueError):
        soft_accuracy("yes", [])


# ------------------------------------------------------------------ lineages ("Who does what")
def test_vqa_api_normalises_only_when_answers_disagree():
    # Unanimous answers: no punctuation processing, so "yes." != "yes" -> 0 ...
    assert vqa_api_score("Yes.", ["yes"] * 10).score == 0.0
    # ... whitespace is normalised, but the comparison is exact (vqaEval.py L107
    # ``item['answer']==resAns``: no lower-casing) -> "YES" scores 0 against ten "yes".
    r = vqa_api_score(" YES\n", ["yes"] * 10)
    assert r.score == 0.0 and r.prediction == "YES"
    assert vqa_api_score(" yes\n", ["yes"] * 10).score == 1.0
    # One different answer: both sides processed; "yes." -> "yes" for GT and prediction -> all
    # 10 GTs are "yes" -> 1.0.
    r = vqa_api_score("Yes.", ["yes"] * 9 + ["yes."])
    assert r.score == 1.0 and r.prediction == "yes" and set(r.answers) == {"yes"}
    # Answers disagree, so the prediction "two" -> "2" matches 2 of the 10 -> 0.6.
    assert vqa_api_score("two", ["2", "2"] + ["many"] * 8).score == pytest.approx(0.6)


def test_vizwiz_api_normalises_prediction_only():
    # Prediction "two" -> "2"; ground truth "two" is never normalised -> 0.
    assert vizwiz_api_score("two", ["two"] * 10).score == 0.0
    assert vizwiz_api_score("Two", ["2"] * 10).score == 1.0
    # Case-sensitive against raw GT: "Yes" -> "yes" != "Yes".
    assert vizwiz_api_score("Yes", ["Yes"] * 10).score == 0.0
    # The typographic contractions table: "dont" -> "don’t" != "don't" (ASCII GT) ...
    assert vizwiz_api_score("dont", ["don't"] * 10).score == 0.0
    # ... with the ASCII table it would match.
    assert vizwiz_api_score("dont", ["don't"] * 10, contractions=CONTRACTIONS).score == 1.0


def test_m4c_textvqa_processes_both_sides():
    # GTs "Two" x3 -> "2"; prediction "2." -> "2": k = 3 -> 0.9.
    r = m4c_textvqa_score("2.", ["Two"] * 3 + ["three"] * 7)
    assert r.score == pytest.approx(0.9) and r.prediction == "2" and r.answers[0] == "2"
    with pytest.raises(ValueError, match="exactly 10"):
        m4c_textvqa_score("2", ["2"] * 9)
    # Soft score over 9 answers when the check is off: 3 matches of 9 -> each of the 3 sees 2
    # (2/3), the 6 others see 3 (1) -> (2 + 6) / 9.
    assert m4c_textvqa_score("2", ["2"] * 3 + ["x"] * 6, require_ten=False).score == \
        pytest.approx(8 / 9)


def test_regexes_are_the_official_patterns():
    assert COMMA_STRIP_VQA.pattern == r"(\d)(\,)(\d)"
    assert COMMA_STRIP_M4C.pattern == r"(?<=\d)(\,)+(?=\d)"
    assert isinstance(COMMA_STRIP_VQA, re.Pattern)


# ------------------------------------------------------------------ VQA API quirks
# Each test pins one behaviour of GT-Vision-Lab/VQA @ a013f00
# PythonEvaluationTools/vqaEvaluation/vqaEval.py, checked against the official code itself by
# tests/test_official_vectors.py.
def test_vqa_api_unanimous_answers_are_compared_case_sensitively():
    # L98 skips all processing when the 10 answers are identical; L107 compares with ==.
    # The held-out VQAv2-val failure: the m4c processor lower-cases the prediction, the ten
    # annotators wrote "Nike" -> 0.0 (we used to lower-case both sides and gave 1.0).
    assert vqa_api_score("nike", ["Nike"] * 10).score == 0.0
    assert vqa_api_score("Nike", ["Nike"] * 10).score == 1.0


def test_vqa_api_split_answers_are_lower_cased_through_processing():
    # L99-103: processDigitArticle lower-cases both sides once the answers disagree.
    assert vqa_api_score("nike", ["Nike"] * 9 + ["adidas"]).score == 1.0


def test_vqa_api_digit_class_is_ascii_as_in_python_2():
    # L62-63 compile periodStrip/commaStrip without re.UNICODE (L139 passes it as `count`), and
    # Python 2's \d is then [0-9] only: "٣,٤" (Arabic-Indic digits) is no digit-comma-digit, so
    # "," becomes a space; under Python 3 semantics it would be deleted.
    assert vqa_api_score("٣ ٤", ["٣,٤"] * 3 + ["x"] * 7).score == pytest.approx(0.9)
    assert vqa_api_score("٣٤", ["٣,٤"] * 3 + ["x"] * 7).score == 0.0
    # periodStrip: a "." before a non-ASCII digit is deleted.
    assert vqa_api_score("1٥", ["1.٥"] * 3 + ["x"] * 7).score == pytest.approx(0.9)


def test_vqa_api_lower_is_python_2_unicode_lower():
    # L144 ``inText.lower()`` on a Python 2 unicode: no final-sigma rule ...
    assert vqa_api_score("οδοσ", ["ΟΔΟΣ"] * 3 + ["x"] * 7).score == pytest.approx(0.9)
    assert vqa_api_score("οδος", ["ΟΔΟΣ"] * 3 + ["x"] * 7).score == 0.0
    # ... simple mapping for U+0130 ("İ" -> "i", not "i" + U+0307) ...
    assert vqa_api_score("istanbul", ["İstanbul"] * 3 + ["x"] * 7).score == pytest.approx(0.9)
    # ... and no mapping for letters cased after Unicode 5.2 (Georgian Mtavruli, U+1C90).
    assert vqa_api_score("Ა", ["Ა"] * 3 + ["x"] * 7).score == pytest.approx(0.9)
    assert vqa_api_score("ა", ["Ა"] * 3 + ["x"] * 7).score == 0.0


def test_vqa_api_whitespace_is_python_2_whitespace():
    # L144 ``.split()`` and L90/L94 ``.strip()``: U+180E was whitespace in Python 2.7.
    assert vqa_api_score("yes sir", ["yes\u180esir"] * 3 + ["x"] * 7).score == pytest.approx(0.9)
    assert vqa_api_score("\u180eyes\u180e", ["yes"] * 10).score == 1.0


def test_vqa_api_excludes_annotators_by_index():
    # L106 drops the answer dict being scored; in the real layout the dicts differ by
    # answer_id, so two identical answers are two annotators: k = 3 -> 0.9, not 0.
    assert vqa_api_score("red", ["red"] * 3 + ["blue", "green"] * 3 + ["x"]).score == pytest.approx(0.9)
