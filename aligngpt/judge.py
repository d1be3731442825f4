"""LLM-judge client for any OpenAI-compatible ``/v1/chat/completions`` endpoint.

Why a client of our own: the judge-scored benchmarks (LLaVA-Bench, MM-Vet, the MMBench
fallback) must (1) send exactly the official request, (2) never turn a failed call into a score,
(3) not pay twice for the same judgement, and (4) record which judge produced a number. The
official scripts do none of (2)-(4).

* Transport: ``urllib.request`` only (no new dependency). Retries with exponential backoff on
  HTTP 429, 5xx, time-outs, connection errors and unreadable (non-JSON / no ``choices``)
  bodies; other 4xx fail at once. A call that still fails returns ``JudgeReply(ok=False)``;
  evaluators record it as *missing*.
* Concurrency: at most ``max_concurrency`` HTTP calls in flight (semaphore), and
  :meth:`JudgeClient.map` runs per-sample work on a thread pool of that size.
* Cache: a sqlite3 file keyed by ``sha256(judge model, full request body[, salt])``. A re-score
  with the same judge and inputs makes no HTTP call. Only successful, non-empty replies are
  cached, so a re-run retries failures. The API key travels only in the ``Authorization``
  header: it is never part of the body, the cache, the stats, ``repr`` or any error message.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import random
import socket
import sqlite3
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, TypeVar

from .errors import ConfigError

try:  # the evaluator contract lives in the sibling package
    from aligngpt.evaluators.base import ScoreResult
except ImportError:  # pragma: no cover - only if the evaluators package is absent
    ScoreResult = object  # type: ignore[misc,assignment]

T = TypeVar("T")
R = TypeVar("R")


# --------------------------------------------------------------------------- replies, stats


@dataclass
class JudgeReply:
    """One judgement request's outcome. ``ok=False`` means *no judgement* (never a score)."""

    ok: bool
    content: str | None = None
    error: str | None = None
    cached: bool = False
    served_model: str | None = None
    """The ``model`` field of the response (the snapshot that actually answered)."""
    usage: dict | None = None
    http_calls: int = 0


@dataclass
class JudgeStats:
    """Counters of one client; subtract two snapshots to get one evaluation's share."""

    n_requests: int = 0
    """Judgement requests sent to the server (not answered from the cache)."""
    n_cached: int = 0
    n_failed: int = 0
    n_http_calls: int = 0
    """HTTP calls including retries."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    served_models: frozenset = frozenset()

    def __sub__(self, other: "JudgeStats") -> "JudgeStats":
        return JudgeStats(
            n_requests=self.n_requests - other.n_requests,
            n_cached=self.n_cached - other.n_cached,
            n_failed=self.n_failed - other.n_failed,
            n_http_calls=self.n_http_calls - other.n_http_calls,
            prompt_tokens=self.prompt_tokens - other.prompt_tokens,
            completion_tokens=self.completion_tokens - other.completion_tokens,
            total_tokens=self.total_tokens - other.total_tokens,
            served_models=self.served_models,
        )


class Judge(Protocol):
    """What the evaluators need from a judge (``JudgeClient`` or a test double)."""

    model: str

    def chat(self, messages: Sequence[Mapping[str, str]], *, temperature: float | None = None,
             max_tokens: int | None = None, salt: Any = None, **params: Any) -> JudgeReply: ...

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]: ...

    def stats(self) -> JudgeStats: ...

    def describe(self) -> dict: ...


@dataclass
class JudgedScoreResult(ScoreResult):  # type: ignore[misc,valid-type]
    """A ``ScoreResult`` that also says how many judgements are missing (CLI exits non-zero if > 0)."""

    missing: int = 0


# --------------------------------------------------------------------------- cache


def cache_key(model: str, body: Mapping[str, Any], salt: Any = None) -> str:
    """sha256 over the judge model and the canonical JSON of the full request body.

    ``salt`` separates deliberate repeats of an identical request (a retry after an unusable
    reply, the k-th of several grading runs); ``None`` leaves the key as (model, body) only.
    """
    material: dict[str, Any] = {"model": model, "body": body}
    if salt is not None:
        material["salt"] = salt
    text = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class JudgeCache:
    """Persistent judgement store in one sqlite3 file (safe across threads and processes)."""

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS judgements ("
        " key TEXT PRIMARY KEY, judge_model TEXT NOT NULL, request TEXT NOT NULL,"
        " content TEXT NOT NULL, served_model TEXT, usage TEXT, created REAL NOT NULL)"
    )

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._conn = sqlite3.connect(str(self.path), timeout=30.0, check_same_thread=False)
            with self._conn:
                self._conn.execute(self._SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise ConfigError(f"{self.path}: not a usable judge cache ({exc})") from None

    def get(self, key: str) -> dict | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT content, served_model, usage FROM judgements WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        return {"content": row[0], "served_model": row[1], "usage": json.loads(row[2]) if row[2] else None}

    def put(self, key: str, judge_model: str, body: Mapping[str, Any], reply: JudgeReply) -> None:
        request = json.dumps(body, sort_keys=True, ensure_ascii=False)
        usage = json.dumps(reply.usage) if reply.usage is not None else None
        with self._lock, self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO judgements VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, judge_model, request, reply.content, reply.served_model, usage, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM judgements").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


# --------------------------------------------------------------------------- client


class _Retriable(Exception):
    """A failure worth another try (429, 5xx, time-out, connection, unreadable body)."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class _Fatal(Exception):
    """A failure that another try will not fix (400, 401, 404, ...)."""


