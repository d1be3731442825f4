"""Tiny random stand-ins for the recipe's inputs, so every command runs on a CPU in minutes.

``aligngpt-train toy-setup DIR`` writes, in the real on-disk formats:

* ``vicuna-tiny/``: a Llama checkpoint folder (config.json + safetensors + the bundled LLaMA
  sentencepiece ``tokenizer.model``), random weights, standing in for ``lmsys/vicuna-7b-v1.5``;
* ``clip-vision-tiny/``: a ``CLIPVisionModel`` folder + ``preprocessor_config.json``, standing in
  for ``openai/clip-vit-large-patch14-336``;
* ``clip-scorer/``: a full ``CLIPModel`` with a ``CLIPTokenizer`` (``vocab.json`` + ``merges.txt``,
  letters only, no merges) for ``score-alignment``;
* ``data/``: the toy caption pairs (558K format) and instruction mix (mix665k format) of
  :mod:`aligngpt.toy`.

Random models learn little; the point is to exercise the exact commands of the real recipe.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from aligngpt.processing.image import CLIP_MEAN, CLIP_STD


def toy_tokenizer_model() -> Path:
    """The LLaMA-style sentencepiece model of the bundled toy checkpoint (600 pieces)."""
    from aligngpt.harness.toy import toy_model_dir

    return toy_model_dir() / "tokenizer.model"


def _preprocessor(image_size: int) -> dict:
    return {
        "crop_size": {"height": image_size, "width": image_size}, "do_center_crop": True, "do_convert_rgb": True,
        "do_normalize": True, "do_rescale": True, "do_resize": True, "image_mean": list(CLIP_MEAN),
        "image_std": list(CLIP_STD), "image_processor_type": "CLIPImageProcessor", "resample": 3,
        "rescale_factor": 1 / 255, "size": {"shortest_edge": image_size},
    }


def write_base_llm(folder: Path, tokenizer_model: Path | None = None, *, hidden: int = 64, layers: int = 2,
                   vocab_size: int | None = None, seed: int = 0) -> Path:
    """A random Llama checkpoint folder with a sentencepiece tokenizer (the stage inputs' LLM);
    ``vocab_size`` defaults to the tokenizer's piece count."""
    import sentencepiece as spm
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    tokenizer_model = Path(tokenizer_model or toy_tokenizer_model())
    if vocab_size is None:
        vocab_size = spm.SentencePieceProcessor(model_file=str(tokenizer_model)).get_piece_size()
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=1024,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False, initializer_range=0.1,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    (folder / "tokenizer.model").write_bytes(tokenizer_model.read_bytes())
    return folder


def write_vision_tower(folder: Path, *, image_size: int = 48, patch: int = 8, hidden: int = 32, layers: int = 3,
                       seed: int = 1) -> Path:
    """A random ``CLIPVisionModel`` folder with its preprocessing config."""
    from transformers import CLIPVisionConfig, CLIPVisionModel

    folder = Path(folder)
    torch.manual_seed(seed)
    config = CLIPVisionConfig(
        hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers, num_attention_heads=2,
        image_size=image_size, patch_size=patch, projection_dim=hidden, hidden_act="quick_gelu",
    )
    CLIPVisionModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(_preprocessor(image_size), indent=2) + "\n")
    return folder


def write_clip(folder: Path, *, image_size: int = 48, patch: int = 8, seed: int = 5) -> Path:
    """A random ``CLIPModel`` + a letters-only BPE ``CLIPTokenizer`` (vocab.json, merges.txt)."""
    from transformers import CLIPConfig, CLIPModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {c: i for i, c in enumerate(letters)}
    vocab.update({c + "</w>": len(letters) + i for i, c in enumerate(letters)})
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    eos = vocab["<|endoftext|>"]
    torch.manual_seed(seed)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=32, bos_token_id=eos - 1,
                         eos_token_id=eos, pad_token_id=eos),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                           image_size=image_size, patch_size=patch),
        projection_dim=8,
    )
    CLIPModel(config).save_pretrained(folder)
    (folder / "preprocessor_config.json").write_text(json.dumps(_preprocessor(image_size), indent=2) + "\n")
    return folder


def setup_toy(root: Path, *, n_pretrain: int = 512, n_instruct: int = 512, seed: int = 0) -> dict[str, str]:
    """Write every input of the toy recipe under ``root``; returns the paths by role."""
    from aligngpt.toy import write_instruct, write_pretrain

    root = Path(root)
    data = root / "data"
    pre = write_pretrain(data, seed=seed, n=n_pretrain)
    ins = write_instruct(data, seed=seed, n=n_instruct)
    return {
        "base": str(write_base_llm(root / "vicuna-tiny")),
        "vision_tower": str(write_vision_tower(root / "clip-vision-tiny")),
        "clip": str(write_clip(root / "clip-scorer")),
        "pretrain_json": str(data / pre["json"]),
        "pretrain_images": str(data / pre["image_folder"]),
        "instruct_json": str(data / ins["json"]),
        "instruct_images": str(data / ins["image_folder"]),
    }
