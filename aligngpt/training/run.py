"""The two training stages: options with the reference recipe as defaults, and the run itself.

Defaults (reference ``scripts/pretrain.sh`` / ``finetune.sh``; AlignGPT paper, §4.1;
docs/reference-code.md, section 8):

| | pretrain | finetune |
|---|---|---|
| template (``--version``) | plain | vicuna_v1 |
| per-device batch x grad. accumulation (x 8 GPUs) | 8 x 4 (= 256) | 16 x 1 (= 128) |
| learning rate | 1e-3 | 2e-5 |
| image_aspect_ratio | square | pad |
| group_by_modality_length | off | on |
| save_steps | 24000 | 50000 |

Both: cosine schedule, warmup ratio 0.03, weight decay 0, 1 epoch, max grad norm 1.0,
model_max_length 2048, mlp2x_gelu projector, CLIP layer -2 patch features, logging every step,
4 data-loader workers. bf16 / tf32 / gradient checkpointing / DeepSpeed are flags (the
reference turned all on; see README for the 8-GPU commands).
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from aligngpt.errors import ConfigError
from aligngpt.modeling.loading import save_pretrained

from .builder import ModelSpec, build_model
from .data import TEXT_TRUNCATIONS, TrainingCollator, TrainingDataset
from .lora import ADAPTER_DIR, LoraOptions, lora_modules_to_save, merge_into_base, quantize_llm_linears, wrap_lora
from .params import TrainableChoice, count_parameters, set_trainable, trainable_prefixes, upcast_trainable

log = logging.getLogger(__name__)

STAGE_DEFAULTS: dict[str, dict[str, Any]] = {
    "pretrain": dict(
        version="plain", per_device_train_batch_size=8, gradient_accumulation_steps=4, learning_rate=1e-3,
        image_aspect_ratio="square", group_by_modality_length=False, save_steps=24000,
    ),
    "finetune": dict(
        version="vicuna_v1", per_device_train_batch_size=16, gradient_accumulation_steps=1, learning_rate=2e-5,
        image_aspect_ratio="pad", group_by_modality_length=True, save_steps=50000,
    ),
}
ARGS_FILE = "aligngpt_train_args.json"


@dataclass
class TrainOptions:
    """Every knob of a training run; ``None`` means "the stage default" (``STAGE_DEFAULTS``)."""

    stage: str
    model: str
    vision_tower: str
    data: str
    output_dir: str
    image_folder: str | None = None
    version: str | None = None
    mm_projector_type: str = "mlp2x_gelu"
    mm_vision_select_layer: int = -2
    mm_vision_select_feature: str = "patch"
    pretrain_mm_mlp_align: str | None = None
    n_indicators: int | None = None
    align_mode: str = "gated"
    gate_text: str = "all"
    random_align_table: bool = False
    tune_align_table: bool = False
    freeze_mm_mlp_adapter: bool = False
    image_aspect_ratio: str | None = None
    group_by_modality_length: bool | None = None
    text_truncation: str = "none"
    model_max_length: int = 2048
    per_device_train_batch_size: int | None = None
    gradient_accumulation_steps: int | None = None
    learning_rate: float | None = None
    mm_projector_lr: float | None = None
    num_train_epochs: float = 1.0
    max_steps: int = -1
    warmup_ratio: float = 0.03
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lr_scheduler_type: str = "cosine"
    bf16: bool = False
    fp16: bool = False
    tf32: bool = False
    gradient_checkpointing: bool = False
    deepspeed: str | None = None
    load_dtype: str = "auto"
    attn_implementation: str | None = None
    lora_enable: bool = False
    lora_r: int = 128
    lora_alpha: int = 256
    lora_dropout: float = 0.05
    bits: int = 16
    save_steps: int | None = None
    save_total_limit: int | None = 1
    logging_steps: float = 1
    seed: int = 42
    dataloader_num_workers: int = 4
    resume_from_checkpoint: str | None = None
    report_to: str = "none"
    use_cpu: bool = False
    ddp_backend: str | None = None
    max_samples: int | None = None
    disable_tqdm: bool | None = None
    eval_tasks: str | None = None  # comma-separated toy/benchmark tasks evaluated during training
    eval_every: int = 0
    eval_limit: int | None = None
    eval_data_root: str | None = None
    eval_batch_size: int = 8
    eval_max_new_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    """Further ``TrainingArguments`` fields, passed through unchanged."""

    def resolved(self) -> "TrainOptions":
        if self.stage not in STAGE_DEFAULTS:
            raise ConfigError(f"unknown stage {self.stage!r}; expected pretrain or finetune")
        values = dataclasses.asdict(self)
        for key, default in STAGE_DEFAULTS[self.stage].items():
            if values[key] is None:
                values[key] = default
        return TrainOptions(**values)


# ---------------------------------------------------------------------------- helpers
def _load_dtype(opts: TrainOptions) -> torch.dtype:
    names = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
    if opts.load_dtype == "auto":
        # With DeepSpeed the engine holds fp32 master weights, so the model itself can be 16-bit
        # (the reference loads in bf16); without it the Trainer steps the weights directly.
        if opts.deepspeed and opts.bf16:
            return torch.bfloat16
        if opts.deepspeed and opts.fp16:
            return torch.float16
        return torch.float32
    if opts.load_dtype not in names:
        raise ConfigError("--load-dtype must be auto, float32, bfloat16 or float16")
    return names[opts.load_dtype]


def default_attn_implementation() -> str:
    """flash-attention 2 when installed and on CUDA (as the reference trained), else SDPA."""
    if importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available():
        return "flash_attention_2"
    return "sdpa"


def _check_options(opts: TrainOptions) -> None:
    if opts.text_truncation not in TEXT_TRUNCATIONS:
        raise ConfigError(f"--text-truncation must be one of {', '.join(TEXT_TRUNCATIONS)}")
    if opts.bits not in (4, 8, 16):
        raise ConfigError("--bits must be 4, 8 or 16")
    if opts.bits != 16 and not opts.lora_enable:
        raise ConfigError("--bits 4/8 (QLoRA) needs --lora-enable")
    if opts.deepspeed:
        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError("--deepspeed needs the 'deepspeed' package (pip install deepspeed)")
        if not Path(opts.deepspeed).is_file():
            raise ConfigError(f"--deepspeed {opts.deepspeed}: config file not found")
    if opts.stage == "pretrain" and opts.pretrain_mm_mlp_align:
        raise ConfigError("--pretrain-mm-mlp-align is a stage-2 input")
    if opts.stage == "pretrain" and opts.random_align_table:
        raise ConfigError("--random-align-table applies to stage 2 (the stage-1 table is always fresh)")
    if opts.bf16 and opts.fp16:
        raise ConfigError("choose one of --bf16 and --fp16")


def build_for_training(opts: TrainOptions):
    """Model (trainable parameters set, LoRA applied), processor, and the trainable choice."""
    spec = ModelSpec(
        base=Path(opts.model),
        vision_tower=Path(opts.vision_tower),
        projector_type=opts.mm_projector_type,
        select_layer=opts.mm_vision_select_layer,
        select_feature=opts.mm_vision_select_feature,
        n_indicators=opts.n_indicators,
        align_mode=opts.align_mode,
        gate_text=opts.gate_text,
        image_aspect_ratio=opts.image_aspect_ratio,
        model_max_length=opts.model_max_length,
        pretrain_mm_mlp_align=Path(opts.pretrain_mm_mlp_align) if opts.pretrain_mm_mlp_align else None,
        random_align_table=opts.random_align_table,
        attn_implementation=opts.attn_implementation or default_attn_implementation(),
        stage=opts.stage,
        conv_template=opts.version if opts.stage == "finetune" else None,
    )
    model, processor = build_model(spec, _load_dtype(opts))
    choice = TrainableChoice(
        stage=opts.stage,
        align_mode=opts.align_mode,
        freeze_projector=opts.freeze_mm_mlp_adapter,
        tune_align_table=opts.tune_align_table,
        lora=opts.lora_enable,
    )
    set_trainable(model, choice)
    model.config.use_cache = False
    if opts.lora_enable:
        if opts.bits in (4, 8):
            quantize_llm_linears(model, opts.bits, torch.bfloat16 if opts.bf16 else torch.float16)
        lora = LoraOptions(r=opts.lora_r, alpha=opts.lora_alpha, dropout=opts.lora_dropout, bits=opts.bits)
        model = wrap_lora(model, lora, lora_modules_to_save(trainable_prefixes(choice)))
    if not opts.deepspeed:
        upcast_trainable(model)
    return model, processor, choice


def training_arguments(opts: TrainOptions, has_text_only: bool):
    from transformers import TrainingArguments

    tf32 = None
    if opts.tf32:
        if torch.cuda.is_available():
            tf32 = True
        else:
            log.warning("--tf32 ignored: no CUDA device")
    values = dict(
        output_dir=opts.output_dir,
        per_device_train_batch_size=opts.per_device_train_batch_size,
        gradient_accumulation_steps=opts.gradient_accumulation_steps,
        learning_rate=opts.learning_rate,
        num_train_epochs=opts.num_train_epochs,
        max_steps=opts.max_steps,
        lr_scheduler_type=opts.lr_scheduler_type,
        warmup_steps=opts.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        weight_decay=opts.weight_decay,
        max_grad_norm=opts.max_grad_norm,
        bf16=opts.bf16,
        fp16=opts.fp16,
        tf32=tf32,
        activation_checkpointing=opts.gradient_checkpointing,
        deepspeed=opts.deepspeed,
        save_strategy="steps",
        save_steps=opts.save_steps,
        save_total_limit=opts.save_total_limit,
        logging_steps=opts.logging_steps,
        seed=opts.seed,
        dataloader_num_workers=opts.dataloader_num_workers,
        remove_unused_columns=False,
        report_to=opts.report_to,
        use_cpu=opts.use_cpu,
        ddp_backend=opts.ddp_backend,
        # Text-only batches leave the projector and the gate without gradient.
        ddp_find_unused_parameters=bool(has_text_only),
    )
    if opts.disable_tqdm is not None:
        values["disable_tqdm"] = opts.disable_tqdm
    values.update(opts.extra)
    accepted = {f.name for f in dataclasses.fields(TrainingArguments)}
    if "activation_checkpointing" not in accepted:  # older transformers 5 releases name it gradient_checkpointing
        values["gradient_checkpointing"] = values.pop("activation_checkpointing")
    return TrainingArguments(**values)


@dataclass
class TrainResult:
    output_dir: Path
    log_history: list[dict]
    trainable: int
    total: int
    global_step: int


def _write_args(opts: TrainOptions) -> None:
    out = Path(opts.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    from aligngpt.io import atomic_write_json

    atomic_write_json(out / ARGS_FILE, dataclasses.asdict(opts))


def train(opts: TrainOptions, callbacks: list | None = None) -> TrainResult:
    """Run one stage end to end and write its artefacts to ``opts.output_dir``.

    pretrain -> ``mm_projector_align.bin`` + config.json (reference layout, table included);
    finetune -> a full model folder (our layout: config with the tower embedded, safetensors with
    the released key names, tokenizer, preprocessor config), loadable by ``aligngpt.load_pretrained``;
    with LoRA also ``adapter/`` (merged in place unless QLoRA or ZeRO-3).
    """
    from transformers import set_seed

    from .trainer import AlignGPTTrainer

    opts = opts.resolved()
    _check_options(opts)
    set_seed(opts.seed)  # fresh projector / table / gate initialisation is seeded
    model, processor, _ = build_for_training(opts)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config
    dataset = TrainingDataset(
        opts.data,
        opts.image_folder,
        processor.tokenizer,
        opts.version,
        processor.image_settings,
        opts.image_aspect_ratio,
        n_levels=config.n_indicators if (opts.stage == "pretrain" and config.use_alignment) else None,
        limit=opts.max_samples,
    )
    collator = TrainingCollator(
        pad_token_id=processor.tokenizer.pad_token_id,
        model_max_length=opts.model_max_length,
        num_image_tokens=config.num_image_tokens,
        text_truncation=opts.text_truncation,
        tokenizer_model_max_length=config.tokenizer_model_max_length,
    )
    lengths = dataset.modality_lengths
    has_text_only = any(x < 0 for x in lengths)
    args = training_arguments(opts, has_text_only)
    if args.should_save:
        _write_args(opts)
    callbacks = list(callbacks or [])
    eval_callback = _eval_callback(opts, processor)
    if eval_callback is not None:
        callbacks.append(eval_callback)
    trainer = AlignGPTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        callbacks=callbacks,
        stage=opts.stage,
        processor=processor,
        modality_lengths=lengths if opts.group_by_modality_length else None,
        mm_projector_lr=opts.mm_projector_lr,
    )
    if eval_callback is not None:
        eval_callback.trainer = trainer
    trainable, total = count_parameters(model)
    log.info("stage %s: %d of %d parameters trainable", opts.stage, trainable, total)
    resume = opts.resume_from_checkpoint
    if resume == "latest":
        resume = True
    trainer.train(resume_from_checkpoint=resume)
    _save_final(trainer, opts, processor)
    return TrainResult(Path(opts.output_dir), list(trainer.state.log_history), trainable, total, trainer.state.global_step)


def _eval_callback(opts: TrainOptions, processor):
    """``--eval-tasks``: benchmark metrics every ``--eval-every`` steps (stage 2 models answer)."""
    if not opts.eval_tasks or opts.eval_every <= 0:
        return None
    from aligngpt.harness.toy import toy_data_root

    from .eval_callback import HarnessEvalCallback

    tasks = [t.strip() for t in opts.eval_tasks.split(",") if t.strip()]
    root = opts.eval_data_root or str(toy_data_root())
    return HarnessEvalCallback(tasks, root, every=opts.eval_every, processor=processor, limit=opts.eval_limit,
                               batch_size=opts.eval_batch_size, max_new_tokens=opts.eval_max_new_tokens)


def _save_final(trainer, opts: TrainOptions, processor) -> None:
    out = Path(opts.output_dir)
    trainer.save_state()
    model = trainer.model.get_base_model() if hasattr(trainer.model, "get_base_model") else trainer.model
    model.config.use_cache = True  # switched off for training only (as the reference does)
    if not opts.lora_enable:
        trainer.save_model(str(out))  # stage 1: mm_projector_align.bin; stage 2: full folder
        return
    trainer.save_model(str(out / ADAPTER_DIR))
    zero3 = bool(opts.deepspeed) and json.loads(Path(opts.deepspeed).read_text()).get("zero_optimization", {}).get("stage") == 3
    if opts.bits != 16 or zero3:
        log.warning("LoRA adapter saved to %s; merge it with: aligngpt-train merge-lora %s", out / ADAPTER_DIR, out)
        return
    if trainer.args.should_save:
        merged = merge_into_base(trainer.model)
        save_pretrained(merged, processor, out)