def _redact_url(url: str) -> str:
    """Drop credentials, query and fragment from a URL before it is recorded anywhere."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


class JudgeClient:
    """Calls an OpenAI-compatible chat-completions endpoint; see the module docstring.

    ``base_url`` is the API root (``https://api.openai.com/v1``, ``http://127.0.0.1:8000/v1``);
    ``/chat/completions`` is appended unless already there. ``api_key_env`` is the *name* of
    the environment variable holding the key (read once, here). ``temperature``: ``None``
    keeps each protocol's own temperature (LLaVA-Bench 0.2, MM-Vet 0.0 with its retry ramp,
    MMBench 0.7); a number overrides every request and is recorded in :meth:`describe`.
    ``backoff_base`` seconds doubles per retry up to ``backoff_max`` (tests use ~0.001).
    ``price_per_million`` = (input USD, output USD) per 1M tokens gives a cost estimate.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None = None,
        cache_path: str | Path | None = None,
        max_concurrency: int = 4,
        max_retries: int = 5,
        timeout: float = 60.0,
        temperature: float | None = None,
        *,
        backoff_base: float = 1.0,
        backoff_max: float = 60.0,
        price_per_million: tuple[float, float] | None = None,
    ):
        parts = urllib.parse.urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"judge base URL must be http(s)://host[:port]/path, got {_redact_url(base_url or '')!r}")
        if not model:
            raise ConfigError("judge model name is empty")
        if max_concurrency < 1 or max_retries < 0 or timeout <= 0:
            raise ConfigError("judge max_concurrency must be >= 1, max_retries >= 0, timeout > 0")
        root = base_url.rstrip("/")
        self.endpoint = root if root.endswith("/chat/completions") else root + "/chat/completions"
        self.base_url = _redact_url(root)
        self.model = model
        self.max_concurrency = int(max_concurrency)
        self.max_retries = int(max_retries)
        self.timeout = float(timeout)
        self.temperature = temperature
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.price_per_million = price_per_million
        self._api_key: str | None = None
        if api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                raise ConfigError(f"environment variable {api_key_env} (the judge API key) is not set")
            self._api_key = key
        self.cache = JudgeCache(cache_path) if cache_path is not None else None
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self._lock = threading.Lock()
        self._stats = JudgeStats()
        self._served: set[str] = set()

    def __repr__(self) -> str:  # never shows the key
        cache = str(self.cache.path) if self.cache else None
        return f"JudgeClient(model={self.model!r}, base_url={self.base_url!r}, cache={cache!r})"

    # ---- public API -------------------------------------------------------------------

    def build_body(self, messages: Sequence[Mapping[str, str]], *, temperature: float | None = None,
                   max_tokens: int | None = None, **params: Any) -> dict:
        """The exact JSON body sent (and hashed for the cache)."""
        body: dict[str, Any] = {"model": self.model, "messages": [dict(m) for m in messages]}
        temp = self.temperature if self.temperature is not None else temperature
        if temp is not None:
            body["temperature"] = temp
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        body.update(params)
        return body

    def chat(self, messages: Sequence[Mapping[str, str]], *, temperature: float | None = None,
             max_tokens: int | None = None, salt: Any = None, **params: Any) -> JudgeReply:
        """One judgement: from the cache if present, else over HTTP (with retries)."""
        body = self.build_body(messages, temperature=temperature, max_tokens=max_tokens, **params)
        key = cache_key(self.model, body, salt)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                with self._lock:
                    self._stats = replace(self._stats, n_cached=self._stats.n_cached + 1)
                    if hit["served_model"]:
                        self._served.add(hit["served_model"])
                return JudgeReply(ok=True, content=hit["content"], cached=True,
                                  served_model=hit["served_model"], usage=hit["usage"])
        with self._slots:
            reply = self._post(body)
        self._account(reply)
        if reply.ok and reply.content and self.cache is not None:
            self.cache.put(key, self.model, body, reply)
        return reply

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
        """``[fn(x) for x in items]`` on ``max_concurrency`` threads, results in input order."""
        items = list(items)
        if len(items) <= 1 or self.max_concurrency == 1:
            return [fn(x) for x in items]
        with ThreadPoolExecutor(max_workers=self.max_concurrency) as pool:
            return list(pool.map(fn, items))

    def stats(self) -> JudgeStats:
        with self._lock:
            return replace(self._stats, served_models=frozenset(self._served))

    def describe(self) -> dict:
        """Identity of the judge for results files (no secrets)."""
        return {"model": self.model, "base_url": self.base_url, "temperature_override": self.temperature}

    def cost(self, stats: JudgeStats) -> float | None:
        if self.price_per_million is None:
            return None
        p_in, p_out = self.price_per_million
        return stats.prompt_tokens * p_in / 1e6 + stats.completion_tokens * p_out / 1e6

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def __enter__(self) -> "JudgeClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport --------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def _scrub(self, text: str) -> str:
        """``text`` with the API key replaced (error messages end up in samples files and logs)."""
        return text.replace(self._api_key, "[redacted]") if self._api_key else text

    def _once(self, payload: bytes) -> JudgeReply:
        request = urllib.request.Request(self.endpoint, data=payload, headers=self._headers(), method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            status = exc.code
            try:  # read enough to scrub a key echoed anywhere in the part we quote
                snippet = self._scrub(exc.read(65536).decode("utf-8", "replace"))
            except Exception:  # noqa: BLE001 - the body is only for the message
                snippet = ""
            finally:
                exc.close()
            # A server may echo the Authorization header in its error body: never keep the key.
            message = f"HTTP {status} from judge: {snippet.strip()[:200]}"
            if status == 429 or status >= 500:
                raise _Retriable(message, _retry_after(exc.headers)) from None
            raise _Fatal(message) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Retriable(self._scrub(f"judge connection failed: {type(reason).__name__}: {reason}")) from None
        if self._api_key and self._api_key.encode() in raw:  # never quote, cache or record the key
            raw = raw.replace(self._api_key.encode(), b"[redacted]")
        return _parse_completion(raw)

    def _post(self, body: Mapping[str, Any]) -> JudgeReply:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        calls = 0
        last_error = "no attempt made"
        for attempt in range(self.max_retries + 1):
            calls += 1
            try:
                reply = self._once(payload)
                reply.http_calls = calls
                return reply
            except _Fatal as exc:
                return JudgeReply(ok=False, error=str(exc), http_calls=calls)
            except _Retriable as exc:
                last_error = str(exc)
                if attempt == self.max_retries:
                    break
                delay = min(self.backoff_max, self.backoff_base * (2 ** attempt))
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, self.backoff_max))
                time.sleep(delay * (1.0 + 0.1 * random.random()))
        return JudgeReply(ok=False, error=f"{last_error} (gave up after {calls} calls)", http_calls=calls)

    def _account(self, reply: JudgeReply) -> None:
        usage = reply.usage or {}
        prompt = _int(usage.get("prompt_tokens"))
        completion = _int(usage.get("completion_tokens"))
        total = _int(usage.get("total_tokens")) or prompt + completion
        with self._lock:
            s = self._stats
            self._stats = replace(
                s,
                n_requests=s.n_requests + 1,
                n_failed=s.n_failed + (0 if reply.ok else 1),
                n_http_calls=s.n_http_calls + reply.http_calls,
                prompt_tokens=s.prompt_tokens + prompt,
                completion_tokens=s.completion_tokens + completion,
                total_tokens=s.total_tokens + total,
            )
            if reply.served_model:
                self._served.add(reply.served_model)


