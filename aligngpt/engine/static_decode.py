"""Greedy decoding at fixed shapes, so that a GPU can replay each step as one CUDA graph.

The prefill is the model's own (the same call ``AlignGPTForCausalLM.generate`` makes, into the
reserved cache). Decoding then works on that cache's whole pre-allocated buffers: every step
writes its keys and values in place at one column (``index_copy_`` with a device-side index),
attends over the full buffer under a fixed-shape visibility mask whose new column is switched on
in place, and advances its positions in place. No tensor changes shape or address between steps,
which is what CUDA graph capture needs; on a CPU the same step simply runs eagerly.

The columns a row may see are exactly those the growing-cache path shows it (its own prompt and
the answer tokens so far); the extra columns are masked, so greedy answers are the same tokens.
Only the ``sdpa`` and ``eager`` attention implementations take a 4-D mask this way; others fall
back to ``model.generate``.
"""
from __future__ import annotations

import inspect
import logging
from dataclasses import dataclass

import torch

from ..modeling.reserved_cache import reserved_cache

log = logging.getLogger(__name__)

SUPPORTED_ATTENTION = ("sdpa", "eager")


@dataclass
class StaticGeneration:
    sequences: torch.Tensor
    alignment_weights: torch.Tensor | None
    graph_used: bool = False


class _InPlaceCache:
    """What a decoder layer sees as its cache during a fixed-shape step: ``update`` writes the
    step's keys/values at ``column`` of the layer's buffer and returns the whole buffer."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor], column: torch.Tensor):
        self.keys, self.values, self.column = keys, values, column

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        k, v = self.keys[layer_idx], self.values[layer_idx]
        k.index_copy_(2, self.column, key_states.to(k.dtype))
        v.index_copy_(2, self.column, value_states.to(v.dtype))
        return k, v

    def get_seq_length(self, layer_idx: int = 0) -> int:  # not used by a decoder layer; for safety
        return int(self.column.item())


def supports_static_decode(model) -> bool:
    """True when the LM is a transformers decoder stack whose attention takes a 4-D mask."""
    lm = getattr(model, "model", None)
    needed = ("embed_tokens", "layers", "norm", "rotary_emb")
    return all(hasattr(lm, n) for n in needed) and model.config._attn_implementation in SUPPORTED_ATTENTION


def _cache_kwarg(layer) -> str:
    params = inspect.signature(type(layer).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


class _Stepper:
    """The state of one batch's decode, every tensor allocated once."""

    def __init__(self, model, storage: list[tuple[torch.Tensor, torch.Tensor]], visible: torch.Tensor,
                 positions: torch.Tensor, column: int):
        self.model = model
        lm = model.model
        self.embed, self.layers, self.norm, self.rotary = lm.embed_tokens, lm.layers, lm.norm, lm.rotary_emb
        self.cache = _InPlaceCache([k for k, _ in storage], [v for _, v in storage],
                                   torch.tensor([column], device=visible.device))
        self.visible = visible  # [B, 1, 1, capacity] bool
        self.positions = positions  # [B, 1]
        self.token = torch.zeros(positions.shape[0], dtype=torch.long, device=positions.device)
        self.logits: torch.Tensor | None = None
        self.kwarg = _cache_kwarg(self.layers[0])
        self.eager_attention = model.config._attn_implementation == "eager"
        self.graph = None

    def step(self) -> None:
        """One token for every row: reads ``token``, leaves the next logits in ``logits``."""
        self.visible.index_fill_(3, self.cache.column, True)
        if self.eager_attention:  # eager attention adds its mask to the scores
            dtype = self.cache.keys[0].dtype
            mask = torch.zeros(self.visible.shape, dtype=dtype, device=self.visible.device)
            mask = mask.masked_fill(~self.visible, torch.finfo(dtype).min)
        else:
            mask = self.visible
        hidden = self.embed(self.token[:, None])
        rope = self.rotary(hidden, self.positions)
        for layer in self.layers:
            out = layer(hidden, attention_mask=mask, position_ids=self.positions, position_embeddings=rope,
                        use_cache=True, **{self.kwarg: self.cache})
            hidden = out[0] if isinstance(out, tuple) else out
        logits = self.model.lm_head(self.norm(hidden)[:, -1]).float()
        if self.logits is None:
            self.logits = logits
        else:
            self.logits.copy_(logits)
        self.positions.add_(1)
        self.cache.column.add_(1)

    def warm_up(self, token: torch.Tensor) -> torch.Tensor:  # pragma: no cover - needs a GPU
        """One eager step on a side stream, as CUDA graph capture wants before it records."""
        side = torch.cuda.Stream(device=token.device)
        side.wait_stream(torch.cuda.current_stream(token.device))
        with torch.cuda.stream(side):
            logits = self.advance(token)
        torch.cuda.current_stream(token.device).wait_stream(side)
        return logits

    def capture(self) -> bool:
        """Record ``step`` as a CUDA graph (call after one eager step, which is the warm-up the
        capture needs and allocates ``logits``). Capture records kernels without running them, so
        the decode state is unchanged. False (and eager steps from here) if capture fails."""
        try:
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.step()
        except Exception as exc:  # pragma: no cover - needs a GPU
            log.warning("CUDA graph capture failed (%s); decoding eagerly", exc)
            return False
        self.graph = graph
        return True

    def advance(self, token: torch.Tensor) -> torch.Tensor:
        self.token.copy_(token)
        if self.graph is not None:
            self.graph.replay()
        else:
            self.step()
        return self.logits


