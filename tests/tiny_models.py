"""Tiny AlignGPT models built from a config (random weights), for tests that need no checkpoint."""
from __future__ import annotations

import torch

from aligngpt.modeling import AlignGPTConfig, AlignGPTForCausalLM


def tiny_config(**overrides) -> AlignGPTConfig:
    values = dict(
        vocab_size=64,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        mm_vision_tower="tiny-clip",
        mm_hidden_size=8,
        mm_projector_type="mlp2x_gelu",
        vision_config=dict(
            hidden_size=8, intermediate_size=16, num_attention_heads=2, num_hidden_layers=2,
            image_size=8, patch_size=2, hidden_act="quick_gelu", projection_dim=8,
        ),
        image_processor={"size": {"shortest_edge": 8}, "crop_size": {"height": 8, "width": 8}},
        n_indicators=5,
        image_aspect_ratio="pad",
    )
    values.update(overrides)
    return AlignGPTConfig(**values)


def tiny_model(seed: int = 0, **overrides) -> AlignGPTForCausalLM:
    torch.manual_seed(seed)
    model = AlignGPTForCausalLM(tiny_config(**overrides))
    return model.eval()
