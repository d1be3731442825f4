"""``aligngpt-train score-alignment``: CLIP image-text similarity for every caption pair, bucketed.

No reference script exists for the ``similarity`` field of the released 558K file
(docs/reference-code.md, quirk 21); this is our reconstruction of §3.3 of the AlignGPT paper
(Zhao et al., 2024): cosine similarity of CLIP's projected image and text embeddings (raw
cosine, no logit scale: the paper's Fig. 3 shows scores of 0.10-0.30), then :mod:`bucketing`
into N levels.

Images are preprocessed as CLIP was trained (shortest-edge resize + centre crop, the settings in
the CLIP folder's ``preprocessor_config.json``, no pad-to-square); captions go through the
folder's ``CLIPTokenizer`` and are truncated to the text model's context (77 for OpenAI CLIP).
Work is journalled per batch (:mod:`journal`), so a killed run restarted with the same command
finishes with byte-identical output.
"""
from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from aligngpt.data.base import resolve_image_path
from aligngpt.data.images import truncated_images_allowed
from aligngpt.errors import ConfigError, DataError
from aligngpt.io import atomic_write_json
from aligngpt.processing.image import ImageProcessorSettings, preprocess_images

from .bucketing import bucketize
from .journal import ScoreJournal
from .records import caption_of, file_fingerprint, load_records, where
from .report import write_report

#: Test-only: after this many batches are journalled, the process SIGKILLs itself (simulating a
#: crash at an arbitrary point) so the resume path can be tested end to end.
KILL_AFTER_ENV = "ALIGNGPT_TEST_KILL_AFTER_BATCHES"


@dataclass
class ScoreOptions:
    data: Path
    image_folder: Path
    clip: str
    levels: int
    out: Path
    bucketing: str = "quantile"
    batch_size: int = 64
    device: str = "cpu"
    dtype: str | None = None
    num_workers: int = 0
    fresh: bool = False
    progress: bool = True

    @property
    def journal_path(self) -> Path:
        return self.out.with_name(self.out.name + ".scores.jsonl")

    @property
    def report_path(self) -> Path:
        return self.out.with_name(self.out.stem + ".report.json")

    @property
    def histogram_path(self) -> Path:
        return self.out.with_name(self.out.stem + ".hist.png")


# ---------------------------------------------------------------------------- the CLIP model
def _features(output: Any) -> torch.Tensor:
    """``get_*_features`` returns a tensor (transformers 4) or an output whose pooler is it (5)."""
    if isinstance(output, torch.Tensor):
        return output
    return output.pooler_output


class ClipScorer:
    """Cosine similarity of CLIP image and text embeddings, one batch at a time."""

    def __init__(self, folder: str, device: str = "cpu", dtype: str | None = None):
        from transformers import CLIPModel, CLIPTokenizer

        path = Path(folder)
        if not path.is_dir():
            raise ConfigError(f"--clip {folder!r}: not a folder (a CLIPModel folder with its tokenizer files)")
        torch_dtype = {None: None, "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype, "bad")
        if torch_dtype == "bad":
            raise ConfigError("--dtype must be float32, float16 or bfloat16")
        if torch_dtype is None:
            torch_dtype = torch.float16 if str(device).startswith("cuda") else torch.float32
        self.model = CLIPModel.from_pretrained(path, dtype=torch_dtype).to(device).eval()
        self.tokenizer = CLIPTokenizer.from_pretrained(path)
        if (path / "preprocessor_config.json").is_file():
            self.settings = ImageProcessorSettings.from_folder(path)
        else:
            size = self.model.config.vision_config.image_size
            self.settings = ImageProcessorSettings(shortest_edge=size, crop_height=size, crop_width=size)
        self.max_text = int(self.model.config.text_config.max_position_embeddings)
        self.device = device
        self.dtype = torch_dtype

    def pixels(self, images: list[Image.Image]) -> torch.Tensor:
        return preprocess_images(images, self.settings, pad_to_square=False)

    @torch.no_grad()
    def score(self, pixel_values: torch.Tensor, texts: list[str]) -> list[float]:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_text, return_tensors="pt")
        img = _features(self.model.get_image_features(pixel_values=pixel_values.to(self.device, self.dtype)))
        txt = _features(
            self.model.get_text_features(
                input_ids=enc["input_ids"].to(self.device), attention_mask=enc["attention_mask"].to(self.device)
            )
        )
        img = torch.nn.functional.normalize(img.float(), dim=-1)
        txt = torch.nn.functional.normalize(txt.float(), dim=-1)
        return (img * txt).sum(dim=-1).cpu().tolist()


