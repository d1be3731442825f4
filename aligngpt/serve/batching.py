"""Grouping concurrent requests into one ``model.generate`` call.

Why: a GPU decodes a batch of rows in about the time of one, so requests that arrive together
(an evaluator's judge threads, several users) should share a forward pass. A single background
worker owns the model (one generate at a time, no locking around the model): it takes the
oldest waiting job, waits up to ``window_s`` for more jobs with the same batch key, runs them
together (at most ``max_batch_size``), and hands each job its own result. Jobs with a different
key keep their place in the queue. The queue is bounded: :meth:`Batcher.submit` raises
:class:`QueueFull` instead of letting memory grow without limit.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Sequence

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """The bounded queue is full: the client should retry later (HTTP 429)."""


class BatcherClosed(Exception):
    """The batcher is shutting down or its worker died (HTTP 503)."""


@dataclass(eq=False)  # identity comparison: payloads hold tensors
class Job:
    """One request's work item. ``key`` None never batches with anything."""

    payload: Any
    key: Hashable | None
    result: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: bool = False
    enqueued_at: float = field(default_factory=time.monotonic)

    def wait(self, timeout: float | None) -> bool:
        return self.done.wait(timeout)


@dataclass
class BatchStats:
    """Counters for tests and ``/health``: did concurrent requests really share batches?"""

    requests: int = 0
    """Jobs run (successfully or not) by the worker."""
    batches: int = 0
    """``run_batch`` calls."""
    batched_requests: int = 0
    """Jobs that ran in a batch of two or more."""
    max_batch: int = 0
    failed_batches: int = 0
    rejected: int = 0
    """Submissions refused because the queue was full."""
    cancelled: int = 0
    """Jobs whose client stopped waiting before the worker reached them."""


class Batcher:
    """Bounded queue + one worker thread calling ``run_batch(payloads) -> results`` per batch.

    ``run_batch`` must return one result per payload, in order; if it raises, every job of
    that batch receives the exception (the worker keeps serving).
    """

    def __init__(self, run_batch: Callable[[Sequence[Any]], Sequence[Any]], *, max_batch_size: int = 8,
                 window_s: float = 0.01, max_queue: int = 64, name: str = "aligngpt-batcher"):
        if max_batch_size < 1 or max_queue < 1 or window_s < 0:
            raise ValueError("max_batch_size and max_queue must be >= 1, window_s >= 0")
        self._run_batch = run_batch
        self.max_batch_size = int(max_batch_size)
        self.window_s = float(window_s)
        self.max_queue = int(max_queue)
        self._pending: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._paused = False
        self._stats = BatchStats()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # ---- client side ------------------------------------------------------------------

    def submit(self, payload: Any, key: Hashable | None) -> Job:
        job = Job(payload, key)
        with self._cond:
            if self._closed or not self._thread.is_alive():
                raise BatcherClosed("the server is shutting down")
            if len(self._pending) >= self.max_queue:
                self._stats.rejected += 1
                raise QueueFull(f"request queue full ({self.max_queue} waiting)")
            self._pending.append(job)
            self._cond.notify_all()
        return job

    def cancel(self, job: Job) -> None:
        """Drop a job the client gave up on (if the worker has not taken it yet)."""
        with self._cond:
            if job in self._pending:
                self._pending.remove(job)
                job.cancelled = True
                self._stats.cancelled += 1

    def depth(self) -> int:
        with self._cond:
            return len(self._pending)

    def stats(self) -> BatchStats:
        with self._cond:
            return BatchStats(**vars(self._stats))

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def pause(self) -> None:
        """Stop starting new batches (jobs still queue up); for maintenance and deterministic tests."""
        with self._cond:
            self._paused = True

    def resume(self) -> None:
        with self._cond:
            self._paused = False
            self._cond.notify_all()

    def close(self, timeout: float | None = 5.0) -> None:
        """Refuse new jobs, fail the waiting ones, let the running batch finish."""
        with self._cond:
            self._closed = True
            leftover = list(self._pending)
            self._pending.clear()
            self._cond.notify_all()
        for job in leftover:
            job.error = BatcherClosed("the server is shutting down")
            job.done.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    # ---- worker side ------------------------------------------------------------------

    def _take_matching(self, batch: list[Job]) -> None:
        key = batch[0].key
        if key is None:
            return
        for job in list(self._pending):
            if len(batch) >= self.max_batch_size:
                return
            if job.key == key:
                self._pending.remove(job)
                batch.append(job)

    def _next_batch(self) -> list[Job] | None:
        with self._cond:
            while not self._closed and (self._paused or not self._pending):
                self._cond.wait()
            if self._closed:
                return None
            batch = [self._pending.popleft()]
            if batch[0].key is None:
                return batch
            deadline = time.monotonic() + self.window_s
            while True:
                self._take_matching(batch)
                remaining = deadline - time.monotonic()
                if len(batch) >= self.max_batch_size or remaining <= 0 or self._closed:
                    return batch
                self._cond.wait(remaining)

    def _loop(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            try:
                results = list(self._run_batch([job.payload for job in batch]))
                if len(results) != len(batch):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(batch)} jobs")
                error = None
            except Exception as exc:  # noqa: BLE001 - handed to every waiting client
                log.error("batch of %d failed: %s: %s", len(batch), type(exc).__name__, exc)
                results, error = [None] * len(batch), exc
            with self._cond:
                s = self._stats
                s.requests += len(batch)
                s.batches += 1
                s.max_batch = max(s.max_batch, len(batch))
                if len(batch) > 1:
                    s.batched_requests += len(batch)
                if error is not None:
                    s.failed_batches += 1
            for job, result in zip(batch, results):
                job.result, job.error = result, error
                job.done.set()
