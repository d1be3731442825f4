"""Tiny, offline, random backbones of the modern families, for the backbone tests.

Each LM folder is what ``AutoModelForCausalLM.save_pretrained`` writes for a tiny random config of
the family, plus a byte-level BPE tokenizer trained here (``tokenizers``; no hub download) whose
special tokens, BOS behaviour and (for qwen2) chat template are shaped like the family's.
Towers are tiny random ``CLIPVisionModel`` / ``SiglipVisionModel`` folders with a preprocessing
config. Sizes are chosen to make the whole matrix run in seconds on two cores.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from dev.toy_recipe.backbones import CHATML_TEMPLATE as CHATML_JINJA

CORPUS = [
    "a red square above a blue circle", "the cat sits on the mat", "what colour is the square?",
    "there are two circles and one triangle", "yes", "no", "the answer is blue", "describe the image",
    "a small green triangle left of a big yellow square", "how many shapes are there? three",
] * 4

FAMILIES: dict[str, dict] = {
    "llama3": dict(model_type="llama", bos="<|begin_of_text|>", eos="<|end_of_text|>",
                   extra=["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"], template="llama3",
                   lm={"rope_theta": 500000.0}),
    "qwen2": dict(model_type="qwen2", bos=None, eos="<|im_end|>", pad="<|endoftext|>",
                  extra=["<|im_start|>"], template="qwen2", chat_template=CHATML_JINJA, lm={}),
    "mistral": dict(model_type="mistral", bos="<s>", eos="</s>", unk="<unk>", extra=[], template="mistral",
                    lm={"sliding_window": None}),
    "phi3": dict(model_type="phi3", bos="<s>", eos="<|endoftext|>", add_bos=False,
                 extra=["<|user|>", "<|assistant|>", "<|end|>", "<|system|>"], template="phi3", lm={}),
    "gemma2": dict(model_type="gemma2", bos="<bos>", eos="<eos>", pad="<pad>",
                   extra=["<start_of_turn>", "<end_of_turn>"], template="gemma",
                   lm={"head_dim": 8, "query_pre_attn_scalar": 8, "sliding_window": 64}),
}
TOWERS = ("clip", "siglip")


def build_tokenizer(family: str, folder: Path):
    """A trained byte-level BPE tokenizer with the family's specials, saved to ``folder``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    spec = FAMILIES[family]
    names = [t for t in (spec.get("bos"), spec["eos"], spec.get("pad"), spec.get("unk")) if t] + spec["extra"]
    specials = list(dict.fromkeys(names))
    tok = Tokenizer(models.BPE(unk_token=spec.get("unk")))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=340, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    bos = spec.get("bos")
    if bos and spec.get("add_bos", True):
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, tok.token_to_id(bos))])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=bos, eos_token=spec["eos"], pad_token=spec.get("pad"),
        unk_token=spec.get("unk"), additional_special_tokens=spec["extra"],
    )
    if spec.get("chat_template"):
        fast.chat_template = spec["chat_template"]
    folder.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(folder))
    return fast


def build_lm(family: str, folder: Path, seed: int = 0) -> Path:
    """A tiny random causal LM of ``family`` with its tokenizer, as a base-model folder."""
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = FAMILIES[family]
    tokenizer = build_tokenizer(family, folder)
    ids = {k: tokenizer.convert_tokens_to_ids(spec[k]) for k in ("bos", "eos", "pad") if spec.get(k)}
    fields = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=len(tokenizer) + 4, max_position_embeddings=256,
                  bos_token_id=ids.get("bos"), eos_token_id=ids["eos"], pad_token_id=ids.get("pad"),
                  tie_word_embeddings=family == "gemma2")
    fields.update(spec["lm"])
    config = AutoConfig.for_model(spec["model_type"], **fields)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    with torch.no_grad():  # a visible spread of logits, so greedy paths are not all ties
        model.get_input_embeddings().weight.normal_(0, 1.0)
    model.save_pretrained(str(folder))
    return folder


def build_tower(kind: str, folder: Path, seed: int = 0) -> Path:
    """A tiny random CLIP (CLS + 16 patches) or SigLIP (16 patches, no CLS) vision tower folder."""
    from transformers import CLIPVisionConfig, CLIPVisionModel, SiglipVisionConfig, SiglipVisionModel

    torch.manual_seed(seed)
    common = dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=3,
                  image_size=16, patch_size=4)
    if kind == "clip":
        model = CLIPVisionModel(CLIPVisionConfig(**common))
        pre = {"size": {"shortest_edge": 16}, "crop_size": {"height": 16, "width": 16}}
    else:
        model = SiglipVisionModel(SiglipVisionConfig(**common))
        pre = {"size": {"height": 16, "width": 16}, "image_mean": [0.5] * 3, "image_std": [0.5] * 3}
    model.save_pretrained(str(folder))
    (folder / "preprocessor_config.json").write_text(json.dumps(pre), encoding="utf-8")
    return folder
