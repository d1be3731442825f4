"""The helpers of ``scripts/toy_lm_reading.py`` (the issue-6 diagnosis): answer kinds, batched
first-token accuracy against one-at-a-time scoring, and the oracle cell tokens."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from aligngpt.harness.toy import toy_model_dir
from aligngpt.processing import LlamaSPTokenizer
from aligngpt.processing.training_preprocess import preprocess_sample
from aligngpt.toy.layout import MC_ANSWER, SHORT_ANSWER
from aligngpt.toy.world import CELLS, sample_scene
from tests.script_loader import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("toy_lm_reading")


@pytest.fixture(scope="module")
def tok():
    return LlamaSPTokenizer.from_pretrained(toy_model_dir())


@pytest.fixture(scope="module")
def lm(tok):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=512,
                         pad_token_id=tok.pad_token_id)
    return LlamaForCausalLM(config).eval()


def _turns(question: str, answer: str) -> list[dict]:
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]


def test_answer_kinds(script):
    assert script.answer_kind(_turns("Is there a star?" + SHORT_ANSWER, "Yes")) == "yes/no"
    assert script.answer_kind(_turns("What colour is the star?" + SHORT_ANSWER, "red")) == "short"
    assert script.answer_kind(_turns("Which shape?\nA. star\nB. oval" + MC_ANSWER, "A")) == "mc"
    assert script.answer_kind(_turns("哪个?\nA. 星\nB. 圆\n请直接回答选项字母。", "B")) == "mc_cn"
    assert script.answer_kind(_turns("Describe the image.", "A red star.")) == "other"


def test_batched_first_answer_logits_match_one_at_a_time(script, tok, lm):
    """Right padding must not move the scored position: compare with unpadded single rows."""
    rng = np.random.default_rng(0)
    examples = []
    for i in range(12):
        scene = sample_scene(rng)
        question = ("Is there a star in the image?" if i % 2 else "How many shapes are there?") + SHORT_ANSWER
        context = "word " * int(rng.integers(0, 20))  # different lengths -> different padding
        examples.append(preprocess_sample(_turns(context + question, "Yes" if i % 3 else str(len(scene.objects))),
                                          tok, "vicuna_v1", has_image=False))
    batched = script.first_answer_logits(lm, examples, tok.pad_token_id, batch=5)
    with torch.no_grad():
        for k, ex in enumerate(examples):
            p = script.first_answer_position(ex)
            assert ex.labels[p] == ex.input_ids[p] and all(label == -100 for label in ex.labels[1:p])
            single = lm(input_ids=torch.tensor([ex.input_ids])).logits[0, p - 1]
            torch.testing.assert_close(batched[k], single, atol=1e-4, rtol=1e-4)
    hits = script.first_token_accuracy(lm, examples, tok.pad_token_id)
    assert hits == [int(batched[k].argmax()) == ex.labels[script.first_answer_position(ex)]
                    for k, ex in enumerate(examples)]


def test_oracle_cells_are_word_means_in_occupied_cells(script, tok, lm):
    scene = sample_scene(np.random.default_rng(3), n_objects=3)
    cells = script.oracle_cells(lm, tok, scene)
    assert cells.shape == (len(CELLS), lm.config.hidden_size)
    occupied = {o.row * 3 + o.col: o for o in scene.objects}
    for k in range(len(CELLS)):
        if k not in occupied:
            assert torch.count_nonzero(cells[k]) == 0
            continue
        o = occupied[k]
        expected = torch.stack([script.word_embedding(lm, tok, w) for w in (o.size, o.color, o.shape)]).mean(0)
        torch.testing.assert_close(cells[k], expected)


def test_report_renders_every_part_and_rerenders_from_json(script, tmp_path):
    report = {"work": "/w", "command": "c", "seconds": 1.0,
              "reading": {"yes/no": {"n": 4, "accuracy": 0.5}, "mc": {"n": 2, "accuracy": 0.25}},
              "context_use": {"nothing": 1.2, "description": 0.3, "oracle cell tokens": 1.1},
              "circuit": [[0, 0.5], [100, 0.9]],
              "transfer": {"clip": [[0, 0.5], [50, 0.7]], "oracle-word": [[0, 0.5], [50, 0.95]]}}
    text = script.render(report)
    for row in ("| yes/no | 4 | 50.0 |", "| mc | 2 | 25.0 |", "| description | 0.300 |",
                "| accuracy | 50.0 | 90.0 |", "| clip | 50.0 | 70.0 |", "| oracle-word | 50.0 | 95.0 |"):
        assert row in text
    src = tmp_path / "r.json"
    src.write_text(__import__("json").dumps(report))
    assert script.main(["--render", str(src), "--out", str(tmp_path / "r.md")]) == 0
    assert (tmp_path / "r.md").read_text() == text
