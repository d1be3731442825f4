"""``aligngpt-train merge-lora``: fold a finished LoRA/QLoRA run's adapter into a full model.

Separate from :mod:`.lora` because it rebuilds the model the way training built it
(:func:`.run.build_for_training`), and :mod:`.run` itself uses :mod:`.lora` to add adapters.
"""
from __future__ import annotations

import json
from pathlib import Path

from aligngpt.errors import ConfigError
from aligngpt.extras import import_optional
from aligngpt.modeling.loading import save_pretrained

from .lora import ADAPTER_DIR, merge_into_base
from .run import TrainOptions, build_for_training


def merge_lora(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Rebuild a LoRA/QLoRA run's model in full precision, merge its adapter, save the folder."""
    import_optional("peft", "merge-lora")
    run_dir = Path(run_dir)
    args_file = run_dir / "aligngpt_train_args.json"
    if not args_file.is_file() or not (run_dir / ADAPTER_DIR).is_dir():
        raise ConfigError(f"{run_dir}: not a LoRA run folder (needs aligngpt_train_args.json and {ADAPTER_DIR}/)")
    from peft import PeftModel

    opts = TrainOptions(**json.loads(args_file.read_text(encoding="utf-8")))
    opts.bits = 16
    opts.lora_enable = False
    model, processor, _ = build_for_training(opts)
    peft_model = PeftModel.from_pretrained(model, run_dir / ADAPTER_DIR)
    merged = merge_into_base(peft_model)
    target = Path(out) if out is not None else run_dir
    save_pretrained(merged, processor, target)
    return target
