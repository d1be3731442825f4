"""AlignGPT on Llama-3 / Qwen2 / Mistral / Phi3 / Gemma2 LMs with CLIP and SigLIP towers, all tiny,
random and built offline (tests/tiny_backbones.py).

Per family x tower: one pretrain stage and one finetune stage through the training builder
(20 optimiser steps each, loss must fall), save/load bit-identical, the forward's sequence
layout (patch count from the tower, alignment slot where the anchor rule puts it), and batched
greedy generation equal to batch-size-1 generation.
"""
from __future__ import annotations

import pytest
import torch
from PIL import Image

import aligngpt
from aligngpt.processing.training_preprocess import collate, preprocess_sample
from aligngpt.training.builder import ModelSpec, build_model, save_stage1
from aligngpt.training.params import TrainableChoice, set_trainable

from .tiny_backbones import FAMILIES, TOWERS, build_lm, build_tower

COMBOS = [(f, t) for f in FAMILIES for t in TOWERS]
CAPTIONS = [
    [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "a red square above a blue circle"}],
    [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "the cat sits on the mat"}],
]
CHATS = [
    [{"from": "human", "value": "what colour is the square?\n<image>"}, {"from": "gpt", "value": "the answer is blue"}],
    [{"from": "human", "value": "<image>\ndescribe the image"}, {"from": "gpt", "value": "yes"},
     {"from": "human", "value": "how many shapes are there?"}, {"from": "gpt", "value": "three"}],
]
QUESTIONS = ["what colour is the square?", "how many shapes are there? describe the image", "yes"]


def _images(n):
    colours = [(200, 30, 40), (20, 160, 220), (90, 200, 60)]
    return [Image.new("RGB", (20 + 4 * i, 16), colours[i % 3]) for i in range(n)]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tensors this small run fastest on one thread (no pool wake-ups on a busy machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def parts(tmp_path_factory, one_thread):
    root = tmp_path_factory.mktemp("backbones")
    lms = {f: build_lm(f, root / f"lm-{f}") for f in FAMILIES}
    towers = {t: build_tower(t, root / f"tower-{t}") for t in TOWERS}
    return root, lms, towers


def _train(model, processor, conversations, template, stage, lr):
    examples = [preprocess_sample(c, processor.tokenizer, template, has_image=True) for c in conversations]
    ids, labels, mask = collate(examples, processor.tokenizer.pad_token_id)
    pixels = processor.preprocess_images(_images(len(conversations)))
    extra = {"align_ids": torch.tensor([1, 5])} if stage == "pretrain" else {}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    model.train()
    for _ in range(20):
        loss = model(input_ids=ids, attention_mask=mask, images=pixels, labels=labels, **extra).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    model.eval()
    return losses


@pytest.fixture(scope="module", params=COMBOS, ids=[f"{f}-{t}" for f, t in COMBOS])
def trained(request, parts):
    """Stage 1 then stage 2 on one family x tower; the saved checkpoint and the reloaded model."""
    family, tower = request.param
    root, lms, towers = parts
    torch.manual_seed(0)
    model, processor = build_model(ModelSpec(base=lms[family], vision_tower=towers[tower], stage="pretrain"))
    set_trainable(model, TrainableChoice("pretrain"))
    pretrain = _train(model, processor, CAPTIONS, "plain", "pretrain", lr=1e-2)
    stage1 = save_stage1(model, root / f"stage1-{family}-{tower}")
    template = FAMILIES[family]["template"]
    model, processor = build_model(ModelSpec(base=lms[family], vision_tower=towers[tower], stage="finetune",
                                             pretrain_mm_mlp_align=stage1, conv_template=template))
    set_trainable(model, TrainableChoice("finetune"))
    finetune = _train(model, processor, CHATS, template, "finetune", lr=3e-3)
    folder = root / f"ckpt-{family}-{tower}"
    aligngpt.save_pretrained(model, processor, folder)
    loaded, loaded_processor = aligngpt.load_pretrained(folder, dtype=torch.float32)
    return dict(family=family, tower=tower, model=model, processor=processor, loaded=loaded,
                loaded_processor=loaded_processor, pretrain=pretrain, finetune=finetune)


def test_pretrain_and_finetune_losses_fall(trained):
    for stage in ("pretrain", "finetune"):
        losses = trained[stage]
        assert all(torch.isfinite(torch.tensor(losses)))
        assert losses[-1] < losses[0], (stage, losses)


def test_save_load_round_trip_is_bit_identical(trained):
    model, loaded = trained["model"], trained["loaded"]
    ours, theirs = model.state_dict(), loaded.state_dict()
    assert sorted(ours) == sorted(theirs)
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert loaded.config.text_config == model.config.text_config or model.config.text_config is None
    assert loaded.config.alignment_anchor == model.config.alignment_anchor
    processor = trained["loaded_processor"]
    batch = processor([processor.build_prompt(QUESTIONS[0], True)], _images(1))
    with torch.no_grad():
        a, b = model(**batch), loaded(**batch)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.alignment_weights, b.alignment_weights)


def test_forward_layout_follows_tower_and_anchor(trained):
    model, processor = trained["loaded"], trained["loaded_processor"]
    n_patches = 16  # 16x16 images, 4x4 patches; CLIP's CLS is dropped, SigLIP has none
    assert model.config.num_image_tokens == n_patches
    assert model.gated_weight_layer.mlp[0].in_features == n_patches  # the gate's width follows the tower
    assert processor.tokenizer.adds_bos == (trained["family"] not in ("qwen2", "phi3"))
    assert model.config.alignment_anchor == ("after_bos" if processor.tokenizer.adds_bos else "start")
    assert processor.template == FAMILIES[trained["family"]]["template"]  # --conv-mode auto
    prompt = processor.build_prompt(QUESTIONS[0], True)
    batch = processor([prompt], _images(1))
    n_text = batch["input_ids"].shape[1] - 1
    with torch.no_grad():
        out = model(**batch)
        mb, _ = model.prepare_multimodal_inputs(batch["input_ids"], batch["attention_mask"], batch["images"],
                                                align_mode="fixed:3")
    assert out.logits.shape == (1, n_text + n_patches + 1, model.config.vocab_size)
    assert out.alignment_weights.shape == (1, model.config.n_indicators - 1)
    slot = 1 if model.config.alignment_anchor == "after_bos" else 0
    assert mb.indicator_index.tolist() == [slot]
    torch.testing.assert_close(mb.inputs_embeds[0, slot], model.align_indicators.indicator_embs[3], rtol=0, atol=0)


def test_batched_generation_equals_batch_one(trained):
    model, processor = trained["loaded"], trained["loaded_processor"]
    prompts = [processor.build_prompt(q, has_image=i < 2) for i, q in enumerate(QUESTIONS)]
    images = _images(2) + [None]
    batch = processor(prompts, images)  # left padding, two image rows and a text-only row
    assert int(batch["attention_mask"].sum(1).min()) < batch["input_ids"].shape[1]
    together = model.generate(**batch, max_new_tokens=8)
    for row, (prompt, image) in enumerate(zip(prompts, images)):
        alone = model.generate(**processor([prompt], [image]), max_new_tokens=8)[0].tolist()
        assert together[row, : len(alone)].tolist() == alone, (row, together[row].tolist(), alone)
