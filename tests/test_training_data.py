"""Training data: the LLaVA-format dataset, the collator (and quirk 9), the modality sampler."""
from __future__ import annotations

import json

import pytest
import torch

from aligngpt.constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from aligngpt.errors import DataError
from aligngpt.processing import ImageProcessorSettings, LlamaSPTokenizer
from aligngpt.training.data import TrainingCollator, TrainingDataset
from aligngpt.training.params import TrainableChoice, trainable_prefixes
from aligngpt.training.sampler import ModalityLengthGroupedSampler, even_split, modality_grouped, modality_length

from .test_training_fixtures import make_finetune_json, make_images, make_pretrain_json

SETTINGS = ImageProcessorSettings(shortest_edge=16, crop_height=16, crop_width=16)


@pytest.fixture(scope="module")
def tokenizer(official_tiny):
    return LlamaSPTokenizer.from_pretrained(official_tiny / "checkpoint")


# ---------------------------------------------------------------------------- dataset
def test_pretrain_records_become_plain_samples(tmp_path, tokenizer):
    names = make_images(tmp_path / "images", 3)
    data = make_pretrain_json(tmp_path / "p.json", names, levels=4)
    ds = TrainingDataset(data, tmp_path / "images", tokenizer, "plain", SETTINGS, "square", n_levels=4)
    item = ds[2]
    # plain template: "<image>" + caption + "\n" -> [BOS, -200, caption..., "\n"]; BOS and image masked.
    assert item["input_ids"][:2] == [tokenizer.bos_token_id, IMAGE_TOKEN_INDEX]
    assert item["input_ids"] == tokenizer.tokenize_with_images("<image>a blue square\n")
    assert item["labels"][:2] == [IGNORE_INDEX, IGNORE_INDEX] and item["labels"][2:] == item["input_ids"][2:]
    assert item["align_id"] == 2  # similarity = i % 4
    assert item["image"].shape == (3, 16, 16)


def test_pad_and_square_differ_for_non_square_images(tmp_path, tokenizer):
    names = make_images(tmp_path / "images", 1)  # 20 x 12 pixels
    data = make_pretrain_json(tmp_path / "p.json", names)
    square = TrainingDataset(data, tmp_path / "images", tokenizer, "plain", SETTINGS, "square")[0]["image"]
    pad = TrainingDataset(data, tmp_path / "images", tokenizer, "plain", SETTINGS, "pad")[0]["image"]
    assert not torch.equal(square, pad)
    # pad-to-square fills the top rows with the mean colour (122, 116, 104) -> ~0 after normalisation
    assert pad[:, 0, :].abs().max() < 0.02 and square[:, 0, :].abs().max() > 0.1


def test_finetune_records_and_modality_lengths(tmp_path, tokenizer):
    names = make_images(tmp_path / "images", 2)
    data = make_finetune_json(tmp_path / "f.json", names, n_text=1)
    ds = TrainingDataset(data, tmp_path / "images", tokenizer, "vicuna_v1", SETTINGS, "pad")
    # "<image>\nWhat color is the shape?" = 6 words + "It is red." = 3 -> 9; record 1 adds
    # "What shape is it?" (4) + "A square." (2) -> 6 + 3 + 4 + 2 = 15; text "Count to 2." + "1 2" -> -(3 + 2).
    assert ds.modality_lengths == [9, 15, -5]
    text = ds[2]
    assert text["image"] is None and text["align_id"] is None
    assert IMAGE_TOKEN_INDEX not in text["input_ids"]
    assert any(x != IGNORE_INDEX for x in text["labels"])  # the answer is supervised
    assert IMAGE_TOKEN_INDEX in ds[0]["input_ids"] and ds[0]["image"].shape == (3, 16, 16)


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda r: r[1].pop("similarity"), r"record 1 \(id '000001'\): needs an integer 'similarity'"),
        (lambda r: r[0].update(similarity=8), r"record 0 \(id '000000'\): similarity 8 outside 0..7"),
        (lambda r: r[0].update(similarity=True), r"record 0 .*needs an integer"),
        (lambda r: r[2].update(conversations=[]), r"record 2 .*non-empty list"),
        (lambda r: r[2].update(image=["x"]), r"record 2 .*'image' must be a string"),
    ],
)
def test_bad_pretrain_records_are_located(tmp_path, tokenizer, change, message):
    names = make_images(tmp_path / "images", 3)
    data = make_pretrain_json(tmp_path / "p.json", names)
    records = json.loads(data.read_text())
    change(records)
    data.write_text(json.dumps(records))
    with pytest.raises(DataError, match=message):
        TrainingDataset(data, tmp_path / "images", tokenizer, "plain", SETTINGS, n_levels=8)


