"""The OpenAI chat-completions wire format: validating requests, shaping responses and errors.

Why a hand-written validator: the server is reachable by any local process, so every field is
checked for type and range before anything touches the model, and every refusal is an
OpenAI-style ``{"error": {...}}`` body with a status code a client can act on (400 fix the
request, 413 too big, 429 retry later, 503 server not ready).

Accepted request fields: ``model`` (any name: one model is served), ``messages``,
``max_tokens`` (alias ``max_completion_tokens``; capped at the server limit), ``temperature``
(0 or absent -> greedy), ``top_p``, ``seed``, ``n`` (1 only), ``stop``, ``stream`` (false only).
Other OpenAI fields (``user``, ``presence_penalty``, ...) are ignored, as most OpenAI-compatible
servers do, so stock clients work unchanged.
"""
from __future__ import annotations

import base64
import binascii
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

#: OpenAI's own limit on ``stop`` sequences.
MAX_STOP_SEQUENCES = 4
#: The placeholder our tokenizer turns into the image slot; user text may not contain it.
IMAGE_TOKEN = "<image>"


class ApiError(Exception):
    """A refusal with an HTTP status, shown to the client as ``{"error": {message, type, code}}``."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error",
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}


def bad_request(message: str, code: str = "invalid_value", param: str | None = None) -> ApiError:
    text = f"{param}: {message}" if param else message
    return ApiError(400, text, code=code)


@dataclass(frozen=True)
class Turn:
    """One normalised conversation turn: role, text, and whether it carries the image."""

    role: str
    text: str
    has_image: bool = False


@dataclass(frozen=True)
class Decoding:
    """The settings that decide which requests can share one ``model.generate`` call."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def batch_key(self) -> tuple | None:
        """Requests with equal keys may be batched; ``None`` means "run alone".

        Greedy rows do not influence each other, so greedy requests batch by ``max_tokens``.
        Unseeded sampling batches by all its settings. A seeded sampled request runs alone:
        sharing the random stream with other rows would make its answer depend on them.
        """
        if self.greedy:
            return ("greedy", self.max_tokens)
        if self.seed is not None:
            return None
        return ("sample", self.max_tokens, self.temperature, self.top_p)


@dataclass
class ChatRequest:
    """A validated request: conversation turns, the image bytes (if any), decoding settings."""

    model: str | None
    system: str | None
    turns: list[Turn]
    image: bytes | None
    decoding: Decoding
    stop: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- field checks


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value  # not NaN


def _max_tokens(body: dict, limit: int) -> int:
    value = body.get("max_tokens")
    if value is None:
        value = body.get("max_completion_tokens")
    if value is None:
        return limit
    if not _is_int(value) or value < 1:
        raise bad_request("must be an integer >= 1", param="max_tokens")
    return min(value, limit)  # capped, not refused: finish_reason "length" tells the client


def _temperature(body: dict) -> float:
    value = body.get("temperature")
    if value is None:
        return 0.0
    if not _is_number(value) or not 0.0 <= value <= 2.0:
        raise bad_request("must be a number in [0, 2]", param="temperature")
    return float(value)


def _top_p(body: dict) -> float | None:
    value = body.get("top_p")
    if value is None:
        return None
    if not _is_number(value) or not 0.0 < value <= 1.0:
        raise bad_request("must be a number in (0, 1]", param="top_p")
    return None if value >= 1.0 else float(value)


def _seed(body: dict) -> int | None:
    value = body.get("seed")
    if value is None:
        return None
    if not _is_int(value) or not -(2**63) <= value < 2**64:
        raise bad_request("must be a 64-bit integer", param="seed")
    return value % (2**64)  # torch.Generator.manual_seed takes [0, 2**64)


def _stop(body: dict) -> list[str]:
    value = body.get("stop")
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items):
        raise bad_request("must be a non-empty string or a list of non-empty strings", param="stop")
    if len(items) > MAX_STOP_SEQUENCES:
        raise bad_request(f"at most {MAX_STOP_SEQUENCES} stop sequences", param="stop")
    return list(items)


def _refuse_unsupported(body: dict) -> None:
    n = body.get("n")
    if n is not None and (not _is_int(n) or n != 1):
        raise bad_request("only n=1 is supported", code="unsupported_value", param="n")
    if body.get("stream") not in (None, False):
        raise bad_request("streaming is not supported", code="unsupported_value", param="stream")


# --------------------------------------------------------------------------- images


def decode_data_url(url: Any, *, max_bytes: int) -> bytes:
    """The bytes of a ``data:image/...;base64,...`` URL.

    Only data URLs: the server never fetches anything (no SSRF, no network from a loopback
    service). Decoding the image itself happens later with the project's safe opener.
    """
    if not isinstance(url, str) or not url:
        raise bad_request("must be a string", param="image_url.url")
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("http", "https"):
        raise bad_request("remote image URLs are not fetched; send the image as a data URL "
                          "(data:image/png;base64,...)", code="unsupported_image_url", param="image_url.url")
    if scheme != "data":
        raise bad_request("only data: URLs are accepted", code="unsupported_image_url", param="image_url.url")
    header, sep, payload = url[5:].partition(",")
    if not sep:
        raise bad_request("malformed data URL (no comma)", code="invalid_image", param="image_url.url")
    params = [p.strip().lower() for p in header.split(";")]
    if not params[0].startswith("image/"):
        raise bad_request(f"data URL media type must be image/*, got {params[0][:40]!r}",
                          code="invalid_image", param="image_url.url")
    if "base64" not in params[1:]:
        raise bad_request("data URL must be base64-encoded", code="invalid_image", param="image_url.url")
    payload = re.sub(r"\s+", "", payload)
    if len(payload) * 3 // 4 > max_bytes:
        raise ApiError(413, "image too large", type="invalid_request_error", code="image_too_large")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("data URL payload is not valid base64", code="invalid_image", param="image_url.url") from None
    if not data:
        raise bad_request("data URL holds no bytes", code="invalid_image", param="image_url.url")
    return data


