from .conversation import TEMPLATES, build_prompt, get_template
from .hf_tokenizer import HFTokenizer, TokenizerProtocol, load_tokenizer
from .image import ImageProcessorSettings, expand_to_square, preprocess_images
from .processor import AlignGPTProcessor
from .tokenizer import LlamaSPTokenizer

__all__ = [
    "TEMPLATES",
    "build_prompt",
    "get_template",
    "ImageProcessorSettings",
    "expand_to_square",
    "preprocess_images",
    "AlignGPTProcessor",
    "LlamaSPTokenizer",
    "HFTokenizer",
    "TokenizerProtocol",
    "load_tokenizer",
]
