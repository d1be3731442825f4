"""Toy-recipe backbones: ``llama-clip`` (the bundled model's) and ``qwen2-siglip``.

``qwen2-siglip`` swaps both ends for the shapes of current model families, at the same sizes:

* tokenizer: a byte-level BPE (``tokenizers``) trained on the same toy text, Qwen2-shaped: no BOS,
  ``<|im_end|>`` as EOS, ``<|endoftext|>`` as pad, ``<|im_start|>``, and the ChatML chat template;
* base LM: ``Qwen2ForCausalLM`` (same width, depth and heads as the tiny Llama), pretrained by the
  same loop on the same text, conversations rendered with the ``qwen2`` template;
* vision tower: a ``SiglipVisionModel`` (no CLS token, no pre-layernorm, all patches kept). It is
  not trained with SigLIP's sigmoid loss: it takes the trained toy CLIP's vision weights where the
  two architectures agree (patch embedding, patch position embeddings, every encoder layer,
  post-layernorm; CLIP's CLS token and pre-layernorm have no SigLIP counterpart and are dropped).
  The toy CLIP itself still scores the pretraining pairs (AlignGPT's levels are CLIP similarities
  whatever the tower).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Iterable

BACKBONES = ("llama-clip", "qwen2-siglip")
#: Stage-2 conversation template per backbone (``aligngpt-train finetune --version``).
CHAT_TEMPLATES = {"llama-clip": "vicuna_v1", "qwen2-siglip": "qwen2"}
QWEN2_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
#: Qwen2-Instruct's ChatML chat template (Qwen/Qwen2-7B-Instruct tokenizer_config.json), in Jinja.
CHATML_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "chat_template.jinja")


def check_backbone(name: str) -> str:
    if name not in BACKBONES:
        raise ValueError(f"unknown toy backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    return name


def train_chatml_bpe(sentences: Iterable[str], out_dir: Path, vocab_size: int) -> Path:
    """A Qwen2-shaped byte-level BPE tokenizer on the toy text, saved with its chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(QWEN2_SPECIALS), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(sentences), trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=["<|im_start|>"])
    fast.chat_template = CHATML_TEMPLATE
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out_dir))
    return out_dir


def copy_tokenizer(src: Path, dst: Path) -> None:
    for name in TOKENIZER_FILES:
        if (Path(src) / name).is_file():
            shutil.copyfile(Path(src) / name, Path(dst) / name)


def export_siglip_tower(clip_dir: Path, out_dir: Path) -> Path:
    """The toy CLIP's vision half moved into a ``SiglipVisionModel`` folder (see the module doc)."""
    import torch
    from transformers import CLIPModel, SiglipVisionConfig, SiglipVisionModel

    clip = CLIPModel.from_pretrained(str(clip_dir)).eval()
    vc = clip.config.vision_config
    config = SiglipVisionConfig(hidden_size=vc.hidden_size, intermediate_size=vc.intermediate_size,
                                num_hidden_layers=vc.num_hidden_layers, num_attention_heads=vc.num_attention_heads,
                                image_size=vc.image_size, patch_size=vc.patch_size, hidden_act=vc.hidden_act,
                                layer_norm_eps=vc.layer_norm_eps, vision_use_head=False)
    siglip = SiglipVisionModel(config).eval()
    src = clip.vision_model
    dst = siglip.vision_model if hasattr(siglip, "vision_model") else siglip
    with torch.no_grad():
        dst.embeddings.patch_embedding.weight.copy_(src.embeddings.patch_embedding.weight)
        dst.embeddings.patch_embedding.bias.zero_()  # CLIP's patch convolution has no bias
        dst.embeddings.position_embedding.weight.copy_(src.embeddings.position_embedding.weight[1:])  # no CLS
        dst.encoder.load_state_dict(src.encoder.state_dict())
        dst.post_layernorm.load_state_dict(src.post_layernorm.state_dict())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    siglip.save_pretrained(str(out_dir))
    shutil.copyfile(Path(clip_dir) / "preprocessor_config.json", out_dir / "preprocessor_config.json")
    (out_dir / "toy_tower.json").write_text(json.dumps({"from": str(clip_dir), "kind": "siglip (CLIP transplant)"}) + "\n")
    return out_dir
