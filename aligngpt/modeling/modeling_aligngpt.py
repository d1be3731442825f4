"""``AlignGPTForCausalLM``: a decoder LM + a CLIP/SigLIP tower + projector + alignment levels and gate.

The LM is Llama for released checkpoints (flat config) and any ``AutoModel`` decoder named by
``config.text_config`` otherwise (Qwen2, Mistral, Phi3, Gemma2, Llama-3, ...); the tower is CLIP
or SigLIP by the vision config's ``model_type``. Module names follow the released checkpoints (``model``, ``lm_head``, ``vision_tower``,
``mm_projector``, ``align_indicators``, ``gated_weight_layer`` all at the top level) so their
state dicts load without renaming. Semantics follow the reference implementation
(docs/reference-code.md, sections 3-5): one alignment vector right after each row's BOS, a gate
computed once at prefill from the projected image tokens and the mean prompt word embedding.
Where the tokenizer has no BOS the slot goes at position 0 instead (``config.alignment_anchor``).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoModel, LlamaModel, PreTrainedModel
from transformers.utils import ModelOutput

from ..constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from .alignment import AlignIndicator, GatedWeightLayer
from .configuration import AlignGPTConfig, parse_align_mode
from .multimodal_inputs import (
    first_image_features,
    gate_text_statistics,
    plan_layout,
    scatter_sequence,
)
from .projector import build_projector
from .reserved_cache import reserved_cache
from .vision import VisionTower

# transformers 5.x renamed the cache argument from ``past_key_values`` to ``cache`` mid-series.
_CACHE_KWARG = "cache" if "cache" in inspect.signature(LlamaModel.forward).parameters else "past_key_values"


@dataclass
class AlignGPTOutput(ModelOutput):
    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    cache: object | None = None
    alignment_weights: torch.Tensor | None = None
    """Gate softmax weights [B, N-1] (NaN rows for text-only samples); None when no gate ran."""
    attention_mask: torch.Tensor | None = None
    """Mask over the sequence the LM saw (after image expansion and the alignment slot)."""
    position_ids: torch.Tensor | None = None


class AlignGPTPreTrainedModel(PreTrainedModel):
    config_class = AlignGPTConfig
    base_model_prefix = "model"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LlamaDecoderLayer", "CLIPEncoderLayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _keys_to_ignore_on_load_unexpected = [r"rotary_emb\.inv_freq"]
    # Tied only where the LM's config says so (Gemma, small Qwen2): transformers reads
    # ``get_text_config().tie_word_embeddings``.
    _tied_weights_keys = {"lm_head.weight": "model.embed_tokens.weight"}

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        std = getattr(self.config, "initializer_range", 0.02)
        if isinstance(module, AlignIndicator):
            nn.init.xavier_uniform_(module.indicator_embs)
        elif isinstance(module, GatedWeightLayer):
            for layer in module.mlp:
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()  # nn.Linear default init, as the reference gate
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif hasattr(module, "weight") and module.__class__.__name__.endswith("RMSNorm"):
            nn.init.ones_(module.weight)


class AlignGPTForCausalLM(AlignGPTPreTrainedModel):
    # Our loss is the plain per-batch mean (as transformers 4.31); the Trainer must not pass
    # num_items_in_batch and rescale it.
    accepts_loss_kwargs = False

    def __init__(self, config: AlignGPTConfig):
        requested_attn = config._attn_implementation_internal
        super().__init__(config)
        self.model = build_language_model(config, requested_attn)
        self._no_split_modules = list(getattr(self.model, "_no_split_modules", None) or ["LlamaDecoderLayer"])
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.logit_softcap: float | None = getattr(config.get_text_config(), "final_logit_softcapping", None)
        """Gemma2's final logit soft-capping (its ForCausalLM head applies it; so do we)."""
        self.vision_tower: VisionTower | None = None
        self.mm_projector: nn.Module | None = None
        self.align_indicators: AlignIndicator | None = None
        self.gated_weight_layer: GatedWeightLayer | None = None
        if config.vision_config is not None:
            self._build_multimodal(config)
        self.post_init()

    # ------------------------------------------------------------------ construction
    def _build_multimodal(self, config: AlignGPTConfig) -> None:
        self.vision_tower = VisionTower(
            config.vision_config, config.mm_vision_select_layer, config.mm_vision_select_feature
        )
        self._no_split_modules.append(self.vision_tower.vision_tower.vision_model.encoder.layers[0].__class__.__name__)
        if config.mm_hidden_size is None:
            config.mm_hidden_size = self.vision_tower.hidden_size
        if config.num_image_tokens is None:
            config.num_image_tokens = self.vision_tower.num_patches
        self.mm_projector = build_projector(config.mm_projector_type, config.mm_hidden_size, config.hidden_size)
        if config.use_alignment:
            self.align_indicators = AlignIndicator(config.n_indicators, config.hidden_size)
            self.gated_weight_layer = GatedWeightLayer(
                config.num_image_tokens, config.n_indicators - 1, config.gate_hidden_size
            )

    def get_input_embeddings(self) -> nn.Module:
        return self.model.embed_tokens

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.model.embed_tokens = value

    def get_output_embeddings(self) -> nn.Module:
        return self.lm_head

    # ------------------------------------------------------------------ pieces
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        if self.vision_tower is None:
            raise ValueError("this model has no vision tower; it cannot take images")
        dtype = self.mm_projector_dtype
        feats = self.vision_tower(images.to(dtype))
        return self.mm_projector(feats)

    @property
    def mm_projector_dtype(self) -> torch.dtype:
        params = list(self.mm_projector.parameters()) if self.mm_projector is not None else []
        return params[0].dtype if params else self.model.embed_tokens.weight.dtype

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.lm_head(hidden).float()
        if self.logit_softcap:
            logits = torch.tanh(logits / self.logit_softcap) * self.logit_softcap
        return logits

    def _resolve_mode(self, align_mode: str | None) -> tuple[str, int | None]:
        mode = align_mode or self.config.align_mode
        if not self.config.use_alignment or self.align_indicators is None:
            if mode not in ("none", None) and align_mode is not None:
                raise ValueError(f"align_mode {mode!r} needs alignment embeddings; this checkpoint has none")
            return "none", None
        return parse_align_mode(mode, self.config.n_indicators)

    def _lm(self, **kwargs):
        cache = kwargs.pop("cache", None)
        kwargs[_CACHE_KWARG] = cache
        out = self.model(**kwargs)
        return out.last_hidden_state, getattr(out, _CACHE_KWARG, None)

    def prepare_multimodal_inputs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        images: torch.Tensor | None,
        labels: torch.Tensor | None = None,
        align_ids: torch.Tensor | None = None,
        align_mode: str | None = None,
        padding_side: str | None = None,
    ):
        """Embeddings, mask, positions and labels of the sequence the LM sees, plus gate weights."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)  # the reference crashes here (quirk 11)
        if padding_side is None:
            padding_side = _infer_padding_side(attention_mask)
        kind, level = self._resolve_mode(align_mode)
        with_slot = align_ids is not None or kind != "none"
        if align_ids is not None and self.align_indicators is None:
            raise ValueError("align_ids given but this checkpoint has no alignment embeddings")

        n_placeholders = int((input_ids == IMAGE_TOKEN_INDEX).sum().item())
        image_features = None
        if n_placeholders:
            if images is None:
                raise ValueError(f"the batch has {n_placeholders} <image> placeholders but no images")
            if images.shape[0] != n_placeholders and images.shape[0] == input_ids.shape[0]:
                # Reference collators stack a (dummy) image for every row, text-only rows included.
                images = images[(input_ids == IMAGE_TOKEN_INDEX).any(dim=1)]
            image_features = self.encode_images(images)
        num_image_tokens = self.config.num_image_tokens or 0
        layout = plan_layout(
            input_ids,
            attention_mask,
            num_image_tokens,
            with_slot,
            self.config.tokenizer_model_max_length,
            padding_side,
            anchor=self.config.alignment_anchor,
        )
        text_embeds = self.model.embed_tokens(input_ids.clamp(min=0))
        batch = input_ids.shape[0]
        weights = None
        slot_vectors = None
        if with_slot and bool(layout.has_slot.any()):
            if align_ids is not None:
                slot_vectors = self.align_indicators.lookup(align_ids.to(text_embeds.device).long())
            else:
                if kind in ("gated", "local"):
                    feats = first_image_features(layout, image_features)
                    tsum, tcount = gate_text_statistics(
                        layout, text_embeds, labels, prompt_only=self.config.gate_text == "prompt"
                    )
                    weights = self.gated_weight_layer(feats, tsum, tcount)
                slot_vectors = self.align_indicators.compose(kind, weights, batch, level)
        mb = scatter_sequence(layout, text_embeds, image_features, slot_vectors, labels)
        if weights is not None:
            weights = weights.masked_fill(~layout.has_slot[:, None], float("nan"))
        return mb, weights

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        images: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        align_ids: torch.Tensor | None = None,
        align_mode: str | None = None,
        position_ids: torch.Tensor | None = None,
        cache=None,
        use_cache: bool | None = None,
        inputs_embeds: torch.Tensor | None = None,
        padding_side: str | None = None,
        logits_to_keep: int = 0,
        **kwargs,
    ) -> AlignGPTOutput:
        if "past_key_values" in kwargs:
            cache = kwargs.pop("past_key_values")
        kwargs.pop("return_dict", None)
        kwargs.pop("num_items_in_batch", None)
        weights = None
        if cache is not None and cache.get_seq_length() > 0 or inputs_embeds is not None:
            # Decode step (or caller-built embeddings): a plain Llama step.
            hidden, cache = self._lm(
                input_ids=None if inputs_embeds is not None else input_ids,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                cache=cache,
                use_cache=use_cache,
                **kwargs,
            )
            new_labels = labels
            new_mask, new_pos = attention_mask, position_ids
        else:
            mb, weights = self.prepare_multimodal_inputs(
                input_ids, attention_mask, images, labels, align_ids, align_mode, padding_side
            )
            hidden, cache = self._lm(
                inputs_embeds=mb.inputs_embeds,
                attention_mask=mb.attention_mask,
                position_ids=mb.position_ids,
                cache=cache,
                use_cache=use_cache,
                **kwargs,
            )
            new_labels, new_mask, new_pos = mb.labels, mb.attention_mask, mb.position_ids
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        logits = self._logits(hidden)
        loss = None
        if new_labels is not None:
            loss = causal_lm_loss(logits, new_labels)
        return AlignGPTOutput(
            loss=loss,
            logits=logits,
            cache=cache,
            alignment_weights=weights,
            attention_mask=new_mask,
            position_ids=new_pos,
        )

    # ------------------------------------------------------------------ generation
    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        images: torch.Tensor | None = None,
        max_new_tokens: int = 16,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float | None = None,
        eos_token_id: int | list[int] | None = None,
        pad_token_id: int | None = None,
        align_mode: str | None = None,
        generator: torch.Generator | None = None,
        return_dict: bool = False,
        **unused,
    ):
        """Greedy or sampled decoding with a KV cache; returns only the new tokens.

        Any input padding is accepted; finished rows are padded with ``pad_token_id`` after their
        EOS (any of them, when ``eos_token_id`` is a list: chat models stop at end-of-turn too), and
        decoding stops when every row has finished or the budget is spent. Greedy output per row is
        independent of the other rows in the batch.
        """
        eos = self.config.eos_token_id if eos_token_id is None else eos_token_id
        eos_ids = [] if eos is None else [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]
        pad = self.config.pad_token_id if pad_token_id is None else pad_token_id
        pad = 0 if pad is None else pad
        if do_sample and temperature <= 0:
            do_sample = False
        # Prefill right-padded with no padding mask: under causal attention a real token only
        # sees earlier real tokens, so pads at the end cannot change it, and every row runs the
        # same unmasked causal kernel a batch of one runs. Pads are masked from decode on.
        mb, weights = self.prepare_multimodal_inputs(
            input_ids, attention_mask, images, None, None, align_mode, padding_side="right"
        )
        hidden, cache = self._lm(
            inputs_embeds=mb.inputs_embeds,
            attention_mask=None,
            position_ids=mb.position_ids,
            cache=reserved_cache(self.config, reserve=max(0, max_new_tokens - 1)),
            use_cache=True,
        )
        batch = input_ids.shape[0]
        rows = torch.arange(batch, device=hidden.device)
        logits = self._logits(hidden[rows, mb.lengths - 1])
        mask = mb.attention_mask
        next_pos = mb.lengths[:, None].clone()
        finished = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        produced: list[torch.Tensor] = []
        for step in range(max_new_tokens):
            token = _choose(logits, do_sample, temperature, top_p, generator)
            token = torch.where(finished, torch.full_like(token, pad), token)
            produced.append(token)
            if eos_ids:
                finished |= torch.isin(token, torch.tensor(eos_ids, device=token.device))
            if bool(finished.all()) or step == max_new_tokens - 1:
                break
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            hidden, cache = self._lm(
                input_ids=token[:, None],
                attention_mask=mask,
                position_ids=next_pos,
                cache=cache,
                use_cache=True,
            )
            next_pos = next_pos + 1
            logits = self._logits(hidden[:, -1])
        sequences = torch.stack(produced, dim=1) if produced else input_ids.new_zeros(batch, 0)
        if return_dict:
            return GenerationOutput(sequences=sequences, alignment_weights=weights)
        return sequences


@dataclass
class GenerationOutput(ModelOutput):
    sequences: torch.Tensor | None = None
    alignment_weights: torch.Tensor | None = None


def build_language_model(config: AlignGPTConfig, attn_implementation: str | None = None) -> nn.Module:
    """The decoder without its head: ``LlamaModel`` for flat (released) configs, else ``AutoModel``."""
    if config.text_config is None:
        return LlamaModel(config)
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    return AutoModel.from_config(config.get_text_config(), **kwargs)


def _choose(logits: torch.Tensor, do_sample: bool, temperature: float, top_p: float | None, generator) -> torch.Tensor:
    if not do_sample:
        return logits.argmax(dim=-1)
    scores = logits / max(temperature, 1e-6)
    probs = torch.softmax(scores, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        cumulative = sorted_probs.cumsum(dim=-1)
        drop = cumulative - sorted_probs > top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _infer_padding_side(attention_mask: torch.Tensor) -> str:
    """Left unless the input is visibly right-padded (a row ends in padding)."""
    if bool((attention_mask[:, -1] == 0).any()):
        return "right"
    return "left"


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over non-ignored labels (LlamaForCausalLM's loss)."""
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1])
    shift_labels = labels[:, 1:].reshape(-1).to(shift_logits.device)
    return F.cross_entropy(shift_logits.float(), shift_labels, ignore_index=IGNORE_INDEX)
