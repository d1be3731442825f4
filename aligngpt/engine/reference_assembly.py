"""The reference-style multimodal input assembly: a Python loop over samples and spans.

This is how the published code builds the LLM's input (one sample at a time: strip padding,
split at the image placeholders, embed the text spans, splice image features, insert the
alignment vector after BOS, pad). We keep it as the baseline of ``aligngpt-eval bench`` and as
an independent oracle the vectorised assembly (``modeling/multimodal_inputs.py``) is tested
against; right padding only, as the reference.
"""
from __future__ import annotations

import torch

from ..constants import IGNORE_INDEX, IMAGE_TOKEN_INDEX


def assemble_per_sample(model, input_ids, attention_mask, image_features, labels, slot_vectors):
    """Returns (embeds [B, L, H], attention [B, L], positions [B, L], labels [B, L]) right-padded.

    ``image_features``: [n_images, P, H] in placeholder order; ``slot_vectors``: [B, H] or None
    (rows without an image never get one).
    """
    embed = model.model.embed_tokens
    max_len = model.config.tokenizer_model_max_length
    rows, row_labels = [], []
    image_index = 0
    for b in range(input_ids.shape[0]):
        keep = attention_mask[b].bool()
        ids = input_ids[b][keep]
        lab = labels[b][keep] if labels is not None else torch.full_like(ids, IGNORE_INDEX)
        spots = (ids == IMAGE_TOKEN_INDEX).nonzero(as_tuple=True)[0].tolist()
        bounds = [-1] + spots + [ids.shape[0]]
        pieces, piece_labels = [], []
        for k in range(len(bounds) - 1):
            span = ids[bounds[k] + 1 : bounds[k + 1]]
            pieces.append(embed(span))
            piece_labels.append(lab[bounds[k] + 1 : bounds[k + 1]])
            if k < len(spots):
                feats = image_features[image_index]
                image_index += 1
                pieces.append(feats.to(pieces[-1].dtype))
                piece_labels.append(torch.full((feats.shape[0],), IGNORE_INDEX, dtype=lab.dtype, device=lab.device))
        seq = torch.cat(pieces)
        seq_labels = torch.cat(piece_labels)
        if spots and max_len is not None:
            seq, seq_labels = seq[: max_len - 1], seq_labels[: max_len - 1]
        if spots and slot_vectors is not None:
            seq = torch.cat([seq[:1], slot_vectors[b : b + 1].to(seq.dtype), seq[1:]])
            seq_labels = torch.cat([seq_labels[:1], seq_labels.new_full((1,), IGNORE_INDEX), seq_labels[1:]])
        rows.append(seq)
        row_labels.append(seq_labels)
    width = max(r.shape[0] for r in rows)
    hidden = rows[0].shape[1]
    out = rows[0].new_zeros(len(rows), width, hidden)
    attn = torch.zeros(len(rows), width, dtype=torch.long, device=out.device)
    pos = torch.zeros(len(rows), width, dtype=torch.long, device=out.device)
    lab_out = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long, device=out.device)
    for b, (r, l) in enumerate(zip(rows, row_labels)):
        n = r.shape[0]
        out[b, :n] = r
        attn[b, :n] = 1
        pos[b, :n] = torch.arange(n, device=out.device)
        lab_out[b, :n] = l
    return out, attn, pos, lab_out
