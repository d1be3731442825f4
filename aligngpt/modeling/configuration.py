"""``AlignGPTConfig``: the released ``config.json`` fields plus the few we add.

Released configs carry no ``n_indicators`` and no alignment mode (the reference hard-codes 8
levels and decides the mode by a "stage" set after loading); both become config fields here with
defaults that reproduce the released behaviour.

Backbones. Released checkpoints are flat Llama configs: the language model's fields sit at the
top level. Any other decoder (Qwen2, Mistral, Phi3, Gemma2, Llama-3, ...) is described by a
nested ``text_config`` (its own ``config.json``, with ``model_type``) and built with
``AutoModel.from_config``; the top-level Llama fields then only mirror the few values the rest
of the code reads (hidden size, vocabulary, layer count, special ids), kept in sync here.
"""
from __future__ import annotations

from transformers import AutoConfig, LlamaConfig, PretrainedConfig

ALIGN_MODES = ("gated", "local", "global", "average", "none")

ANCHORS = ("after_bos", "start")
"""Where the alignment slot goes in each row: right after the row's first token (its BOS;
released checkpoints and every tokenizer that adds a BOS) or at position 0, before the first
prompt token (tokenizers without a BOS, e.g. Qwen2). The paper does not say; see README
"Backbones"."""

#: Text-config fields mirrored at the top level (what the model code and cache read).
_MIRRORED = ("hidden_size", "vocab_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
             "intermediate_size", "max_position_embeddings", "bos_token_id", "eos_token_id", "pad_token_id",
             "tie_word_embeddings")


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

    # --- fields written by the reference training code (docs/reference-code.md, section 1) ---
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
    text_config: dict | None = None
    """The language model's own config (any ``AutoConfig`` model_type); None: the flat Llama fields."""
    alignment_anchor: str = "after_bos"
    """Alignment slot position: 'after_bos' (released) or 'start' (tokenizers without BOS); see ANCHORS."""
    conv_template: str | None = None
    """The conversation template the model was trained with (``--conv-mode auto`` reads it)."""

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.sync_text_config()

    def sync_text_config(self) -> None:
        """Normalise ``text_config`` to a dict and copy its core fields to the top level."""
        tc = self.text_config
        if tc is None:
            return
        if isinstance(tc, PretrainedConfig):
            tc = tc.to_dict()
        tc = {k: v for k, v in dict(tc).items() if k not in ("transformers_version", "architectures", "_name_or_path")}
        if "model_type" not in tc:
            raise ValueError("text_config needs a model_type (the language model's config.json)")
        self.text_config = tc
        built = self.language_config()
        for name in _MIRRORED:
            if hasattr(built, name):
                setattr(self, name, getattr(built, name))
        if getattr(built, "head_dim", None) is not None:
            self.head_dim = built.head_dim
        if self.alignment_anchor not in ANCHORS:
            raise ValueError(f"alignment_anchor {self.alignment_anchor!r}: expected one of {', '.join(ANCHORS)}")

    def language_config(self) -> PretrainedConfig:
        """The LM's config object: the nested ``text_config``, or this (flat Llama) config itself."""
        if self.text_config is None:
            return self
        fields = dict(self.text_config)
        return AutoConfig.for_model(fields.pop("model_type"), **fields)

    def get_text_config(self, decoder=None, encoder=None) -> PretrainedConfig:
        return self.language_config()
