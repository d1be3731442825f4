"""Turning validated chat requests into model inputs, and batches of them into answers.

Work is split by thread: :meth:`ModelRunner.prepare` (tokenising, decoding and preprocessing the
image) runs in each request's own HTTP thread, so only ``model.generate`` itself is serialised
in the batching worker (:meth:`ModelRunner.run_batch`). Rows are left-padded exactly as
``processor(prompts, images)`` pads them, so a greedy answer is what ``model.generate`` gives
for that prompt alone: our model's greedy rows do not depend on the other rows of the batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..data.images import open_image
from ..errors import DataError
from ..processing.conversation import get_template
from .prompt import render_chat
from .protocol import ApiError, ChatRequest, Decoding, bad_request


@dataclass
class Prepared:
    """One request ready for the batch: token ids (``-200`` at the image), pixels, settings."""

    token_ids: list[int]
    pixels: torch.Tensor | None
    decoding: Decoding
    stop: list[str]
    prompt_tokens: int


@dataclass
class Completion:
    text: str
    finish_reason: str
    """``stop`` (end of sequence or a stop string) or ``length`` (``max_tokens`` reached)."""
    prompt_tokens: int
    completion_tokens: int


def trim_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest occurrence of any stop string (OpenAI semantics)."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


class ModelRunner:
    """Owns the model and processor; ``name`` is what responses report as ``model``."""

    def __init__(self, model, processor, *, name: str, template: str | None = None):
        self.model = model
        self.processor = processor
        self.name = name
        self.template = template or getattr(processor, "template", None) or "vicuna_v1"
        get_template(self.template)  # an unknown name fails at start-up (ConfigError), not per request
        cfg = model.config
        self.eos_token_id = cfg.eos_token_id
        self.num_image_tokens = int(getattr(cfg, "num_image_tokens", 0) or 0)
        self.max_prompt = getattr(cfg, "tokenizer_model_max_length", None)
        self.max_positions = getattr(cfg, "max_position_embeddings", None)
        self.alignment_slot = int(
            getattr(model, "align_indicators", None) is not None
            and bool(getattr(cfg, "use_alignment", False))
            and getattr(cfg, "align_mode", "none") not in (None, "none")
        )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # ---- request thread ---------------------------------------------------------------

    def prompt_for(self, request: ChatRequest) -> str:
        return render_chat(request.turns, request.system, self.template)

    def sequence_length(self, token_ids: Sequence[int], has_image: bool) -> int:
        """Positions the language model sees: text, image patches, and the alignment slot."""
        if not has_image:
            return len(token_ids)
        return len(token_ids) - 1 + self.num_image_tokens + self.alignment_slot

    def prepare(self, request: ChatRequest) -> Prepared:
        """Tokenise and preprocess; refuses undecodable images and prompts beyond the context.

        Why refuse: the reference model silently cuts image prompts to the tokenizer's maximum
        length, which would answer a different question than the one asked.
        """
        prompt = self.prompt_for(request)
        pixels = None
        if request.image is not None:
            if getattr(self.model, "vision_tower", None) is None:
                raise bad_request("this model has no vision tower; it cannot take images", code="image_not_supported")
            try:
                image = open_image(request.image, item="image_url")
            except DataError as exc:
                raise bad_request(exc.message, code="invalid_image") from None
            try:
                pixels = self.processor.preprocess_images([image])[0]
            except (OSError, ValueError) as exc:
                raise bad_request(f"image_url: cannot preprocess image ({exc})", code="invalid_image") from None
        token_ids = self.processor.tokenize(prompt)
        length = self.sequence_length(token_ids, pixels is not None)
        # The reference cuts image rows (before the alignment slot) to max_prompt - 1 positions.
        if pixels is not None and self.max_prompt and length - self.alignment_slot > self.max_prompt - 1:
            raise bad_request(f"the prompt is {length} tokens with the image; this model reads at most "
                              f"{self.max_prompt}", code="context_length_exceeded", param="messages")
        decoding = request.decoding
        if self.max_positions:
            room = self.max_positions - length
            if room < 1:
                raise bad_request(f"the prompt is {length} tokens; no room left for an answer "
                                  f"within {self.max_positions} positions", code="context_length_exceeded",
                                  param="messages")
            if decoding.max_tokens > room:
                decoding = Decoding(room, decoding.temperature, decoding.top_p, decoding.seed)
        return Prepared(token_ids, pixels, decoding, list(request.stop), length)

    # ---- worker thread ----------------------------------------------------------------

    def run_batch(self, items: Sequence[Prepared]) -> list[Completion]:
        """One ``model.generate`` for requests sharing a batch key (same decoding settings)."""
        if not items:
            return []
        settings = items[0].decoding
        device = self.device
        input_ids, attention_mask = self.processor.pad([it.token_ids for it in items], padding_side="left")
        pixels = [it.pixels for it in items if it.pixels is not None]
        images = torch.stack(pixels).to(device) if pixels else None
        generator = None
        if not settings.greedy and settings.seed is not None:
            generator = torch.Generator(device=device).manual_seed(settings.seed)
        sequences = self.model.generate(
            input_ids=input_ids.to(device),
            attention_mask=attention_mask.to(device),
            images=images,
            max_new_tokens=settings.max_tokens,
            do_sample=not settings.greedy,
            temperature=settings.temperature if not settings.greedy else 1.0,
            top_p=settings.top_p,
            eos_token_id=self.eos_token_id,
            generator=generator,
        )
        rows = sequences.cpu().tolist()
        return [self._finish(item, row) for item, row in zip(items, rows)]

    def _finish(self, item: Prepared, row: list[int]) -> Completion:
        eos = self.eos_token_id  # one id, or several (chat models also stop at their end-of-turn token)
        stops = set(eos) if isinstance(eos, (list, tuple)) else ({eos} if eos is not None else set())
        cut = next((i for i, t in enumerate(row) if t in stops), None)
        hit_eos = cut is not None
        produced = row[:cut] if hit_eos else row[: item.decoding.max_tokens]
        text = self.processor.batch_decode([produced], skip_special_tokens=True)[0].strip()
        if text.endswith("</s>"):  # as the evaluation engine: a literal end marker is not answer text
            text = text[: -len("</s>")].strip()
        text, stopped = trim_at_stop(text, item.stop)
        finish = "stop" if hit_eos or stopped else "length"
        n_tokens = len(produced) + (1 if hit_eos else 0)
        return Completion(text, finish, item.prompt_tokens, n_tokens)


def service_unavailable(message: str) -> ApiError:
    return ApiError(503, message, type="server_error", code="service_unavailable", headers={"Retry-After": "1"})
