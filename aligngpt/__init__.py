"""AlignGPT: model, processing, batched inference and evaluation harness.

    import aligngpt
    model, processor = aligngpt.load_pretrained("path/or/hub-id")

Heavy modules (torch, transformers) load on first use, so the CLI starts fast.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "AlignGPTConfig": "aligngpt.modeling",
    "AlignGPTForCausalLM": "aligngpt.modeling",
    "AlignGPTProcessor": "aligngpt.processing",
    "load_pretrained": "aligngpt.modeling.loading",
    "save_pretrained": "aligngpt.modeling.loading",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'aligngpt' has no attribute {name!r}")