def test_image_errors_are_located(tmp_path, tokenizer):
    names = make_images(tmp_path / "images", 2)
    data = make_pretrain_json(tmp_path / "p.json", names)
    with pytest.raises(DataError, match="no --image-folder"):
        TrainingDataset(data, None, tokenizer, "plain", SETTINGS)
    records = json.loads(data.read_text())
    records[0]["image"] = "../../etc/passwd"
    records[1]["image"] = "sub/none.png"
    data.write_text(json.dumps(records))
    ds = TrainingDataset(data, tmp_path / "images", tokenizer, "plain", SETTINGS)
    with pytest.raises(DataError, match="escapes the data folder"):
        ds[0]
    with pytest.raises(DataError, match=r"p.json: record 1 \(id '000001'\): cannot read image"):
        ds[1]
    data.write_text(json.dumps({"not": "a list"}))
    with pytest.raises(DataError, match="expected a JSON array"):
        TrainingDataset(data, tmp_path / "images", tokenizer, "plain", SETTINGS)


def test_a_plain_record_with_extra_turns_is_refused(tmp_path, tokenizer):
    names = make_images(tmp_path / "images", 1)
    data = make_pretrain_json(tmp_path / "p.json", names)
    records = json.loads(data.read_text())
    records[0]["conversations"].append({"from": "human", "value": "more"})
    data.write_text(json.dumps(records))
    with pytest.raises(DataError, match=r"record 0 .*exactly a human <image> turn"):
        TrainingDataset(data, tmp_path / "images", tokenizer, "plain", SETTINGS)[0]


# ---------------------------------------------------------------------------- collator
def _feature(ids, labels=None, image=False, level=None):
    return {"input_ids": ids, "labels": labels or list(ids), "image": torch.ones(3, 2, 2) if image else None, "align_id": level}


def test_collator_pads_right_and_stacks_only_real_images():
    c = TrainingCollator(pad_token_id=0, model_max_length=6, num_image_tokens=3)
    batch = c([_feature([1, -200, 5], [-100, -100, 5], image=True, level=3), _feature([1, 7, 8, 9, 10, 11, 12])])
    # width = min(longest 7, max length 6); pad id 0 / IGNORE; mask = ids != pad
    assert batch["input_ids"].tolist() == [[1, -200, 5, 0, 0, 0], [1, 7, 8, 9, 10, 11]]
    assert batch["labels"].tolist() == [[-100, -100, 5, -100, -100, -100], [1, 7, 8, 9, 10, 11]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]]
    assert batch["images"].shape == (1, 3, 2, 2)  # one image for the one placeholder
    assert batch["align_ids"].tolist() == [3, 0]  # text row: placeholder, no slot is made for it
    text_only = c([_feature([1, 7])])
    assert text_only["images"] is None and "align_ids" not in text_only


def test_reference_text_truncation_quirk():
    # Image row: 4 tokens, 1 placeholder, P = 3 image tokens -> expanded 4 - 1 + 3 = 6; text rows
    # are cut to 6 + 1 = 7 tokens (reference max_pure_len = multimodal width + indicator slot).
    features = [_feature([1, -200, 5, 6], image=True), _feature(list(range(1, 10)))]
    kept = TrainingCollator(0, 64, 3)(features)
    cut = TrainingCollator(0, 64, 3, text_truncation="reference")(features)
    assert kept["attention_mask"][1].sum() == 9
    assert cut["attention_mask"][1].tolist() == [1] * 7 + [0] * 2
    assert cut["input_ids"][1].tolist() == [1, 2, 3, 4, 5, 6, 7, 0, 0]
    assert cut["labels"][1, 7:].tolist() == [IGNORE_INDEX] * 2
    assert torch.equal(cut["input_ids"][0], kept["input_ids"][0])  # image rows untouched
    # With tokenizer_model_max_length 5 the image row is cut to 5 - 1 = 4 first -> text kept to 5.
    cut5 = TrainingCollator(0, 64, 3, text_truncation="reference", tokenizer_model_max_length=5)(features)
    assert cut5["attention_mask"][1].sum() == 5
    # Batches of one modality are never cut.
    only_text = TrainingCollator(0, 64, 3, text_truncation="reference")([features[1], _feature([1, 2])])
    assert only_text["attention_mask"][0].sum() == 9


