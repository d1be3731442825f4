"""Turning token ids with ``<image>`` placeholders into the embedding sequence the LLM sees.

One vectorised pass for the whole batch (no Python loop over samples): every token gets a
destination offset from a cumulative sum of its expanded length (1 for text, P for an image),
the alignment slot shifts everything after each row's first real token by one, and text
embeddings, image features and labels are scattered into a padded buffer.

Rows are packed either left- (generation: new tokens append on the right) or right-padded
(training). Padding side never changes a row's content or its position ids, so outputs do not
depend on batch composition. This is the fix for the reference's left-padding bug (its
indicator lands inside the padding; docs/reference-code.md, quirk 7).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX


@dataclass
class MultimodalBatch:
    inputs_embeds: torch.Tensor  # [B, L, H]
    attention_mask: torch.Tensor  # [B, L] long, 1 = real token
    position_ids: torch.Tensor  # [B, L]
    labels: torch.Tensor | None  # [B, L]
    indicator_index: torch.Tensor  # [B] column of the alignment slot (-1 where none)
    lengths: torch.Tensor  # [B] real length of each row


@dataclass
class TokenLayout:
    """Where each input token lands; computed once, used for embeddings, labels and the gate."""

    mask: torch.Tensor  # [B, T] bool real tokens
    is_image: torch.Tensor  # [B, T] bool placeholders
    first: torch.Tensor  # [B] index of the first real token
    dest: torch.Tensor  # [B, T] destination column of the token's first slot
    keep: torch.Tensor  # [B, T] bool: token survives truncation
    image_keep: torch.Tensor  # [B, T, P] bool: which of an image's slots survive truncation
    has_slot: torch.Tensor  # [B] bool: row gets an alignment slot
    pad: torch.Tensor  # [B] left padding of the row
    lengths: torch.Tensor  # [B]
    width: int
    slot_offset: int = 1  # slot column relative to the row start: 1 after BOS, 0 at the start


def plan_layout(
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    num_image_tokens: int,
    with_slot: bool,
    max_length: int | None,
    padding_side: str,
    anchor: str = "after_bos",
) -> TokenLayout:
    """Destinations of every token; ``anchor`` places the slot after the first token or before it."""
    if anchor not in ("after_bos", "start"):
        raise ValueError(f"unknown alignment anchor {anchor!r} (after_bos, start)")
    offset = 1 if anchor == "after_bos" else 0
    mask = attention_mask.bool()
    is_image = (input_ids == IMAGE_TOKEN_INDEX) & mask
    tok_len = torch.where(is_image, num_image_tokens, 1) * mask
    has_image = is_image.any(dim=1)
    has_slot = has_image & with_slot
    first = mask.long().argmax(dim=1)
    start = torch.cumsum(tok_len, dim=1) - tok_len  # offset before the alignment slot
    length = tok_len.sum(dim=1)
    if max_length is not None:
        # Reference quirk 10: multimodal rows are cut to tokenizer_model_max_length - 1 before
        # the alignment token is added (text-only rows are not cut).
        limit = torch.where(has_image, torch.full_like(length, max_length - 1), length)
        length = torch.minimum(length, limit)
    else:
        limit = length
    keep = mask & (start < limit[:, None])
    slots = torch.arange(num_image_tokens, device=input_ids.device)
    image_keep = (start[:, :, None] + slots) < limit[:, None, None]
    cols = torch.arange(input_ids.shape[1], device=input_ids.device)
    after_first = cols[None, :] >= first[:, None] + offset
    dest = start + (after_first & has_slot[:, None]).long()
    lengths = length + has_slot.long()
    width = int(lengths.max().item()) if lengths.numel() else 0
    pad = (width - lengths) if padding_side == "left" else torch.zeros_like(lengths)
    dest = dest + pad[:, None]
    return TokenLayout(mask, is_image, first, dest, keep, image_keep, has_slot, pad, lengths, width, offset)


def scatter_sequence(
    layout: TokenLayout,
    text_embeds: torch.Tensor,
    image_features: torch.Tensor | None,
    slot_vectors: torch.Tensor | None,
    labels: torch.Tensor | None,
) -> MultimodalBatch:
    """Place text embeddings, image features and alignment vectors at their destinations."""
    batch, _, hidden = text_embeds.shape
    device = text_embeds.device
    width = layout.width
    out = text_embeds.new_zeros(batch, width, hidden)

    text_sel = layout.keep & ~layout.is_image
    rows, cols = text_sel.nonzero(as_tuple=True)
    out[rows, layout.dest[rows, cols]] = text_embeds[rows, cols]

    img_rows, img_cols = layout.is_image.nonzero(as_tuple=True)  # row-major = order of `images`
    if img_rows.numel():
        if image_features is None or image_features.shape[0] != img_rows.numel():
            got = 0 if image_features is None else image_features.shape[0]
            raise ValueError(f"the batch has {img_rows.numel()} <image> placeholders but {got} images")
        n_patch = image_features.shape[1]
        slot = torch.arange(n_patch, device=device)
        keep = layout.image_keep[img_rows, img_cols]  # [n_img, P]
        r = img_rows[:, None].expand(-1, n_patch)[keep]
        c = (layout.dest[img_rows, img_cols][:, None] + slot)[keep]
        out[r, c] = image_features.to(out.dtype)[keep]
    elif image_features is not None and image_features.shape[0] > 0:
        raise ValueError(f"{image_features.shape[0]} images given but the batch has no <image> placeholder")

    slot_col = torch.where(layout.has_slot, layout.pad + layout.slot_offset, torch.full_like(layout.pad, -1))
    slot_rows = layout.has_slot.nonzero(as_tuple=True)[0]
    if slot_rows.numel():
        out[slot_rows, slot_col[slot_rows]] = slot_vectors[slot_rows].to(out.dtype)

    positions = torch.arange(width, device=device)[None, :] - layout.pad[:, None]
    attention = ((positions >= 0) & (positions < layout.lengths[:, None])).long()
    position_ids = positions.clamp(min=0) * attention

    new_labels = None
    if labels is not None:
        new_labels = torch.full((batch, width), IGNORE_INDEX, dtype=labels.dtype, device=device)
        new_labels[rows, layout.dest[rows, cols]] = labels[rows, cols]
    return MultimodalBatch(out, attention, position_ids, new_labels, slot_col, layout.lengths)


def gate_text_statistics(
    layout: TokenLayout, text_embeds: torch.Tensor, labels: torch.Tensor | None, prompt_only: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum and count of the word embeddings the gate averages, per row.

    Reference behaviour: every non-image token of the row except its first (BOS), untruncated,
    answers included in training. With the slot anchored at the start (no BOS) no token is skipped. ``prompt_only`` keeps tokens whose label is ignored (the prompt),
    which removes the train/test mismatch.
    """
    cols = torch.arange(layout.mask.shape[1], device=layout.mask.device)
    sel = layout.mask & ~layout.is_image
    if layout.slot_offset:
        sel = sel & (cols[None, :] != layout.first[:, None])
    if prompt_only and labels is not None:
        sel = sel & (labels == IGNORE_INDEX)
    weights = sel.to(text_embeds.dtype)
    total = (text_embeds * weights[..., None]).sum(dim=1)
    return total, sel.sum(dim=1)


def first_image_features(layout: TokenLayout, image_features: torch.Tensor) -> torch.Tensor:
    """[B, P, H] features of each row's image (zeros for text-only rows), for the gate."""
    batch = layout.mask.shape[0]
    counts = layout.is_image.sum(dim=1)
    if bool((counts > 1).any()):
        raise ValueError("the alignment gate takes exactly one image per sample; use align_mode global/fixed:K/none")
    out = image_features.new_zeros(batch, *image_features.shape[1:])
    rows = layout.is_image.any(dim=1).nonzero(as_tuple=True)[0]
    out[rows] = image_features
    return out