class _PackedPrefillCache:
    """During a pad-free prefill (all rows packed into one sequence), scatters each layer's
    packed keys/values into per-row buffers [B, heads, width + reserve, dim] for the decode,
    and hands attention the packed ones."""

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, batch: int, capacity: int, layers: int):
        self.rows, self.cols, self.batch, self.capacity = rows, cols, batch, capacity
        self.storage: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * layers

    def update(self, key_states, value_states, layer_idx, *args, **kwargs):
        heads, dim = key_states.shape[1], key_states.shape[-1]
        k = key_states.new_zeros(self.batch, heads, self.capacity, dim)
        v = value_states.new_zeros(self.batch, heads, self.capacity, value_states.shape[-1])
        k[self.rows, :, self.cols] = key_states[0].transpose(0, 1)
        v[self.rows, :, self.cols] = value_states[0].transpose(0, 1)
        self.storage[layer_idx] = (k, v)
        return key_states, value_states


def _packed_prefill(model, mb, max_new_tokens: int, attention: str):
    """Prefill without padding: the rows of the right-padded batch ``mb`` packed into one
    sequence, attention told where each row starts (``cu_seq_lens``, FlashAttention's varlen
    form) under the attention implementation ``attention``. Returns the per-row KV buffers
    (shaped as the reserved cache's) and each row's last logits."""
    mask = mb.attention_mask.bool()
    batch, width = mask.shape
    rows, cols = mask.nonzero(as_tuple=True)  # row-major: row 0's tokens, then row 1's...
    hidden = mb.inputs_embeds[rows, cols][None]
    positions = mb.position_ids[rows, cols][None]
    lengths = mb.lengths.to(torch.int32)
    cu = torch.nn.functional.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
    longest = int(lengths.max())
    lm = model.model
    cache = _PackedPrefillCache(rows, cols, batch, width + max(0, max_new_tokens - 1), len(lm.layers))
    kwarg = _cache_kwarg(lm.layers[0])
    varlen = dict(cu_seq_lens_q=cu, cu_seq_lens_k=cu, max_length_q=longest, max_length_k=longest)
    previous = model.config._attn_implementation
    model.config._attn_implementation = attention
    try:
        rope = lm.rotary_emb(hidden, positions)
        for layer in lm.layers:
            out = layer(hidden, attention_mask=None, position_ids=positions, position_embeddings=rope,
                        use_cache=True, **{kwarg: cache}, **varlen)
            hidden = out[0] if isinstance(out, tuple) else out
    finally:
        model.config._attn_implementation = previous
    hidden = lm.norm(hidden)
    logits = model.lm_head(hidden[0, (cu[1:] - 1).long()]).float()
    return cache.storage, logits