# ---------------------------------------------------------------------------- sampler
def test_even_split_balances_lengths():
    lengths = {0: 10, 1: 8, 2: 3, 3: 1}
    # 0 -> rank 0 (both empty); 1 -> rank 1 (0 < 10); 2 -> rank 1 (8 < 10), now full;
    # 3 -> rank 0.
    assert even_split([0, 1, 2, 3], lengths, 2) == [[0, 3], [1, 2]]
    assert even_split([0, 1, 2], lengths, 2) == [[0, 2], [1]]  # uneven: round robin


def test_modality_length_counts_words():
    rec = {"image": "x", "conversations": [{"from": "human", "value": "<image>\nHi there"}, {"from": "gpt", "value": "Yes."}]}
    assert modality_length(rec) == 4
    assert modality_length({"conversations": rec["conversations"]}) == -4


def test_modality_grouped_keeps_modalities_apart():
    # 6 image samples (ids 0-5) and 5 text-only (6-10); batch 2, world 1 -> megabatches of 2.
    lengths = [5, 9, 2, 7, 4, 8, -3, -6, -1, -4, -2]
    gen = torch.Generator().manual_seed(0)
    order = modality_grouped(lengths, batch_size=2, world_size=1, generator=gen)
    assert sorted(order) == list(range(11))
    blocks = [order[i : i + 2] for i in range(0, 8, 2)]
    for block in blocks:  # the shuffled full megabatches are single-modality, longest first
        assert len({lengths[i] > 0 for i in block}) == 1
        assert abs(lengths[block[0]]) >= abs(lengths[block[1]])
    assert sum(lengths[i] > 0 for b in blocks for i in b) == 4  # 2 full image + 2 full text megabatches
    tail = order[8:]  # leftovers (last image megabatch + last text one) merged, sorted by index
    assert tail == sorted(tail) and len(tail) == 3
    assert {lengths[i] > 0 for i in tail} == {True, False}


def test_sampler_is_seeded_by_epoch():
    lengths = [3, 5, -2, 4, -6, 1, -1, 2]
    sampler = ModalityLengthGroupedSampler(lengths, batch_size=2, world_size=2, seed=7)
    first = list(sampler)
    assert list(sampler) == first  # reproducible (resume sees the same order)
    assert first == modality_grouped(lengths, 2, 2, torch.Generator().manual_seed(7))
    orders = set()
    for epoch in range(5):
        sampler.set_epoch(epoch)
        orders.add(tuple(sampler))
    assert len(orders) > 1
    one_modality = ModalityLengthGroupedSampler([3, 5, 2, 4], batch_size=2, world_size=1, seed=0)
    assert sorted(one_modality) == [0, 1, 2, 3]


# ---------------------------------------------------------------------------- trainable sets
@pytest.mark.parametrize(
    "choice,expected",
    [
        (TrainableChoice("pretrain"), ("mm_projector.", "align_indicators.indicator_embs")),
        (TrainableChoice("pretrain", align_mode="none"), ("mm_projector.",)),
        (TrainableChoice("finetune"), ("model.", "lm_head.", "mm_projector.", "gated_weight_layer.")),
        (TrainableChoice("finetune", align_mode="local"), ("model.", "lm_head.", "mm_projector.", "gated_weight_layer.")),
        (TrainableChoice("finetune", align_mode="global"), ("model.", "lm_head.", "mm_projector.")),
        (TrainableChoice("finetune", align_mode="fixed:3"), ("model.", "lm_head.", "mm_projector.")),
        (TrainableChoice("finetune", freeze_projector=True), ("model.", "lm_head.", "gated_weight_layer.")),
        (TrainableChoice("finetune", tune_align_table=True), ("model.", "lm_head.", "mm_projector.", "gated_weight_layer.", "align_indicators.indicator_embs")),
        (TrainableChoice("finetune", lora=True), ("mm_projector.", "gated_weight_layer.")),
    ],
)
def test_trainable_prefixes_per_stage(choice, expected):
    assert trainable_prefixes(choice) == expected
