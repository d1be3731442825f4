"""``group_by_modality_length``: LLaVA's sampler, which keeps image and text-only samples apart.

Behaviour reproduced from LLaVA's ``LengthGroupedSampler(group_by_modality=True)`` (used
unchanged by AlignGPT's ``aligngpt_trainer.py``):

* a sample's "length" is its word count (whitespace split of every turn), negative when it has
  no image (``modality_lengths``);
* each modality is shuffled on its own and cut into megabatches of ``world_size * batch_size``
  (the reference passes ``world_size * gradient_accumulation_steps`` as world size); inside a
  megabatch samples are sorted longest first and dealt to ``world_size`` per-rank batches so the
  summed lengths stay even;
* the megabatches of both modalities, except the last (short) one of each, are shuffled
  together; the two leftovers are merged into one final megabatch, sorted by index. That final
  megabatch is the only place image and text-only samples can share a batch.
* if all samples share one modality, plain length grouping applies (AlignGPT's short-circuit;
  LLaVA asserts instead).

Deviation: LLaVA draws every permutation from the global torch RNG at iteration time. Here all
draws come from one generator seeded with ``seed + epoch``, so the order is reproducible and a
run resumed from a checkpoint sees exactly the batches an uninterrupted run would have.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler


def modality_length(record: dict) -> int:
    """Word count of all turns; negative for text-only samples (LLaVA ``modality_lengths``)."""
    words = sum(len(turn["value"].split()) for turn in record["conversations"])
    return words if "image" in record else -words


def even_split(indices: list[int], lengths: Sequence[int], parts: int) -> list[list[int]]:
    """Deal ``indices`` (longest first) into ``parts`` groups of equal size, balancing length.

    If the count does not divide evenly, deal round-robin instead (as the reference does).
    """
    if len(indices) % parts:
        return [indices[p::parts] for p in range(parts)]
    per_part = len(indices) // parts
    groups: list[list[int]] = [[] for _ in range(parts)]
    totals = [0.0] * parts
    for index in indices:
        target = min(range(parts), key=lambda p: (totals[p], p))
        groups[target].append(index)
        totals[target] += lengths[index]
        if len(groups[target]) == per_part:
            totals[target] = float("inf")
    return groups


def length_grouped(lengths: Sequence[int], batch_size: int, world_size: int, generator: torch.Generator) -> list[int]:
    """Random megabatches, each sorted longest-first and evenly dealt across ranks."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    mega = world_size * batch_size
    out: list[int] = []
    for start in range(0, len(order), mega):
        block = sorted(order[start : start + mega], key=lambda i: lengths[i], reverse=True)
        for group in even_split(block, lengths, world_size):
            out.extend(group)
    return out


def modality_grouped(lengths: Sequence[int], batch_size: int, world_size: int, generator: torch.Generator) -> list[int]:
    if any(length == 0 for length in lengths):
        raise ValueError("modality lengths must be non-zero (a sample with no words?)")
    if all(length > 0 for length in lengths) or all(length < 0 for length in lengths):
        return length_grouped([abs(x) for x in lengths], batch_size, world_size, generator)
    image_idx = [i for i, x in enumerate(lengths) if x > 0]
    text_idx = [i for i, x in enumerate(lengths) if x < 0]
    image_order = [image_idx[j] for j in length_grouped([lengths[i] for i in image_idx], batch_size, world_size, generator)]
    text_order = [text_idx[j] for j in length_grouped([-lengths[i] for i in text_idx], batch_size, world_size, generator)]
    mega = world_size * batch_size
    image_blocks = [image_order[s : s + mega] for s in range(0, len(image_order), mega)]
    text_blocks = [text_order[s : s + mega] for s in range(0, len(text_order), mega)]
    leftover = image_blocks[-1] + text_blocks[-1]
    blocks = image_blocks[:-1] + text_blocks[:-1]
    shuffled = [blocks[k] for k in torch.randperm(len(blocks), generator=generator).tolist()]
    if leftover:
        shuffled.append(sorted(leftover))
    return [i for block in shuffled for i in block]


class ModalityLengthGroupedSampler(Sampler[int]):
    """Yields dataset indices for the Trainer (its DataLoader then cuts per-rank batches)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, world_size: int, seed: int = 0):
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.world_size = world_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed + self.epoch)
        return iter(modality_grouped(self.lengths, self.batch_size, self.world_size, generator))
