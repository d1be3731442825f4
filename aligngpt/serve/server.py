"""The HTTP side of ``aligngpt-eval serve``: standard-library server, OpenAI-compatible routes.

Routes: ``POST /v1/chat/completions``, ``GET /v1/models``, ``GET /health``. Everything else is
a JSON 404 (unknown path) or 405 (known path, wrong method).

Safety by default (the server runs a model for whoever can reach it): it binds loopback unless
told otherwise, bounds the request body (413 before reading it), the number of open connections
(503), the queue of waiting generations (429) and each socket's idle time; it fetches no URLs
and never logs request bodies or images (only method, path, status, size).
"""
from __future__ import annotations

import json
import logging
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from typing import Any
from urllib.parse import urlsplit

from .batching import Batcher, BatcherClosed, QueueFull
from .protocol import ApiError, completion_body, models_body, parse_chat_request
from .runner import Completion, ModelRunner, service_unavailable

log = logging.getLogger("aligngpt.serve")

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
HEALTH_PATH = "/health"
#: A refused (413) body is read and dropped up to this size so the client can see the answer.
DRAIN_BYTES = 64 * 1024 * 1024
DRAIN_TIMEOUT_S = 2.0
_ROUTES = {CHAT_PATH: ("POST",), MODELS_PATH: ("GET",), HEALTH_PATH: ("GET",)}


@dataclass
class ServeConfig:
    """Limits and batching knobs (the ``serve`` flags)."""

    host: str = "127.0.0.1"
    port: int = 8000
    max_batch_size: int = 8
    batch_window_ms: float = 10.0
    max_queue: int = 64
    """Generations allowed to wait for the model; more are refused with 429."""
    max_request_bytes: int = 20 * 1024 * 1024
    max_new_tokens_limit: int = 1024
    """Cap on ``max_tokens`` (also the default when a request gives none)."""
    max_connections: int = 64
    """Open connections served at once; more are answered 503 at once."""
    socket_timeout_s: float = 30.0
    """A client that sends nothing for this long is disconnected (slow-client guard)."""
    request_timeout_s: float = 600.0
    """A request still waiting for the model after this long gets a 503."""


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


class ChatServer(ThreadingHTTPServer):
    """A threading HTTP server holding the model runner and its batcher."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, runner: ModelRunner, config: ServeConfig):
        self.runner = runner
        self.config = config
        self.started = int(time.time())
        self._slots = threading.BoundedSemaphore(max(1, config.max_connections))
        self._thread: threading.Thread | None = None
        if ":" in config.host:
            self.address_family = socket.AF_INET6
        self.batcher = Batcher(
            runner.run_batch,
            max_batch_size=config.max_batch_size,
            window_s=config.batch_window_ms / 1000.0,
            max_queue=config.max_queue,
        )
        try:
            super().__init__((config.host, config.port), _Handler)
        except BaseException:
            self.batcher.close()
            raise

    # HTTPServer.server_bind calls socket.getfqdn(), a reverse-DNS lookup that can hang offline.
    def server_bind(self) -> None:
        TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.server_address[0]
        host = f"[{host}]" if ":" in str(host) else host
        return f"http://{host}:{self.port}"

    # ---- connection bound -------------------------------------------------------------

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            body = _json_bytes(service_unavailable("too many open connections; retry later").body())
            head = ("HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n")
            try:
                request.sendall(head.encode("ascii") + body)
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    # ---- lifecycle --------------------------------------------------------------------

    def start(self) -> "ChatServer":
        """Serve in a background thread (tests, notebooks); :meth:`close` stops it."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="aligngpt-serve", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop accepting, fail waiting generations with 503, release the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5.0)
            self._thread = None
        self.batcher.close()
        self.server_close()

    def __enter__(self) -> "ChatServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- the one real endpoint --------------------------------------------------------

    def complete(self, body: Any) -> Completion:
        """Validate, prepare, queue and wait: the life of one chat request (raises ApiError)."""
        request = parse_chat_request(body, max_new_tokens_limit=self.config.max_new_tokens_limit,
                                     max_image_bytes=self.config.max_request_bytes)
        prepared = self.runner.prepare(request)
        try:
            job = self.batcher.submit(prepared, prepared.decoding.batch_key())
        except QueueFull as exc:
            raise ApiError(429, f"{exc}; retry later", type="rate_limit_error", code="queue_full",
                           headers={"Retry-After": "1"}) from None
        except BatcherClosed as exc:
            raise service_unavailable(str(exc)) from None
        if not job.wait(self.config.request_timeout_s):
            self.batcher.cancel(job)
            if not job.done.is_set():
                raise service_unavailable(f"no answer within {self.config.request_timeout_s:g} s (server busy)")
        if job.error is not None:
            if isinstance(job.error, ApiError):
                raise job.error
            if isinstance(job.error, BatcherClosed):
                raise service_unavailable(str(job.error))
            raise ApiError(500, f"generation failed: {type(job.error).__name__}: {str(job.error)[:200]}",
                           type="server_error", code="generation_failed")
        return job.result

    def health(self) -> tuple[int, dict]:
        stats = self.batcher.stats()
        ok = self.batcher.alive
        return (200 if ok else 503), {
            "status": "ok" if ok else "unavailable",
            "model": self.runner.name,
            "queue_depth": self.batcher.depth(),
            "max_queue": self.config.max_queue,
            "requests": stats.requests,
            "batches": stats.batches,
            "batched_requests": stats.batched_requests,
            "max_batch": stats.max_batch,
            "rejected": stats.rejected,
        }


