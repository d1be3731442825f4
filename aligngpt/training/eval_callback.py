"""Benchmark numbers during training, on the model being trained (no second copy of the weights).

Every ``every`` optimizer steps the callback puts the live model in eval mode, answers each
chosen task's questions (optionally the first ``limit``) with the batched engine — each rank its
strided share under data parallelism — gathers the answers on rank 0, scores them with the
task's official evaluator and logs the headline metrics through ``trainer.log`` so they reach
every logger the Trainer reports to (``eval/<task>/<metric>``).
"""
from __future__ import annotations

import logging
from pathlib import Path

import torch
from transformers import TrainerCallback

log = logging.getLogger(__name__)


def _flat_numbers(metrics: dict, prefix: str) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        name = f"{prefix}/{key}"
        if isinstance(value, dict):
            continue  # nested breakdowns stay in the run's own results
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


class HarnessEvalCallback(TrainerCallback):
    def __init__(self, tasks: list[str], data_root: str | Path, *, every: int, processor, limit: int | None = None,
                 batch_size: int = 8, max_new_tokens: int | None = None, source: str = "local"):
        from aligngpt.harness.settings import RunSettings
        from aligngpt.harness.tasks import load_task

        self.specs = [load_task(t) for t in tasks]
        self.settings = RunSettings(data_root=str(data_root), source=source, limit=limit)
        self.every = int(every)
        self.processor = processor
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.trainer = None  # set by train(): logging goes through trainer.log
        self._samples: dict[str, list] = {}
        self.history: list[dict] = []

    def _load(self):
        from aligngpt.harness.samples import load_samples

        if not self._samples:
            self._samples = {s.name: load_samples(s, self.settings) for s in self.specs}
        return self._samples

    @staticmethod
    def _unwrap(model):
        while hasattr(model, "module"):
            model = model.module
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        return model

    def evaluate(self, model) -> dict[str, float]:
        from aligngpt.engine.batched import InferenceEngine
        from aligngpt.harness.scoring import decoding, generate_answers, score_answers

        dist = torch.distributed.is_available() and torch.distributed.is_initialized()
        rank = torch.distributed.get_rank() if dist else 0
        world = torch.distributed.get_world_size() if dist else 1
        net = self._unwrap(model)
        was_training = net.training
        net.eval()
        engine = InferenceEngine(net, self.processor, batch_size=self.batch_size)
        metrics: dict[str, float] = {}
        try:
            for spec in self.specs:
                samples = self._load()[spec.name]
                mine = samples[rank::world]
                dec = decoding(spec, net.config, self.processor, max_new_tokens=self.max_new_tokens)
                preds, _ = generate_answers(engine, mine, dec)
                answers = {p.key: p.text for p in preds}
                if dist:
                    parts = [None] * world
                    torch.distributed.all_gather_object(parts, answers)
                    answers = {k: v for part in parts for k, v in part.items()}
                if rank == 0:
                    scored, _ = score_answers(spec, spec.make_evaluator(), samples, answers,
                                              self.settings.judge)
                    metrics.update(_flat_numbers(scored.metrics, f"eval/{spec.name}"))
        finally:
            if was_training:
                net.train()
        if dist:
            box = [metrics]
            torch.distributed.broadcast_object_list(box, src=0)
            metrics = box[0]
        return metrics

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every <= 0 or state.global_step == 0 or state.global_step % self.every:
            return
        metrics = self.evaluate(model)
        self.history.append({"step": state.global_step, **metrics})
        if self.trainer is not None:
            self.trainer.log(metrics)
        else:
            log.info("step %d: %s", state.global_step, metrics)
