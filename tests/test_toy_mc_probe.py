"""``scripts/toy_mc_probe.py`` (issue-6 diagnosis): the lookup questions, their encoding and the report."""
from __future__ import annotations

import numpy as np
import pytest

from aligngpt.harness.toy import toy_model_dir
from aligngpt.processing import LlamaSPTokenizer
from aligngpt.toy.layout import LETTERS, MC_ANSWER
from tests.script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("toy_mc_probe")


@pytest.fixture(scope="module")
def tok():
    return LlamaSPTokenizer.from_pretrained(toy_model_dir())


def test_words_are_one_piece_and_questions_name_their_answer(script, tok):
    pool = script.single_piece_words(tok)
    assert len(pool) >= 8 and all(len(tok.sp.encode(w)) == 1 for w in pool)
    rng = np.random.default_rng(0)
    letters = set()
    for _ in range(50):
        question, answer = script.lookup_question(rng, pool, 4)
        asked = question.split("?")[0].removeprefix("Which option is ")
        options = dict(line.split(". ", 1) for line in question.split("\n")[1:5])
        assert list(options) == list(LETTERS[:4]) and len(set(options.values())) == 4
        assert options[answer] == asked and question.endswith(MC_ANSWER)
        letters.add(answer)
    assert letters == set(LETTERS[:4])


@pytest.mark.parametrize("bare", [True, False])
def test_only_the_letter_and_eos_are_targets(script, tok, bare):
    question, answer = script.lookup_question(np.random.default_rng(1), script.single_piece_words(tok), 4)
    ex = script.encode(tok, question, answer, bare)
    targets = [(i, t) for i, t in enumerate(ex.labels) if t != -100]
    assert [t for _, t in targets] == [tok.sp.encode(" " + answer)[-1], tok.eos_token_id]
    assert all(ex.input_ids[i] == t for i, t in targets)
    assert tok.decode(ex.input_ids[:targets[0][0]]).rstrip().endswith("ASSISTANT:")
    assert ("A chat between" in tok.decode(ex.input_ids)) is not bare


def test_probe_reports_a_curve_and_renders_it(script):
    report = script.probe(layers=1, steps=4, n_options=2, bare=True, seed=0, every=2, batch=4, n_test=20)
    assert [s for s, _, _ in report["curve"]] == [0, 2, 4]
    assert all(0 <= a <= 1 and 1 <= d <= 20 for _, a, d in report["curve"])
    assert 0.5 <= report["constant_guess"] <= 1
    text = script.render([report], "cmd")
    assert "## 1 layers, 2 options, bare USER/ASSISTANT" in text
    assert text.count("| accuracy |") == 1 and f"{100 * report['curve'][-1][1]:.1f} ({report['curve'][-1][2]})" in text
