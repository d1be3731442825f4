"""Built-in benchmark loaders; importing a module registers its loaders."""
import importlib

_MODULES = ["gqa", "pope", "mme", "scienceqa", "textvqa", "seed", "mmbench", "llava_bench", "mmvet", "vqav2", "vizwiz"]

for _name in _MODULES:
    try:
        importlib.import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as exc:  # a benchmark module not written yet
        if exc.name != f"{__name__}.{_name}":
            raise