# ---------------------------------------------------------------------------- batches
class _ChunkSet(torch.utils.data.Dataset):
    """Batch k = records [k*B, (k+1)*B): decoded and preprocessed (in DataLoader workers)."""

    def __init__(self, records, chunks, batch_size, image_folder, data_path, settings):
        self.records, self.chunks, self.batch_size = records, chunks, batch_size
        self.image_folder, self.data_path, self.settings = image_folder, data_path, settings

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int):
        chunk = self.chunks[i]
        start = chunk * self.batch_size
        indices = range(start, min(start + self.batch_size, len(self.records)))
        ids, texts, images = [], [], []
        for k in indices:
            rec = self.records[k]
            if "image" not in rec:
                raise DataError(self.data_path, f"{where(rec, k)}: no 'image'; every pretraining pair needs one")
            path = resolve_image_path(self.image_folder, rec["image"], source_file=self.data_path)
            try:
                with Image.open(path) as im:
                    images.append(im.convert("RGB"))
            except (OSError, ValueError) as exc:
                raise DataError(self.data_path, f"{where(rec, k)}: cannot read image {path}: {exc}") from None
            ids.append(rec.get("id", k))
            texts.append(caption_of(rec, k, self.data_path))
        return chunk, ids, texts, preprocess_images(images, self.settings, pad_to_square=False)


def _first(batch):
    return batch[0]


# ---------------------------------------------------------------------------- the command
def score_alignment(opts: ScoreOptions) -> dict[str, Any]:
    """Score (resuming from the journal), bucket, write the data, the report and the histogram."""
    with truncated_images_allowed():  # as the reference's training data loader
        return _score_alignment(opts)


def _score_alignment(opts: ScoreOptions) -> dict[str, Any]:
    if opts.batch_size < 1:
        raise ConfigError("--batch-size must be at least 1")
    if Path(opts.out).resolve() == Path(opts.data).resolve():
        raise ConfigError("--out must differ from --data (the journal is tied to the input file's contents)")
    records = load_records(opts.data)
    if not records:
        raise DataError(opts.data, "no records")
    for k, rec in enumerate(records):  # fail before any CLIP work on an unusable record
        caption_of(rec, k, Path(opts.data))
    n_chunks = (len(records) + opts.batch_size - 1) // opts.batch_size
    header = {
        "data": file_fingerprint(opts.data),
        "records": len(records),
        "batch_size": opts.batch_size,
        "clip": str(Path(opts.clip).resolve()),
    }
    journal = ScoreJournal(opts.journal_path, header).open(fresh=opts.fresh)
    try:
        todo = [c for c in range(n_chunks) if c not in journal.chunks]
        if todo:
            _score_chunks(opts, records, journal, todo, n_chunks)
    finally:
        journal.close()

    scores: list[float] = []
    for c in range(n_chunks):
        ids, chunk_scores = journal.chunks[c]
        start = c * opts.batch_size
        expected = [records[k].get("id", k) for k in range(start, start + len(chunk_scores))]
        if ids != expected:
            raise DataError(opts.journal_path, f"batch {c}: ids differ from the data file; pass --fresh")
        scores.extend(chunk_scores)
    buckets = bucketize(scores, opts.levels, opts.bucketing)
    out_records = []
    for rec, level, score in zip(records, buckets.levels, scores):
        row = dict(rec)
        row["similarity"] = level
        row["clip_score"] = score
        out_records.append(row)
    atomic_write_json(opts.out, out_records, indent=None)
    report = write_report(opts, buckets, scores)
    return report


def _score_chunks(opts: ScoreOptions, records, journal: ScoreJournal, todo: list[int], n_chunks: int) -> None:
    from tqdm.auto import tqdm

    scorer = ClipScorer(opts.clip, opts.device, opts.dtype)
    dataset = _ChunkSet(records, todo, opts.batch_size, Path(opts.image_folder), Path(opts.data), scorer.settings)
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=1, shuffle=False, num_workers=opts.num_workers, collate_fn=_first
    )
    kill_after = int(os.environ.get(KILL_AFTER_ENV, "0") or 0)
    done_here = 0
    bar = tqdm(total=n_chunks, initial=n_chunks - len(todo), unit="batch", desc="CLIP scores", disable=not opts.progress)
    try:
        for chunk, ids, texts, pixels in loader:
            journal.append(chunk, ids, scorer.score(pixels, texts))
            bar.update(1)
            done_here += 1
            if kill_after and done_here >= kill_after:
                os.kill(os.getpid(), signal.SIGKILL)
    finally:
        bar.close()
