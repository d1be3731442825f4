"""AlignGPT: model, processing, batched inference and evaluation harness.

    import aligngpt
    model, processor = aligngpt.load_pretrained("path/or/hub-id")
"""
__version__ = "0.1.0"

from .modeling import AlignGPTConfig, AlignGPTForCausalLM  # noqa: E402  (registers Auto classes)
from .modeling.loading import load_pretrained, save_pretrained  # noqa: E402
from .processing import AlignGPTProcessor  # noqa: E402

__all__ = ["AlignGPTConfig", "AlignGPTForCausalLM", "AlignGPTProcessor", "load_pretrained", "save_pretrained", "__version__"]
