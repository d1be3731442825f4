"""Data parallelism for ``run`` through torchrun / accelerate launch (torch.distributed).

Every rank loads the model and the task data, takes a strided share of the unanswered
questions (strided, so each rank gets long and short prompts alike) and journals its own
answers; rank 0 merges the journals in question order, scores and writes the results.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def shard(self, items: list) -> list:
        return items[self.rank :: self.world_size] if self.active else list(items)

    def journal_name(self) -> str:
        return f"journal.rank{self.rank}.jsonl" if self.active else "journal.jsonl"

    def device_for(self, device: str) -> str:
        if self.active and device.startswith("cuda") and ":" not in device:
            return f"cuda:{self.local_rank}"
        return device


def init_distributed(device: str) -> DistContext:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistContext()
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", str(rank)))
    if not torch.distributed.is_initialized():
        backend = "nccl" if device.startswith("cuda") and torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend=backend)
    return DistContext(rank, world, local)
