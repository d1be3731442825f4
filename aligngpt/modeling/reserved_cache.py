"""A KV cache that reserves room for the tokens still to be generated.

transformers' ``DynamicLayer`` concatenates every decode step's key and value onto the whole
cache, so a step copies the cache once per layer: with 600-token image prompts that copy is
most of a small model's decode time. Here the prefill allocates ``prompt + reserve`` slots once
and each step writes its token in place; the layer hands attention a view of the filled part,
so the tensors attention sees (shape, values, strides within a row) are those of the plain
cache and answers do not change. Past the reserve it falls back to growing by concatenation.
"""
from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer


class ReservedLayer(DynamicLayer):
    """``DynamicLayer`` with ``reserve`` pre-allocated slots after the first update."""

    def __init__(self, reserve: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.reserve = max(0, int(reserve))
        self._key_buffer: torch.Tensor | None = None
        self._value_buffer: torch.Tensor | None = None
        self._filled = 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        new = key_states.shape[-2]
        if self._key_buffer is None:
            if self.reserve == 0:
                return super().update(key_states, value_states, *args, **kwargs)
            capacity = new + self.reserve
            shape = (*key_states.shape[:-2], capacity, key_states.shape[-1])
            self._key_buffer = key_states.new_empty(shape)
            self._value_buffer = value_states.new_empty((*shape[:-1], value_states.shape[-1]))
        elif self._filled + new > self._key_buffer.shape[-2]:
            self._release()  # out of room: plain concatenation from here
            return super().update(key_states, value_states, *args, **kwargs)
        end = self._filled + new
        self._key_buffer[..., self._filled : end, :] = key_states
        self._value_buffer[..., self._filled : end, :] = value_states
        self._filled = end
        self.keys = self._key_buffer[..., :end, :]
        self.values = self._value_buffer[..., :end, :]
        return self.keys, self.values

    def storage(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The whole pre-allocated key and value buffers (filled part first), for a decoder that
        writes the reserved slots itself at fixed shapes (``aligngpt.engine.static_decode``);
        None when this layer has no buffer (no reserve, or it fell back to concatenation)."""
        if self._key_buffer is None:
            return None
        return self._key_buffer, self._value_buffer

    def _release(self) -> None:
        """Operations that replace ``keys``/``values`` wholesale leave the buffer behind."""
        self._key_buffer = self._value_buffer = None
        self.reserve = 0

    def crop(self, tokens_to_remove: int) -> None:
        self._release()
        super().crop(tokens_to_remove)

    def batch_repeat_interleave(self, repeats: int) -> None:
        self._release()
        super().batch_repeat_interleave(repeats)

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        self._release()
        super().batch_select_indices(indices)

    def reset(self) -> None:
        self._release()
        self._filled = 0
        super().reset()


def reserved_cache(config, reserve: int) -> DynamicCache:
    """A ``DynamicCache`` for ``config`` whose layers keep ``reserve`` free slots after prefill."""
    text = config.get_text_config(decoder=True)
    cache = DynamicCache(config=text)
    count = len(cache.layers) or text.num_hidden_layers
    # Sliding-window layers (Mistral, Gemma2) keep their own class: they drop old tokens.
    cache.layers = [layer if type(layer) is not DynamicLayer else ReservedLayer(reserve=reserve)
                    for layer in (cache.layers or [DynamicLayer() for _ in range(count)])]
    cache.layer_class_to_replicate = None
    return cache
