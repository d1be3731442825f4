"""``AlignGPTConfig``: the released ``config.json`` fields plus the few we add.

Released configs carry no ``n_indicators`` and no alignment mode (the reference hard-codes 8
levels and decides the mode by a "stage" set after loading); both become config fields here with
defaults that reproduce the released behaviour.
"""
from __future__ import annotations

from transformers import LlamaConfig

ALIGN_MODES = ("gated", "local", "global", "average", "none")


def parse_align_mode(mode: str, n_indicators: int) -> tuple[str, int | None]:
    """Split ``fixed:K`` into ("fixed", K); validate the others. Returns (kind, K)."""
    if not isinstance(mode, str):
        raise ValueError(f"align_mode must be a string, got {mode!r}")
    if mode.startswith("fixed:"):
        try:
            level = int(mode.split(":", 1)[1])
        except ValueError:
            raise ValueError(f"align_mode {mode!r}: K in fixed:K must be an integer") from None
        if not 0 <= level < n_indicators:
            raise ValueError(f"align_mode {mode!r}: K must be in 0..{n_indicators - 1}")
        return "fixed", level
    if mode not in ALIGN_MODES:
        raise ValueError(f"unknown align_mode {mode!r}; expected one of {', '.join(ALIGN_MODES)} or fixed:K")
    return mode, None


class AlignGPTConfig(LlamaConfig):
    """Llama fields + the ``mm_*`` fields of the released checkpoints + alignment settings."""

    model_type = "aligngpt"

    # --- fields written by the reference training code (reference-code.md §1.4) ---
    mm_vision_tower: str | None = None
    mm_hidden_size: int | None = None
    mm_projector_type: str = "linear"
    mm_vision_select_layer: int = -2
    mm_vision_select_feature: str = "patch"
    use_mm_proj: bool = True
    image_aspect_ratio: str = "square"
    tokenizer_padding_side: str = "right"
    tokenizer_model_max_length: int | None = None
    mm_use_im_start_end: bool = False
    mm_use_im_patch_token: bool = False

    # --- ours ---
    n_indicators: int = 8
    """Number of alignment levels N (the reference hard-codes 8)."""
    align_mode: str = "gated"
    """Default alignment mode: gated | local | global | average | fixed:K | none."""
    use_alignment: bool = True
    """False for LLaVA-1.5 checkpoints: no alignment embeddings or gate exist."""
    gate_hidden_size: int = 256
    num_image_tokens: int | None = None
    """Patch tokens per image (the gate's input width); derived from the vision config when None."""
    gate_text: str = "all"
    """Which text the gate averages in training: 'all' (reference: answers included) or 'prompt'."""
    vision_config: dict | None = None
    """The CLIP vision config, embedded so our own checkpoints load without the tower folder."""
    image_processor: dict | None = None
    """CLIP preprocessing settings (size, crop, mean, std), embedded for the same reason."""
