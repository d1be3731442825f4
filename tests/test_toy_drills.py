"""The toy recipe's option-letter drills (dev/toy_recipe/drills.py) and their probe (dev/toy_drill_probe.py)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from aligngpt.constants import IGNORE_INDEX
from aligngpt.processing import load_tokenizer
from aligngpt.toy.layout import MC_ANSWER, mc_block
from dev import toy_drill_probe
from dev.toy_recipe.base_lm import LMRecipe, build_llama, train_base_lm
from dev.toy_recipe.drills import (DrillRecipe, chat_drill, drill, first_answer_position, option_pool, short_drill,
                                   train_drills)
from dev.toy_recipe.pipeline import Recipe

BUNDLED = Path(__file__).resolve().parents[1] / "aligngpt" / "toy_assets" / "model"


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(BUNDLED)


def targets(example) -> list[int]:
    return [t for t in example.labels if t != IGNORE_INDEX]


def test_short_drill_targets_only_the_letter(tok):
    ex = short_drill(tok, ["red", "star", "7", "BANK"], 2)
    assert tok.decode(ex.input_ids).endswith("A. red B. star C. 7 D. BANK ? 7 = C")
    assert tok.decode(targets(ex)).strip() == "C"
    assert ex.input_ids[first_answer_position(ex) + 1] == targets(ex)[0]


def test_chat_drill_asks_in_the_benchmark_format_and_masks_the_prompt(tok):
    ex = chat_drill(tok, ["red", "star", "7", "BANK"], 1)
    text = tok.decode(ex.input_ids)
    assert "USER: Which option is star?" + mc_block(["red", "star", "7", "BANK"]) + MC_ANSWER + " ASSISTANT: B" in text
    assert tok.decode(targets(ex)[:-1]).strip() == "B" and targets(ex)[-1] == tok.eos_token_id


def test_drills_are_seeded_and_formats_checked(tok):
    pool = option_pool()
    a = drill("chat", tok, random.Random(3), pool)
    b = drill("chat", tok, random.Random(3), pool)
    assert a.input_ids == b.input_ids
    assert {"red", "circle", "0"} <= set(pool)
    with pytest.raises(ValueError, match="unknown drill format 'long'"):
        drill("long", tok, random.Random(0), pool)


def test_recipe_file_omits_default_drills_and_round_trips_set_ones():
    assert "drill" not in json.loads(Recipe().to_json())  # the bundled model's work folders still match
    r = Recipe.from_dict({"drill": {"short_steps": 30, "chat_steps": 10}})
    assert r.drill == DrillRecipe(short_steps=30, chat_steps=10) and r.drill.steps == 40
    assert json.loads(r.to_json())["drill"]["short_steps"] == 30


def test_train_drills_trains_and_records_the_curve(tok):
    model = build_llama(LMRecipe(num_layers=1, hidden_size=32, intermediate_size=64), tok)
    before = [p.detach().clone() for p in model.parameters()]
    curve = train_drills(model, tok, DrillRecipe(short_steps=4, chat_steps=2, batch_size=4, warmup_steps=1), seed=0,
                         eval_every=3)
    assert [(c["step"], c["phase"]) for c in curve] == [(0, "short"), (3, "short"), (6, "chat")]
    assert all(0 <= c["chat_accuracy"] <= 100 and c["distinct"] >= 1 for c in curve)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert train_drills(model, tok, DrillRecipe(), seed=0) == []


def test_base_lm_records_its_drills(tok, tmp_path):
    examples = [short_drill(tok, ["red", "star", "7", "BANK"], i % 4) for i in range(8)]
    report = train_base_lm(examples, BUNDLED, tmp_path / "lm", LMRecipe(num_layers=1, hidden_size=32,
                                                                        intermediate_size=64, steps=2, batch_size=4),
                           drills=DrillRecipe(short_steps=2, batch_size=4, warmup_steps=1))
    assert report["drills"]["recipe"]["short_steps"] == 2
    assert [c["step"] for c in report["drills"]["curve"]] == [0, 2]
    assert "drills" in json.loads((tmp_path / "lm" / "toy_lm_training.json").read_text())


def test_probe_writes_its_curve(tmp_path):
    out = tmp_path / "probe"
    assert toy_drill_probe.main(["--phases", "short:2,chat:2", "--layers", "1", "--hidden", "32", "--batch-size", "4",
                                 "--eval-every", "2", "--out", str(out)]) == 0
    record = json.loads((out / "curve.json").read_text())
    assert [c["step"] for c in record["curve"]] == [0, 2, 4] and record["chance"] == 25.0
    assert "| 4 | chat | " in (out / "curve.md").read_text()
    with pytest.raises(SystemExit, match="short:0"):
        toy_drill_probe.parse_phases("short:0")
