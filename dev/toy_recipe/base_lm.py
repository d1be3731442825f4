"""The stand-in for Vicuna: a tiny Llama, briefly pretrained on toy text.

The 7B recipe starts from Vicuna-7B-v1.5, a chat-tuned LLM that already speaks the language and
the ``vicuna_v1`` chat format. Our stand-in gets the same two things cheaply: causal language
modelling on the toy captions and on the instruction conversations rendered as text-only chats
(system prompt, ``USER:`` / ``ASSISTANT:``, answers ending in ``</s>``; the ``<image>`` tag is
dropped, so visual questions only teach the format and answer priors). Documents are tokenised
with the recipe's sentencepiece model, joined and cut into fixed-length blocks (the usual
LM-pretraining packing). The folder it writes is what ``aligngpt-train --model`` expects of a
Llama/Vicuna checkpoint: ``config.json``, ``model.safetensors``, ``tokenizer.model`` and
``tokenizer_config.json``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from aligngpt.processing import LlamaSPTokenizer, load_tokenizer
from aligngpt.processing.training_preprocess import TrainingExample, collate

from .backbones import copy_tokenizer
from .drills import DrillRecipe, train_drills
from .loop import adamw, optimizer_step, seeded_batches, train_device, warmup_cosine

log = logging.getLogger(__name__)


@dataclass
class LMRecipe:
    hidden_size: int = 128
    intermediate_size: int = 352
    num_layers: int = 4
    num_heads: int = 4
    max_position_embeddings: int = 1024
    block_size: int = 384
    batch_size: int = 32
    steps: int = 300
    learning_rate: float = 2e-3
    weight_decay: float = 0.0
    warmup_steps: int = 30
    seed: int = 0


def build_lm(recipe: LMRecipe, tokenizer, family: str = "llama"):
    """The untrained base LM: ``llama`` (the bundled model's) or ``qwen2`` (the qwen2-siglip backbone)."""
    if family == "llama":
        return build_llama(recipe, tokenizer)
    if family != "qwen2":
        raise ValueError(f"unknown toy LM family {family!r} (llama, qwen2)")
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=recipe.hidden_size, intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers, num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_heads, max_position_embeddings=recipe.max_position_embeddings,
        bos_token_id=None, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False, initializer_range=0.02, rms_norm_eps=1e-5,
    )
    torch.manual_seed(recipe.seed)
    return Qwen2ForCausalLM(config)


def build_llama(recipe: LMRecipe, tokenizer: LlamaSPTokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=recipe.hidden_size, intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers, num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_heads, max_position_embeddings=recipe.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False, initializer_range=0.02, rms_norm_eps=1e-5,
    )
    torch.manual_seed(recipe.seed)
    return LlamaForCausalLM(config)


def plain_example(text: str, tokenizer: LlamaSPTokenizer) -> TrainingExample:
    """``<s> text </s>``, every token a target (language modelling)."""
    ids = tokenizer.encode(text)
    if ids[-1] != tokenizer.eos_token_id:
        ids.append(tokenizer.eos_token_id)
    return TrainingExample(ids, list(ids))


def _lr_at(step: int, recipe: LMRecipe) -> float:
    """Warm-up, then cosine down to a tenth of the peak."""
    return warmup_cosine(step, peak=recipe.learning_rate, warmup=recipe.warmup_steps, total=recipe.steps, floor=0.1)


def train_base_lm(examples: Sequence[TrainingExample], tokenizer_dir: Path, out_dir: Path,
                  recipe: Optional[LMRecipe] = None, family: str = "llama",
                  drills: Optional[DrillRecipe] = None, template: str = "vicuna_v1") -> dict:
    """Train the tiny Llama on ``examples`` (one sequence each, right-padded batches) and save it.

    With ``drills``, the drills of :mod:`.drills` (their own optimiser and schedule) come first,
    then the toy text, or after the text when ``drills.after_text``. Batches are drawn by a seeded permutation; sequences are cut to
    ``recipe.block_size``.
    """
    recipe = recipe or LMRecipe()
    started = time.time()
    tokenizer = load_tokenizer(tokenizer_dir)
    device = torch.device(train_device())
    model = build_lm(recipe, tokenizer, family).to(device)
    drills_first = drills is not None and not drills.after_text
    drill_curve = train_drills(model, tokenizer, drills, recipe.seed, template) if drills_first else []
    opt = adamw(model.parameters(), recipe.learning_rate, recipe.weight_decay)
    batches = seeded_batches(len(examples), recipe.batch_size, torch.Generator().manual_seed(recipe.seed))
    model.train()
    losses = []
    n_tokens = 0
    for step, indices in zip(range(recipe.steps), batches):
        ids, labels, mask = collate([examples[i] for i in indices], tokenizer.pad_token_id, recipe.block_size)
        n_tokens += int(mask.sum())
        loss = model(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device)).loss
        optimizer_step(opt, loss, _lr_at(step, recipe), model.parameters())
        losses.append(loss.item())
        if step % 50 == 0 or step == recipe.steps - 1:
            log.info("base LM step %d/%d loss %.4f", step, recipe.steps, losses[-1])
    if drills is not None and drills.after_text:
        drill_curve = train_drills(model, tokenizer, drills, recipe.seed, template)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.cpu().save_pretrained(out_dir)
    copy_tokenizer(Path(tokenizer_dir), out_dir)
    report = {"recipe": dataclasses.asdict(recipe), "examples": len(examples), "tokens_seen": n_tokens,
              "final_loss": sum(losses[-20:]) / min(20, len(losses)), "seconds": round(time.time() - started, 1)}
    if drill_curve:
        report["drills"] = {"recipe": dataclasses.asdict(drills), "curve": drill_curve}
    (out_dir / "toy_lm_training.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
