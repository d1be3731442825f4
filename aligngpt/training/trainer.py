"""``AlignGPTTrainer``: the HF Trainer with the reference's loss scaling, sampler and artefacts.

* Loss: the model returns the mean cross-entropy of each micro-batch; the Trainer divides it by
  the accumulation steps and DDP averages over ranks, as in the reference (transformers 4.31).
  Newer Trainers would instead treat a model whose ``forward`` takes ``**kwargs`` as normalising
  by the token count of the whole accumulated batch; that is switched off here.
* Sampler: ``group_by_modality_length`` (:mod:`sampler`).
* Stage-1 checkpoints hold ``mm_projector_align.bin`` with the projector *and* the alignment
  table (the reference's intermediate checkpoints dropped the table, quirk 14) plus config.json,
  and resume from it; the frozen LLM is not re-saved at every checkpoint.
* Stage-2 checkpoints are full model folders plus the tokenizer and preprocessor config, loadable
  by ``aligngpt.load_pretrained``.
* ``mm_projector_lr``: a separate learning rate for the projector (reference flag).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from transformers import Trainer

from aligngpt.processing import AlignGPTProcessor

from .builder import STAGE1_FILE, save_stage1
from .sampler import ModalityLengthGroupedSampler

log = logging.getLogger(__name__)


def unwrap_model(model):
    """The AlignGPT model inside DDP / PEFT wrappers."""
    inner = getattr(model, "module", model)
    if hasattr(inner, "get_base_model"):
        inner = inner.get_base_model()
    return inner


class AlignGPTTrainer(Trainer):
    def __init__(
        self,
        *args,
        stage: str,
        processor: AlignGPTProcessor | None = None,
        modality_lengths: list[int] | None = None,
        mm_projector_lr: float | None = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.stage = stage
        self.processor = processor
        self.modality_lengths = modality_lengths
        self.mm_projector_lr = mm_projector_lr
        # Per-micro-batch mean loss, divided by the accumulation steps (reference semantics).
        self.model_accepts_loss_kwargs = False
        self.loss_is_scaled_for_ga = False

    # ------------------------------------------------------------------ data order
    def _get_train_sampler(self, train_dataset=None):
        if self.modality_lengths is None:
            return super()._get_train_sampler(train_dataset)
        return ModalityLengthGroupedSampler(
            self.modality_lengths,
            batch_size=self.args.train_batch_size,
            world_size=self.args.world_size * self.args.gradient_accumulation_steps,
            seed=self.args.seed,
        )

    # ------------------------------------------------------------------ optimiser
    def create_optimizer(self, model=None):
        if self.mm_projector_lr is None or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(model))
        groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
        for name, param in model.named_parameters():
            if not param.requires_grad:
                continue
            groups.setdefault(("mm_projector" in name, name in decay), []).append(param)
        param_groups = []
        for (is_projector, decays), params in groups.items():
            group = {"params": params, "weight_decay": self.args.weight_decay if decays else 0.0}
            if is_projector:
                group["lr"] = self.mm_projector_lr
            param_groups.append(group)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer

    # ------------------------------------------------------------------ saving / resuming
    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if self.stage == "pretrain":
            if not self.args.should_save:
                return
            model = unwrap_model(self.model)
            save_stage1(model, output_dir, state_dict)
            torch.save(self.args, os.path.join(output_dir, "training_args.bin"))
            return
        super()._save(output_dir, state_dict)
        if self.args.should_save and self.processor is not None:
            self.processor.save_pretrained(output_dir)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        stage1 = Path(resume_from_checkpoint) / STAGE1_FILE
        if self.stage == "pretrain" and stage1.is_file():
            target = unwrap_model(model if model is not None else self.model)
            state = torch.load(stage1, map_location="cpu", weights_only=True)
            own = target.state_dict()
            for key, value in state.items():
                if key not in own:
                    raise ValueError(f"{stage1}: unexpected key {key}")
            result = target.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)
            log.info("resumed stage-1 weights from %s (%d tensors)", stage1, len(state) - len(result.unexpected_keys))
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)
