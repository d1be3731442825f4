"""The AlignGPT model on transformers, registered with the Auto classes."""
from transformers import AutoConfig, AutoModelForCausalLM

from .configuration import ALIGN_MODES, AlignGPTConfig, parse_align_mode
from .modeling_aligngpt import AlignGPTForCausalLM, AlignGPTOutput, GenerationOutput

try:
    AutoConfig.register("aligngpt", AlignGPTConfig)
    AutoModelForCausalLM.register(AlignGPTConfig, AlignGPTForCausalLM)
except ValueError:  # already registered (module re-imported)
    pass

__all__ = ["ALIGN_MODES", "AlignGPTConfig", "parse_align_mode", "AlignGPTForCausalLM", "AlignGPTOutput", "GenerationOutput"]
