"""Benchmark datasets: every source (LLaVA local layout, HF copies, toy data) yields ``Sample``s."""
from .base import Sample, ImageRef, register_loader, get_loader, available_loaders, resolve_image_path

__all__ = ["Sample", "ImageRef", "register_loader", "get_loader", "available_loaders", "resolve_image_path"]