# --------------------------------------------------------------------------- messages


def _content(message: dict, index: int, *, max_image_bytes: int) -> tuple[str, bytes | None]:
    """Text and optional image of one message (``content`` as a string or a list of parts)."""
    where = f"messages[{index}].content"
    content = message.get("content")
    if isinstance(content, str):
        return content, None
    if not isinstance(content, list):
        raise bad_request("must be a string or a list of content parts", param=where)
    texts: list[str] = []
    image: bytes | None = None
    for j, part in enumerate(content):
        pw = f"{where}[{j}]"
        if not isinstance(part, dict):
            raise bad_request("must be an object", param=pw)
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise bad_request("text must be a string", param=pw)
            texts.append(text)
        elif kind == "image_url":
            ref = part.get("image_url")
            url = ref.get("url") if isinstance(ref, dict) else ref
            if image is not None:
                raise bad_request("at most one image per conversation (the model takes one)",
                                  code="too_many_images", param=pw)
            image = decode_data_url(url, max_bytes=max_image_bytes)
        else:
            raise bad_request(f"unsupported content part type {str(kind)[:40]!r} (text, image_url)", param=pw)
    return "\n".join(texts), image


def parse_chat_request(body: Any, *, max_new_tokens_limit: int, max_image_bytes: int) -> ChatRequest:
    """Validate a decoded JSON body into a :class:`ChatRequest` (raises :class:`ApiError`).

    Conversation rules (the model's chat template alternates USER / ASSISTANT and ends with an
    open assistant turn): system messages come first and are joined with newlines; consecutive
    messages of one role are merged with a newline; the last turn must be the user's; at most
    one image in the whole conversation, and only in a user message.
    """
    if not isinstance(body, dict):
        raise bad_request("request body must be a JSON object")
    _refuse_unsupported(body)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad_request("must be a string", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("must be a non-empty list", param="messages")

    system_parts: list[str] = []
    turns: list[Turn] = []
    image: bytes | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise bad_request("must be an object", param=f"messages[{i}]")
        role = message.get("role")
        if role not in ("system", "user", "assistant"):
            raise bad_request("role must be system, user or assistant", param=f"messages[{i}].role")
        text, img = _content(message, i, max_image_bytes=max_image_bytes)
        if IMAGE_TOKEN in text:
            raise bad_request(f"text may not contain the image placeholder {IMAGE_TOKEN!r}; "
                              "send images as image_url parts", param=f"messages[{i}].content")
        if img is not None:
            if role != "user":
                raise bad_request("only user messages may carry an image", param=f"messages[{i}].content")
            if image is not None:
                raise bad_request("at most one image per conversation (the model takes one)",
                                  code="too_many_images", param=f"messages[{i}].content")
            image = img
        if role == "system":
            if turns:
                raise bad_request("system messages must come before the conversation", param=f"messages[{i}]")
            system_parts.append(text)
            continue
        if turns and turns[-1].role == role:
            prev = turns[-1]
            turns[-1] = Turn(role, prev.text + "\n" + text if prev.text and text else prev.text or text,
                             prev.has_image or img is not None)
        else:
            turns.append(Turn(role, text, img is not None))
    if not turns or turns[0].role != "user":
        raise bad_request("the conversation must start with a user message", param="messages")
    if turns[-1].role != "user":
        raise bad_request("the last message must be a user message (assistant prefill is not supported)",
                          param="messages")
    for turn in turns:
        if not turn.text and not turn.has_image:
            raise bad_request(f"empty {turn.role} message", param="messages")

    decoding = Decoding(
        max_tokens=_max_tokens(body, max_new_tokens_limit),
        temperature=_temperature(body),
        top_p=_top_p(body),
        seed=_seed(body),
    )
    system = "\n".join(system_parts) if system_parts else None
    return ChatRequest(model=model, system=system, turns=turns, image=image, decoding=decoding, stop=_stop(body))


# --------------------------------------------------------------------------- responses


def completion_body(*, model: str, content: str, finish_reason: str, prompt_tokens: int,
                    completion_tokens: int, created: int | None = None) -> dict:
    """A ``chat.completion`` object in the OpenAI schema."""
    return {
        "id": "chatcmpl-" + uuid.uuid4().hex,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": finish_reason,
            "logprobs": None,
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def models_body(model: str, created: int) -> dict:
    return {"object": "list", "data": [{"id": model, "object": "model", "created": created, "owned_by": "aligngpt"}]}
