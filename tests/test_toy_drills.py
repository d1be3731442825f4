"""The toy recipe's option-letter and reading drills (dev/toy_recipe/drills.py) and their probe (dev/toy_drill_probe.py)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from aligngpt.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from aligngpt.processing import load_tokenizer
from aligngpt.processing.training_preprocess import preprocess_plain
from aligngpt.toy.layout import MC_ANSWER, mc_block
from dev import toy_drill_probe
from dev.toy_recipe.base_lm import LMRecipe, build_llama, train_base_lm
from dev.toy_recipe.corpus import described_conversations
from dev.toy_recipe.drills import (EXIST_RECIPE, READ_KINDS, DrillRecipe, answer_kind, chat_drill, drill,
                                   copy_drill, copy_pairs, first_answer_position, mixed_format, option_pool,
                                   read_drills, short_drill, train_drills)
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


def test_reading_drills_are_first_turns_from_their_own_stream(tok):
    chats = read_drills(0, 30, "read_drill")
    assert chats == read_drills(0, 30, "read_drill") and all(len(c) == 2 for c in chats)
    text = {c[0]["value"] for c in described_conversations(0, 30)}
    assert not text & {c[0]["value"] for c in chats}  # never the base LM's own described text
    kinds = {answer_kind(c) for c in read_drills(0, 300, "read_drill")}
    assert kinds <= set(READ_KINDS) and {"yes/no", "mc", "mc_cn"} <= kinds
    ex = drill("read", tok, random.Random(0), chats)
    assert tok.decode(targets(ex)[:-1]).strip() in {c[1]["value"] for c in chats}


def test_exist_drills_are_presence_questions_and_phases_run_in_order(tok):
    chats = read_drills(0, 200, "exist_drill", (EXIST_RECIPE,))
    assert all(c[0]["value"].split("\n")[-2].startswith("Is there ") for c in chats)
    answers = [c[1]["value"] for c in chats]
    assert set(answers) == {"Yes", "No"} and 70 < answers.count("Yes") < 130
    with pytest.raises(ValueError, match="no instruction recipe among"):
        read_drills(0, 1, "exist_drill", ("no_such_recipe",))
    model = build_llama(LMRecipe(num_layers=1, hidden_size=32, intermediate_size=64), tok)
    curve = train_drills(model, tok, DrillRecipe(short_steps=1, exist_steps=2, copy_steps=1, read_steps=1,
                                                 read_pool=40, batch_size=4, warmup_steps=1), seed=0, eval_every=1)
    assert [c["phase"] for c in curve] == ["short", "short", "exist", "exist", "copy", "read"]
    assert DrillRecipe(exist_steps=5, copy_steps=3, read_steps=2).steps == 10


def test_copy_drill_is_a_stage1_sample_with_the_description_for_the_image(tok):
    pairs = copy_pairs(0, 50)
    assert pairs == copy_pairs(0, 50) and pairs != copy_pairs(0, 50, "other_stream")
    description, caption = pairs[0]
    ex = copy_drill(tok, description, caption)
    stage1 = preprocess_plain([{"from": "human", "value": "<image>"}, {"from": "gpt", "value": caption}], tok)
    assert targets(ex) == targets(stage1)  # the caption tokenised exactly as stage 1 tokenises it
    assert ex.input_ids[0] == tok.bos_token_id and IMAGE_TOKEN_INDEX not in ex.input_ids
    assert tok.decode(ex.input_ids).startswith(description) and tok.decode(targets(ex)).strip() == caption
    assert drill("copy", tok, random.Random(0), pairs).input_ids in [copy_drill(tok, *p).input_ids for p in pairs]


def test_answer_kind_follows_the_benchmark_suffix():
    def chat(q, a):
        return [{"from": "human", "value": q}, {"from": "gpt", "value": a}]

    assert answer_kind(chat("Which?" + mc_block(["red", "blue"]) + MC_ANSWER, "A")) == "mc"
    assert answer_kind(chat("哪个？\nA. 1\n请直接回答选项字母。", "A")) == "mc_cn"
    assert answer_kind(chat("Is there a star?", "Yes")) == "yes/no"
    assert answer_kind(chat("What colour?\nAnswer the question using a single word or phrase.", "red")) == "short"
    assert answer_kind(chat("Describe it.", "A red star.")) == "other"


def test_train_drills_records_reading_per_answer_kind(tok):
    model = build_llama(LMRecipe(num_layers=1, hidden_size=32, intermediate_size=64), tok)
    curve = train_drills(model, tok, DrillRecipe(read_steps=2, read_pool=40, batch_size=4, warmup_steps=1), seed=0,
                         eval_every=2)
    assert [(c["step"], c["phase"]) for c in curve] == [(0, "read"), (2, "read")]
    assert set(curve[-1]["reading"]) <= set(READ_KINDS) and "yes/no" in curve[-1]["reading"]
    assert all(0 <= v <= 100 for c in curve for v in c["reading"].values())


def test_mixed_phase_keeps_letter_drills_among_the_reading(tok):
    rng = random.Random(0)
    draws = [mixed_format(rng, 0.5) for _ in range(2000)]
    assert 900 < draws.count("read") < 1100 and 400 < draws.count("chat") < 600 and 400 < draws.count("short") < 600
    assert set(mixed_format(rng, 1.0) for _ in range(50)) == {"read"}
    model = build_llama(LMRecipe(num_layers=1, hidden_size=32, intermediate_size=64), tok)
    curve = train_drills(model, tok, DrillRecipe(mix_steps=3, read_pool=40, batch_size=8, warmup_steps=1), seed=0,
                         eval_every=3)
    assert [c["phase"] for c in curve] == ["mix", "mix"] and "reading" in curve[-1]


def test_recipe_file_omits_blind_conversations_unless_turned_off():
    assert "blind_conversations" not in json.loads(Recipe().to_json())
    r = Recipe.from_dict({"blind_conversations": False})
    assert json.loads(r.to_json())["blind_conversations"] is False and not r.blind_conversations


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


@pytest.mark.parametrize("after_text", [False, True])
def test_drills_run_before_or_after_the_base_lm_text(tok, tmp_path, monkeypatch, after_text):
    from dev.toy_recipe import base_lm

    events = []
    real_drills, real_step = base_lm.train_drills, base_lm.optimizer_step
    monkeypatch.setattr(base_lm, "train_drills", lambda *a, **k: events.append("drills") or real_drills(*a, **k))
    monkeypatch.setattr(base_lm, "optimizer_step", lambda *a, **k: events.append("text") or real_step(*a, **k))
    examples = [short_drill(tok, ["red", "star", "7", "BANK"], i % 4) for i in range(8)]
    report = train_base_lm(examples, BUNDLED, tmp_path / "lm", LMRecipe(num_layers=1, hidden_size=32,
                                                                        intermediate_size=64, steps=2, batch_size=4),
                           drills=DrillRecipe(short_steps=2, batch_size=4, warmup_steps=1, after_text=after_text))
    assert events == (["text", "text", "drills"] if after_text else ["drills", "text", "text"])
    assert [c["step"] for c in report["drills"]["curve"]] == [0, 2]


def test_probe_writes_its_curve(tmp_path):
    out = tmp_path / "probe"
    assert toy_drill_probe.main(["--phases", "short:2,chat:2", "--layers", "1", "--hidden", "32", "--batch-size", "4",
                                 "--eval-every", "2", "--out", str(out)]) == 0
    record = json.loads((out / "curve.json").read_text())
    assert [c["step"] for c in record["curve"]] == [0, 2, 4] and record["chance"] == 25.0
    assert "| 4 | chat | " in (out / "curve.md").read_text()
    with pytest.raises(SystemExit, match="short:0"):
        toy_drill_probe.parse_phases("short:0")


def test_probe_table_shows_reading_columns_only_when_measured():
    rows = [{"step": 0, "phase": "short", "chat_accuracy": 0.0, "distinct": 2, "seconds": 0.0},
            {"step": 5, "phase": "read", "loss": 0.5, "chat_accuracy": 30.0, "distinct": 4, "seconds": 9.0,
             "reading": {"yes/no": 62.5, "mc": 25.0}}]
    table = toy_drill_probe.curve_table(rows, 25.0)
    assert "reading yes/no | reading mc | seconds" in table and "reading short" not in table
    assert "| 5 | read | 0.500 | 30.0 | 4 | 62.5 | 25.0 | 9 |" in table
    assert "| 0 | short |  | 0.0 | 2 |  |  | 0 |" in table
    assert "reading" not in toy_drill_probe.curve_table(rows[:1], 25.0)


def test_presence_drill_answers_whether_the_asked_value_is_listed(tok):
    rng = random.Random(1)
    answers = []
    for _ in range(200):
        ex = drill("presence", tok, rng, [])
        listing, asked = tok.decode(ex.input_ids[:first_answer_position(ex) + 1]).rsplit(" ? ", 1)
        said = tok.decode(targets(ex)).strip()
        truth = asked.removesuffix(" =").strip() in listing.split()
        assert said == ("Yes" if truth else "No")
        answers.append(said)
    assert 70 < answers.count("Yes") < 130