class _PhaseClock:
    """Accumulates wall time per phase into ``timings`` (no-op when it is None)."""

    def __init__(self, device: torch.device, timings: dict | None):
        self.device, self.timings = device, timings
        self.last = self._now() if timings is not None else 0.0

    def _now(self) -> float:
        import time

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def mark(self, name: str) -> None:
        if self.timings is None:
            return
        now = self._now()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.last
        self.last = now


def _prefill(model, input_ids, attention_mask, images, align_mode, max_new_tokens, packed_attention=None):
    """The model's own prefill (right-padded, unmasked causal) into a reserved cache, or, with
    ``packed_attention``, the pad-free one into per-row buffers."""
    mb, weights = model.prepare_multimodal_inputs(input_ids, attention_mask, images, None, None, align_mode,
                                                  padding_side="right")
    if packed_attention is not None:
        storage, logits = _packed_prefill(model, mb, max_new_tokens, packed_attention)
        return mb, weights, storage, logits
    cache = reserved_cache(model.config, reserve=max(0, max_new_tokens - 1))
    lm = model.model
    kwarg = "cache" if "cache" in inspect.signature(type(lm).forward).parameters else "past_key_values"
    out = lm(inputs_embeds=mb.inputs_embeds, attention_mask=None, position_ids=mb.position_ids, use_cache=True,
             **{kwarg: cache})
    hidden = out.last_hidden_state
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    logits = model.lm_head(hidden[rows, mb.lengths - 1]).float()
    return mb, weights, cache, logits


@torch.no_grad()
def static_generate(model, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, images, *,
                    max_new_tokens: int, eos_token_id: int | None, pad_token_id: int = 0,
                    align_mode: str | None = None, cuda_graph: bool = False,
                    packed_attention: str | None = None, timings: dict | None = None) -> StaticGeneration:
    """Greedy answers (new tokens only, rows padded with ``pad_token_id`` after their EOS), the
    same tokens ``model.generate(do_sample=False)`` gives. ``cuda_graph`` replays steps 2.. as one
    captured graph; it needs a CUDA device (``InferenceEngine.decode_mode`` checks). ``packed_attention`` (e.g. ``flash_attention_2``)
    runs the prefill pad-free under that attention implementation (see ``attention.py``).
    ``timings``, when given, receives ``prefill_s`` and ``decode_s`` (synchronising the device
    between the phases, so only for profiling)."""
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    clock = _PhaseClock(input_ids.device, timings)
    mb, weights, cache, logits = _prefill(model, input_ids, attention_mask, images, align_mode, max_new_tokens,
                                          packed_attention)
    clock.mark("prefill_s")
    batch = input_ids.shape[0]
    device = logits.device
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    produced: list[torch.Tensor] = []
    stepper: _Stepper | None = None
    graph_used = False
    for step in range(max_new_tokens):
        token = logits.argmax(dim=-1)
        token = torch.where(finished, torch.full_like(token, pad_token_id), token)
        produced.append(token)
        if eos_token_id is not None:
            finished |= token == eos_token_id
        if step == max_new_tokens - 1 or bool(finished.all()):
            break
        if stepper is None:
            width = mb.attention_mask.shape[1]
            storage = cache if isinstance(cache, list) else [layer.storage() for layer in cache.layers]
            for k, v in storage:  # unwritten slots are attended (masked): they must hold no NaN/inf
                k[..., width:, :].zero_()
                v[..., width:, :].zero_()
            visible = torch.zeros(batch, 1, 1, width + max_new_tokens - 1, dtype=torch.bool, device=device)
            visible[:, 0, 0, :width] = mb.attention_mask.bool()
            stepper = _Stepper(model, storage, visible, mb.lengths[:, None].clone(), width)
            if cuda_graph and max_new_tokens - step > 2:
                logits = stepper.warm_up(token)  # the first step, eagerly, on a side stream
                graph_used = stepper.capture()
            else:
                logits = stepper.advance(token)
        else:
            logits = stepper.advance(token)
    sequences = torch.stack(produced, dim=1)
    clock.mark("decode_s")
    return StaticGeneration(sequences, weights, graph_used)
