"""AlignGPT as an lmms-eval model: ``lmms-eval --model aligngpt --model_args pretrained=PATH,...``.

Registration: lmms-eval loads model manifests from the ``lmms_eval.models`` entry-point group
(``lmms_eval/models/registry_v2.py``). Our pyproject declares::

    [project.entry-points."lmms_eval.models"]
    aligngpt = "aligngpt.integrations.lmms_eval_plugin:lmms_eval_manifest"

The class can also be handed to ``lmms_eval.evaluator.simple_evaluate(model=AlignGPTLMMs(...))``.

``AlignGPTLMMs`` subclasses lmms-eval's ``lmms`` base when lmms-eval is importable; otherwise a
small local stand-in with the same surface (``create_from_arg_string``, ``rank``, ``world_size``,
``task_dict``) keeps the class usable and testable without it.

Behaviour, and where it differs from lmms-eval's own ``llava`` adapter (on purpose):

* ``generate_until`` runs our batched engine (length-sorted batches, left padding, the alignment
  slot after each row's BOS: answers do not depend on the batch). Requests are grouped by the
  settings that change an answer (``max_new_tokens``, pad-to-square); ``until`` stop strings are
  applied to each answer afterwards (text is cut at the first occurrence of any of them).
  Decoding is always greedy, as the LLaVA-1.5/AlignGPT protocol is: a request asking for
  sampling (``do_sample``, ``temperature > 0``) or beams is answered greedily with a warning.
* The context becomes the user turn after ``<image>\\n`` exactly as in ``aligngpt-eval run``
  (the ``conv_template`` system prompt and roles around it); a context that already starts with
  ``<image>\\n`` is not given a second one. One image per request (AlignGPT's design).
* ``loglikelihood`` returns the *sum* of the continuation's token log-probabilities and whether
  every continuation token is the argmax (the ``lmms`` contract). lmms-eval's ``llava`` adapter
  instead returns the mean token loss of the assistant turn including its ``</s>``. The
  continuation is scored as the start of the assistant's reply: prompt + ``" "`` (the
  template's separator; none if the continuation starts with whitespace) + continuation, and
  its tokens are those of the whole string beyond the prompt's tokens (lm-eval's convention).
  Scoring runs the context first and the continuation through the KV cache, so AlignGPT's
  alignment gate (which pools the text it is given) sees the context only, as in generation;
  ``is_greedy`` therefore agrees with what ``generate_until`` produces.
"""
from __future__ import annotations

import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..data.base import Sample
from ..errors import ConfigError, DataError

log = logging.getLogger(__name__)

MODEL_ID = "aligngpt"

# Note: lmms-eval's task module sets PIL's ``ImageFile.LOAD_TRUNCATED_IMAGES = True`` for the
# whole process when it loads, so under lmms-eval truncated images are decoded as far as they go
# (lmms-eval's policy), where ``aligngpt-eval run`` stops with an error naming the file.
try:  # lmms-eval is an optional extra (pip install aligngpt[lmms])
    from lmms_eval.api.model import lmms as _LMMSBase

    HAVE_LMMS_EVAL = True
except ImportError:
    HAVE_LMMS_EVAL = False

    class _LMMSBase:  # type: ignore[no-redef]
        """Local stand-in for ``lmms_eval.api.model.lmms`` (same attributes the evaluator uses)."""

        is_simple = True

        def __init__(self) -> None:
            self._rank = 0
            self._world_size = 1
            self.task_dict: dict = {}
            self.cache_hook = None

        @classmethod
        def create_from_arg_string(cls, arg_string: str, additional_config: dict | None = None):
            args = parse_arg_string(arg_string)
            extra = {k: v for k, v in (additional_config or {}).items() if v is not None}
            return cls(**args, **extra)

        @property
        def rank(self) -> int:
            return self._rank

        @property
        def world_size(self) -> int:
            return self._world_size


def _coerce(value: str) -> Any:
    """``k=v`` values as lmms-eval's ``simple_parse_args_string`` types them."""
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    if value.isnumeric():
        return int(value)
    try:
        return float(value)
    except ValueError:
        return value


