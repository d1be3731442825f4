"""AlignGPT: model, processing, batched inference and evaluation harness."""
__version__ = "0.1.0"