class _Handler(BaseHTTPRequestHandler):
    server: ChatServer
    server_version = "aligngpt-serve"
    sys_version = ""
    error_content_type = "application/json"

    def setup(self) -> None:
        self.timeout = self.server.config.socket_timeout_s
        super().setup()

    # ---- plumbing ---------------------------------------------------------------------

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        # Request line, status and size only: bodies and images are never logged.
        log.info("%s %s", self.address_string(), format % args)

    def _send_json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        payload = _json_bytes(obj)
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True  # the client left; nothing to tell it

    def _send_error(self, exc: ApiError) -> None:
        self._send_json(exc.status, exc.body(), exc.headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors from the stdlib (bad request line, 501, 414) as OpenAI JSON."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # unparsable request line: still send a status line
            self.request_version = "HTTP/1.0"
        text = message or self.responses.get(code, ("error",))[0]
        kind = "server_error" if code >= 500 else "invalid_request_error"
        self._send_json(code, {"error": {"message": text, "type": kind, "code": None}})

    def _route(self, method: str) -> str | None:
        path = urlsplit(self.path).path
        allowed = _ROUTES.get(path)
        if allowed is None:
            self._send_error(ApiError(404, f"no route {method} {path[:100]}", code="not_found"))
            return None
        if method not in allowed:
            self._send_error(ApiError(405, f"{path} takes {', '.join(allowed)}", code="method_not_allowed",
                                      headers={"Allow": ", ".join(allowed)}))
            return None
        return path

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            self.close_connection = True
            raise ApiError(411, "chunked bodies are not accepted; send Content-Length", code="length_required")
        raw = self.headers.get("Content-Length")
        if raw is None:
            self.close_connection = True
            raise ApiError(411, "Content-Length header required", code="length_required")
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "invalid Content-Length", code="invalid_request") from None
        limit = self.server.config.max_request_bytes
        if length > limit:
            self.close_connection = True
            self._unread = length  # drained (bounded) after the 413 is sent
            raise ApiError(413, f"request body is {length} bytes; the limit is {limit}",
                           code="request_too_large")
        try:
            data = self.rfile.read(length)
        except (socket.timeout, ConnectionError, OSError):
            self.close_connection = True
            raise ApiError(400, "request body not received in time", code="invalid_request") from None
        if len(data) != length:
            self.close_connection = True
            raise ApiError(400, "request body shorter than Content-Length", code="invalid_request")
        return data

    # ---- methods ----------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self._route("GET")
        if path == MODELS_PATH:
            self._send_json(200, models_body(self.server.runner.name, self.server.started))
        elif path == HEALTH_PATH:
            status, body = self.server.health()
            self._send_json(status, body)

    def _drain(self, length: int) -> None:
        """Read and drop a refused body (at most ``DRAIN_BYTES`` within ``DRAIN_TIMEOUT_S``), then close.

        Closing a socket with unread input makes the kernel send a reset, and a client still
        uploading would see "connection reset" instead of our 413. A client that keeps
        sending past the bound or goes quiet is simply cut off.
        """
        remaining = min(length, DRAIN_BYTES)
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        try:
            self.connection.settimeout(DRAIN_TIMEOUT_S)
            while remaining > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(remaining, 65536))
                if not chunk:
                    break
                remaining -= len(chunk)
        except (OSError, ValueError):
            pass
        self.close_connection = True

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._unread = 0
        try:
            path = self._route("POST")
            if path is None:
                return
            data = self._read_body()
            try:
                body = json.loads(data.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
                raise ApiError(400, "request body is not valid UTF-8 JSON", code="invalid_json") from None
            result = self.server.complete(body)
            self._send_json(200, completion_body(
                model=self.server.runner.name, content=result.text, finish_reason=result.finish_reason,
                prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
            ))
        except ApiError as exc:
            self._send_error(exc)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the connection silently
            log.exception("unexpected error serving %s", self.path[:100])
            self._send_error(ApiError(500, f"internal error: {type(exc).__name__}", type="server_error",
                                      code="internal_error"))
        finally:
            if self._unread:
                self._drain(self._unread)

    def _no_such_method(self) -> None:
        self._route(self.command)

    do_PUT = do_DELETE = do_PATCH = _no_such_method  # noqa: N815


def create_server(model, processor, config: ServeConfig | None = None, *, name: str = "aligngpt",
                  template: str | None = None) -> ChatServer:
    """A bound (not yet serving) :class:`ChatServer`; call ``serve_forever()`` or ``start()``."""
    runner = ModelRunner(model, processor, name=name, template=template)
    return ChatServer(runner, config or ServeConfig())