def _int(value: Any) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") if headers is not None else None
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _parse_completion(raw: bytes) -> JudgeReply:
    """Read ``choices[0].message.content``; anything unreadable is retriable garbage."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _Retriable(f"judge returned a non-JSON body: {raw[:80]!r}") from None
    try:
        message = data["choices"][0]["message"]
        content = message.get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        raise _Retriable("judge response has no choices[0].message") from None
    if content is not None and not isinstance(content, str):
        raise _Retriable(f"judge message content is {type(content).__name__}, not text")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else None
    served = data.get("model") if isinstance(data.get("model"), str) else None
    # A null content is a (useless) answer, not a transport failure: evaluators treat it as
    # an unparseable reply. It is not cached, so a later run asks again.
    return JudgeReply(ok=True, content=content if content is not None else "", usage=usage, served_model=served)


# --------------------------------------------------------------------------- metrics helper


def judge_metrics(judge: Judge, before: JudgeStats, *, n_judgements: int, n_missing: int,
                  served_models: Iterable[str] = ()) -> dict:
    """The ``judge`` block of a judged task's metrics: identity, traffic, coverage (the ``judge``
    key of the judged tasks' pages under docs/protocol/).

    ``n_judgements`` = judgements the evaluation needed; ``n_missing`` = those that failed or
    were unparseable. Coverage is the percentage that produced a usable judgement.
    ``served_models``: the ``model`` names the replies of this evaluation carried.
    """
    delta = judge.stats() - before
    info = dict(judge.describe())
    cost = judge.cost(delta) if hasattr(judge, "cost") else None
    coverage = 100.0 if n_judgements == 0 else 100.0 * (n_judgements - n_missing) / n_judgements
    info.update(
        n_requests=delta.n_requests,
        n_cached=delta.n_cached,
        n_http_calls=delta.n_http_calls,
        n_judgements=n_judgements,
        missing=n_missing,
        coverage=coverage,
        tokens={"prompt": delta.prompt_tokens, "completion": delta.completion_tokens, "total": delta.total_tokens},
        cost=cost,
        served_models=sorted({m for m in served_models if m}),
    )
    return info