def parse_arg_string(arg_string: str) -> dict[str, Any]:
    """``"pretrained=/x,batch_size=4"`` -> ``{"pretrained": "/x", "batch_size": 4}``."""
    out: dict[str, Any] = {}
    for item in (arg_string or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"model_args: expected key=value, got {item!r}")
        out[key.strip()] = _coerce(value.strip())
    return out


def _as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}: expected true or false, got {value!r}")


def _pad_option(value: Any) -> bool | None:
    """``pad_to_square``: true/false, or None/"config"/"auto" to follow the checkpoint."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "config", "auto")):
        return None
    return _as_bool(value, "pad_to_square")


#: PIL modes a PNG stores losslessly; other modes are converted to RGB (what preprocessing does anyway).
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}

#: model_args lmms-eval passes to every model that we have no use for.
_IGNORED_ARGS = {"max_batch_size", "trust_remote_code", "use_cache", "attn_implementation", "device_map",
                 "model_name", "truncation", "truncate_context"}


def image_ref(visual: Any, *, where: str) -> bytes | Path:
    """A visual from ``doc_to_visual`` as our Sample image (encoded bytes or a file path).

    PIL images are re-encoded as PNG (lossless), so the engine decodes exactly the pixels
    lmms-eval handed over.
    """
    if isinstance(visual, (bytes, bytearray)):
        return bytes(visual)
    if isinstance(visual, dict) and visual.get("bytes"):
        return bytes(visual["bytes"])
    if isinstance(visual, (str, Path)):
        path = Path(visual)
        if path.is_file():
            return path
        raise DataError(path, f"{where}: visual is not an image file")
    if hasattr(visual, "save") and hasattr(visual, "mode"):
        image = visual if visual.mode in _PNG_MODES else visual.convert("RGB")
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        return buf.getvalue()
    raise DataError(None, f"{where}: unsupported visual of type {type(visual).__name__} (AlignGPT takes images)")


def _flatten(visuals: Any) -> list:
    if visuals is None:
        return []
    if not isinstance(visuals, (list, tuple)):
        return [visuals]
    out: list = []
    for v in visuals:
        out.extend(_flatten(v) if isinstance(v, (list, tuple)) else ([] if v is None else [v]))
    return out


@dataclass(frozen=True)
class _GenSettings:
    max_new_tokens: int
    pad_to_square: bool
    until: tuple[str, ...]


def apply_until(text: str, until: Iterable[str]) -> str:
    """Cut the answer at the earliest occurrence of any stop string (empty strings ignored)."""
    for stop in until:
        if stop:
            text = text.split(stop, 1)[0]
    return text


class AlignGPTLMMs(_LMMSBase):
    """AlignGPT / LLaVA-1.5 checkpoints in lmms-eval, on our batched engine (see module docstring).

    model_args: ``pretrained`` (folder, hub id, or ``toy``), ``device``, ``dtype``
    (float32/float16/bfloat16), ``batch_size`` (int or ``auto``), ``align_mode``, ``conv_template``
    (default ``vicuna_v1``), ``pad_to_square`` (true/false; default: the checkpoint's
    ``image_aspect_ratio``), ``max_new_tokens`` (when a task gives none; default 1024 as lmms-eval's
    llava), ``vision_tower``, ``num_workers``.
    """

    is_simple = True

    def __init__(self, pretrained: str = "toy", device: str | None = None, dtype: str | None = None,
                 batch_size: int | str = 1, align_mode: str | None = None, conv_template: str = "vicuna_v1",
                 pad_to_square: Any = None, max_new_tokens: int = 1024, vision_tower: str | None = None,
                 num_workers: int = 0, **kwargs: Any) -> None:
        super().__init__()
        unknown = sorted(set(kwargs) - _IGNORED_ARGS)
        if unknown:
            raise ConfigError(f"aligngpt model_args: unknown argument(s) {', '.join(unknown)}")
        import torch

        from ..engine.batched import InferenceEngine
        from ..modeling.loading import load_pretrained
        from ..processing.conversation import get_template

        world = int(os.environ.get("WORLD_SIZE", "1") or 1)
        if world > 1:  # `accelerate launch -m lmms_eval ...`: lmms-eval shards documents by rank
            from accelerate import Accelerator

            self.accelerator = Accelerator()
            self._rank, self._world_size = self.accelerator.process_index, self.accelerator.num_processes
            if device is None or str(device).startswith("cuda"):
                device = str(self.accelerator.device)
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if str(device) == "cuda":
            device = "cuda:0"
        get_template(str(conv_template))  # fail now on an unknown template
        if str(batch_size).strip().lower() == "auto":
            self._batch_size: int | str = "auto"
        else:
            try:
                self._batch_size = max(1, int(batch_size))
            except (TypeError, ValueError):
                raise ConfigError(f"batch_size must be an integer or 'auto', got {batch_size!r}") from None
        path: Any = pretrained
        if str(pretrained) == "toy":
            from ..harness.toy import toy_model_dir

            path = toy_model_dir()
        self.pretrained = str(pretrained)
        self.model, self.processor = load_pretrained(path, vision_tower=vision_tower, device=str(device),
                                                     dtype=dtype, align_mode=align_mode)
        self.align_mode = align_mode
        self.conv_template = str(conv_template)
        self.max_new_tokens = int(max_new_tokens)
        explicit = _pad_option(pad_to_square)
        self._pad_explicit = explicit is not None
        self.pad_to_square = explicit if explicit is not None else self.model.config.image_aspect_ratio == "pad"
        self.engine = InferenceEngine(self.model, self.processor, batch_size=8 if self._batch_size == "auto" else self._batch_size,
                                      num_workers=int(num_workers), align_mode=align_mode)
        self._warned_sampling = False

    # -- properties lmms-eval reads
    @property
    def batch_size(self) -> int | str:
        return self._batch_size

    @property
    def device(self):
        return self.engine.device

    # -- request parsing
    def _doc(self, task: str, split: str, doc_id: Any):
        try:
            return self.task_dict[task][split][doc_id]
        except (KeyError, IndexError, TypeError):
            raise ConfigError(f"document {doc_id} of {task}/{split} is not in model.task_dict (lmms-eval's "
                              "simple_evaluate fills it; set it yourself when calling the model directly)") from None

    def _visuals(self, doc_to_visual: Any, doc_id: Any, task: str | None, split: str | None) -> list:
        if callable(doc_to_visual):
            return _flatten(doc_to_visual(self._doc(task, split, doc_id)))
        return _flatten(doc_to_visual)

    def _sample(self, index: int, context: Any, visuals: Sequence[Any], where: str) -> Sample:
        if isinstance(context, list):  # lmms-eval passes a list for some multi-turn contexts
            context = context[0] if len(context) == 1 else "\n".join(map(str, context))
        if not isinstance(context, str):
            raise DataError(None, f"{where}: context must be a string, got {type(context).__name__}")
        if len(visuals) > 1:
            raise DataError(None, f"{where}: {len(visuals)} images; AlignGPT takes one image per question")
        image = image_ref(visuals[0], where=where) if visuals else None
        question = context
        if image is not None and question.startswith("<image>\n"):
            question = question[len("<image>\n"):]
        if "<image>" in question:
            raise DataError(None, f"{where}: the context holds an <image> placeholder "
                                  + ("but the request has no image" if image is None else
                                     "that is not at its start; AlignGPT puts the image before the question"))
        return Sample(question_id=f"request-{index}", question=question, image=image)

    def _generation_settings(self, gen_kwargs: Any) -> _GenSettings:
        kw = dict(gen_kwargs or {})
        until = kw.pop("until", None)
        if until is None:
            until = []
        elif isinstance(until, str):
            until = [until]
        elif not isinstance(until, (list, tuple)):
            raise ConfigError(f"gen_kwargs['until'] must be a string or a list, got {type(until).__name__}")
        max_new = kw.pop("max_new_tokens", None)
        max_new = self.max_new_tokens if max_new is None else int(max_new)
        pad = self.pad_to_square
        aspect = kw.pop("image_aspect_ratio", None)
        if aspect is not None and not self._pad_explicit:
            pad = str(aspect) == "pad"
        sampling = _as_bool(kw.pop("do_sample", False) or False, "do_sample") or float(kw.pop("temperature", 0) or 0) > 0
        beams = int(kw.pop("num_beams", 1) or 1)
        if (sampling or beams > 1) and not self._warned_sampling:
            log.warning("aligngpt: sampling/beam search requested; answering greedily (the LLaVA-1.5 protocol)")
            self._warned_sampling = True
        return _GenSettings(max_new, bool(pad), tuple(str(u) for u in until))

    # -- lmms API
    def generate_until(self, requests) -> list[str]:
        from ..engine.autobatch import auto_batch_size

        parsed: list[tuple[Sample, _GenSettings]] = []
        groups: dict[tuple[int, bool], list[int]] = {}
        for i, req in enumerate(requests):
            args = tuple(req.args)
            if len(args) == 6:
                context, gen_kwargs, doc_to_visual, doc_id, task, split = args
            elif len(args) in (2, 3):
                context, gen_kwargs = args[0], args[1]
                doc_to_visual, doc_id, task, split = (args[2] if len(args) == 3 else None), None, None, None
            else:
                raise DataError(None, f"generate_until request {i}: expected 6 arguments, got {len(args)}")
            where = f"{task}/{split} doc {doc_id}" if task else f"request {i}"
            sample = self._sample(i, context, self._visuals(doc_to_visual, doc_id, task, split), where)
            settings = self._generation_settings(gen_kwargs)
            parsed.append((sample, settings))
            groups.setdefault((settings.max_new_tokens, settings.pad_to_square), []).append(i)

        texts: list[str | None] = [None] * len(parsed)
        for (max_new, pad), members in groups.items():
            samples = [parsed[i][0] for i in members]
            size = self._batch_size
            if size == "auto":
                size = auto_batch_size(self.engine, samples, template=self.conv_template, max_new_tokens=max_new,
                                       pad_to_square=pad)
            predictions, _ = self.engine.generate(samples, template=self.conv_template, max_new_tokens=max_new,
                                                  pad_to_square=pad, batch_size=int(size))
            by_key = {p.key: p.text for p in predictions}
            for i in members:
                sample, settings = parsed[i]
                texts[i] = apply_until(by_key[sample.key], settings.until)
                hook = getattr(self, "cache_hook", None)
                if hook is not None:
                    hook.add_partial("generate_until", (requests[i].args[0], requests[i].args[1]), texts[i])
        return [t if t is not None else "" for t in texts]

    def loglikelihood(self, requests) -> list[tuple[float, bool]]:
        from ..data.images import open_image
        from ..processing.conversation import get_template

        joiner = "" if get_template(self.conv_template).style == "plain" else " "
        items = []  # (request index, token ids, continuation length, sample)
        keys = []  # (context, continuation): the cache key lm-eval uses
        for i, req in enumerate(requests):
            args = tuple(req.args)
            if len(args) == 6:
                context, target, doc_to_visual, doc_id, task, split = args
                continuation = target if isinstance(target, str) else target(self._doc(task, split, doc_id))
            elif len(args) in (2, 3):
                context, continuation = args[0], args[1]
                doc_to_visual, doc_id, task, split = (args[2] if len(args) == 3 else None), None, None, None
            else:
                raise DataError(None, f"loglikelihood request {i}: expected 6 arguments, got {len(args)}")
            where = f"{task}/{split} doc {doc_id}" if task else f"request {i}"
            sample = self._sample(i, context, self._visuals(doc_to_visual, doc_id, task, split), where)
            if not isinstance(continuation, str) or not continuation:
                raise DataError(None, f"{where}: the continuation must be a non-empty string")
            prompt = self.processor.build_prompt(sample.question, has_image=sample.has_image, template=self.conv_template)
            reply = continuation if continuation[:1].isspace() else joiner + continuation
            ctx_ids = self.processor.tokenize(prompt)
            full_ids = self.processor.tokenize(prompt + reply)
            n = len(full_ids) - len(ctx_ids)
            if n <= 0:
                raise DataError(None, f"{where}: the continuation {continuation!r} adds no tokens")
            items.append((i, full_ids, n, sample))
            keys.append((context, continuation))

        results: list[tuple[float, bool] | None] = [None] * len(items)
        size = 8 if self._batch_size == "auto" else int(self._batch_size)
        order = sorted(range(len(items)), key=lambda j: (-len(items[j][1]), j))
        for start in range(0, len(order), size):
            batch = [items[j] for j in order[start:start + size]]
            scored = self._score_batch(batch, open_image)
            for (i, _, _, _), result in zip(batch, scored):
                results[i] = result
                hook = getattr(self, "cache_hook", None)
                if hook is not None:
                    hook.add_partial("loglikelihood", keys[i], result)
        return list(results)  # type: ignore[arg-type]

    def _score_batch(self, batch, open_image) -> list[tuple[float, bool]]:
        """Two passes, as generation sees it: prefill the context (the alignment gate reads the
        context only, exactly as at generation time), then feed the continuation through the
        KV cache. One teacher-forced pass over context + continuation would let the
        continuation's words move AlignGPT's gate (it pools the text embeddings), so its scores
        would not be those of the model that generates."""
        import torch
        from transformers.cache_utils import DynamicCache

        device = self.engine.device
        contexts = [full[: len(full) - n] for _, full, n, _ in batch]
        continuations = [full[len(full) - n:] for _, full, n, _ in batch]
        input_ids, attention_mask = self.processor.pad(contexts, padding_side="left")
        pixels = []
        for _, _, _, sample in batch:
            if sample.image is not None:
                image = open_image(sample.image, item=str(sample.question_id))
                pixels.append(self.processor.preprocess_images([image], self.pad_to_square)[0])
        with torch.inference_mode():
            first = self.model(input_ids=input_ids.to(device), attention_mask=attention_mask.to(device),
                               images=torch.stack(pixels).to(device) if pixels else None, align_mode=self.align_mode,
                               padding_side="left", use_cache=True, cache=DynamicCache(config=self.model.config),
                               logits_to_keep=1)
            steps = [torch.log_softmax(first.logits[:, -1].float(), dim=-1)]  # predicts continuation token 0
            longest = max(len(c) for c in continuations)
            if longest > 1:
                # Continuation tokens 0..k-2 go in (right-padded); position j predicts token j+1.
                feed, feed_mask = self.processor.pad([c[:-1] for c in continuations], padding_side="right")
                feed, feed_mask = feed.to(device), feed_mask.to(device)
                mask = torch.cat([first.attention_mask, feed_mask.to(first.attention_mask.dtype)], dim=1)
                positions = first.position_ids[:, -1:] + 1 + torch.arange(feed.shape[1], device=device)[None, :]
                second = self.model(input_ids=feed, attention_mask=mask, position_ids=positions, cache=first.cache,
                                    use_cache=True)
                steps.append(torch.log_softmax(second.logits.float(), dim=-1))
        out = []
        for row, tokens in enumerate(continuations):
            lp = steps[0][row][None, :]
            if len(tokens) > 1:
                lp = torch.cat([lp, steps[1][row, : len(tokens) - 1]], dim=0)
            target = torch.tensor(tokens, device=lp.device)
            token_lp = lp.gather(-1, target[:, None]).squeeze(-1)
            out.append((float(token_lp.sum()), bool((lp.argmax(dim=-1) == target).all())))
        return out

    def generate_until_multi_round(self, requests) -> list[str]:
        raise NotImplementedError("aligngpt: multi-round generation is not supported (single-turn protocol)")


def lmms_eval_manifest():
    """Entry point for lmms-eval's ``lmms_eval.models`` group: the ``aligngpt`` model manifest."""
    try:
        from lmms_eval.models.registry_v2 import ModelManifest
    except ImportError as exc:
        raise ConfigError("this lmms-eval has no lmms_eval.models.registry_v2; pass AlignGPTLMMs(...) to "
                          "simple_evaluate instead") from exc
    return ModelManifest(model_id=MODEL_ID, simple_class_path=f"{__name__}.AlignGPTLMMs")
