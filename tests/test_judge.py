"""JudgeClient against a real HTTP server on 127.0.0.1 (no mocks of urllib)."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import pytest

from aligngpt.errors import ConfigError
from aligngpt.judge import JudgeClient, JudgeReply, JudgeStats, cache_key, judge_metrics

KEY_ENV = "ALIGNGPT_TEST_JUDGE_KEY"
SECRET = "sk-test-SECRET-value-123"

Responder = Callable[[dict, dict], tuple]


def completion(content: str | None, *, model: str = "judge-snap-1", prompt_tokens: int = 10,
               completion_tokens: int = 2) -> dict:
    return {
        "id": "cmpl-1", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class FakeJudgeServer:
    """OpenAI-compatible ``/v1/chat/completions`` stub on a free local port.

    ``responder(body, headers)`` returns ``(status, payload[, extra_headers][, delay_s])``;
    ``payload`` is a dict (sent as JSON) or bytes/str (sent raw). Every request is recorded.
    """

    def __init__(self, responder: Responder, expected_key: str | None = None):
        self.responder = responder
        self.expected_key = expected_key
        self.requests: list[dict] = []
        self.errors: list[str] = []
        self.auth_headers: list[str | None] = []
        self.paths: list[str] = []
        self.inflight = 0
        self.max_inflight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server API)
                with server._lock:
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                self._counted = True
                try:
                    length = int(self.headers.get("Content-Length", "0"))
                    body = json.loads(self.rfile.read(length).decode("utf-8"))
                    with server._lock:
                        server.requests.append(body)
                        server.paths.append(self.path)
                        server.auth_headers.append(self.headers.get("Authorization"))
                    auth = self.headers.get("Authorization")
                    if server.expected_key is not None and auth != f"Bearer {server.expected_key}":
                        self._send(401, {"error": {"message": "bad key"}}, {})
                        return
                    try:
                        out = server.responder(body, dict(self.headers))
                    except Exception as exc:  # an unexpected request: make the test see it
                        with server._lock:
                            server.errors.append(repr(exc)[:500])
                        self._send(500, {"error": {"message": "test responder failed"}}, {})
                        return
                    status, payload = out[0], out[1]
                    extra = out[2] if len(out) > 2 else {}
                    delay = out[3] if len(out) > 3 else 0.0
                    if delay:
                        time.sleep(delay)
                    self._send(status, payload, extra)
                finally:
                    self._leave()

            def _leave(self) -> None:
                # A request stops being in flight when its reply starts: the client may send its
                # next request as soon as it has read this one, before this thread runs on.
                if self._counted:
                    self._counted = False
                    with server._lock:
                        server.inflight -= 1

            def _send(self, status: int, payload: Any, extra: dict) -> None:
                data = json.dumps(payload).encode() if isinstance(payload, dict) else (
                    payload.encode() if isinstance(payload, str) else payload)
                self._leave()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out first
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> "FakeJudgeServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def make_client(url: str, tmp_path, monkeypatch, **kw: Any) -> JudgeClient:
    monkeypatch.setenv(KEY_ENV, SECRET)
    kw.setdefault("cache_path", tmp_path / "judge_cache.sqlite")
    kw.setdefault("backoff_base", 0.001)
    kw.setdefault("backoff_max", 0.01)
    return JudgeClient(url, "judge-model-x", api_key_env=KEY_ENV, **kw)


MSG = [{"role": "user", "content": "grade this"}]


def test_success_body_headers_usage_and_cache(tmp_path, monkeypatch):
    with FakeJudgeServer(lambda body, h: (200, completion("0.7", prompt_tokens=11, completion_tokens=3)),
                         expected_key=SECRET) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch, price_per_million=(2.0, 8.0))
        before = client.stats()
        reply = client.chat(MSG, temperature=0.0, max_tokens=3)
        assert reply.ok and reply.content == "0.7" and not reply.cached and reply.served_model == "judge-snap-1"
        # the exact body: model, messages, the per-call params
        assert srv.requests == [{"model": "judge-model-x", "messages": MSG, "temperature": 0.0, "max_tokens": 3}]
        assert srv.paths == ["/v1/chat/completions"]
        assert srv.auth_headers == [f"Bearer {SECRET}"]
        again = client.chat(MSG, temperature=0.0, max_tokens=3)
        assert again.ok and again.cached and again.content == "0.7"
        assert srv.count == 1  # the repeat came from the cache
        delta = client.stats() - before
        assert (delta.n_requests, delta.n_cached, delta.n_http_calls) == (1, 1, 1)
        # tokens only for the fresh call: 11 prompt + 3 completion
        assert (delta.prompt_tokens, delta.completion_tokens, delta.total_tokens) == (11, 3, 14)
        # cost = 11 * 2/1e6 + 3 * 8/1e6 = 46e-6 USD
        assert client.cost(delta) == pytest.approx(46e-6)
        client.close()

        # a new client on the same cache file answers without any HTTP call
        client2 = make_client(srv.url, tmp_path, monkeypatch)
        assert client2.chat(MSG, temperature=0.0, max_tokens=3).cached
        assert srv.count == 1
        # a different body (temperature) is a different key
        assert not client2.chat(MSG, temperature=0.5, max_tokens=3).cached
        assert srv.count == 2
        client2.close()


def test_api_key_never_stored_or_shown(tmp_path, monkeypatch):
    with FakeJudgeServer(lambda body, h: (200, completion("8 9"))) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch)
        client.chat(MSG)
        assert SECRET not in repr(client)
        assert SECRET not in json.dumps(client.describe())
        metrics = judge_metrics(client, JudgeStats(), n_judgements=1, n_missing=0)
        assert SECRET not in json.dumps(metrics)
        client.close()
    raw = (tmp_path / "judge_cache.sqlite").read_bytes()
    assert SECRET.encode() not in raw
    assert b"grade this" in raw  # the request itself is kept for auditing


def test_missing_key_env_and_bad_url_are_config_errors(monkeypatch, tmp_path):
    monkeypatch.delenv("ALIGNGPT_NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="ALIGNGPT_NO_SUCH_KEY"):
        JudgeClient("http://127.0.0.1:1/v1", "m", api_key_env="ALIGNGPT_NO_SUCH_KEY")
    with pytest.raises(ConfigError, match="http"):
        JudgeClient("ftp://example.org/v1", "m")
    with pytest.raises(ConfigError):
        JudgeClient("http://127.0.0.1:1/v1", "")
    # credentials in the URL are not recorded
    client = JudgeClient("http://user:pw@127.0.0.1:9/v1?token=abc", "m")
    assert client.describe()["base_url"] == "http://127.0.0.1:9/v1"
    assert "pw" not in repr(client) and "abc" not in repr(client)


def test_retries_on_500_and_429_then_succeeds(tmp_path, monkeypatch):
    calls = {"n": 0}

    def responder(body, headers):
        calls["n"] += 1
        if calls["n"] == 1:
            return 500, {"error": {"message": "boom"}}
        if calls["n"] == 2:
            return 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"}
        if calls["n"] == 3:
            return 200, b"<html>proxy error</html>"  # garbage body: retriable
        return 200, completion("1.0")

    with FakeJudgeServer(responder) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch, max_retries=5)
        reply = client.chat(MSG)
        assert reply.ok and reply.content == "1.0" and reply.http_calls == 4
        assert srv.count == 4
        assert client.stats().n_http_calls == 4 and client.stats().n_requests == 1
        client.close()


def test_gives_up_after_max_retries_and_does_not_cache_failures(tmp_path, monkeypatch):
    with FakeJudgeServer(lambda body, h: (503, {"error": {"message": "down"}})) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch, max_retries=2)
        reply = client.chat(MSG)
        assert not reply.ok and reply.content is None
        assert "503" in reply.error and reply.http_calls == 3
        assert srv.count == 3  # 1 try + 2 retries
        assert client.stats().n_failed == 1
        assert len(client.cache) == 0
        client.chat(MSG)  # a failure is asked again, not served from the cache
        assert srv.count == 6
        client.close()


def test_client_errors_are_not_retried(tmp_path, monkeypatch):
    with FakeJudgeServer(lambda body, h: (400, {"error": {"message": "bad request"}})) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch, max_retries=5)
        reply = client.chat(MSG)
        assert not reply.ok and "HTTP 400" in reply.error and srv.count == 1
        client.close()


@pytest.mark.parametrize("payload", [b"not json", {"choices": []}, {"no": "choices"},
                                     {"choices": [{"message": {"content": 5}}]}])
def test_garbage_bodies_become_failures(tmp_path, monkeypatch, payload):
    with FakeJudgeServer(lambda body, h: (200, payload)) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch, max_retries=1)
        reply = client.chat(MSG)
        assert not reply.ok and reply.error and srv.count == 2
        client.close()


def test_timeout_is_retried(tmp_path, monkeypatch):
    calls = {"n": 0}

    def responder(body, headers):
        calls["n"] += 1
        return (200, completion("0.3"), {}, 0.6 if calls["n"] == 1 else 0.0)

    with FakeJudgeServer(responder) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch, timeout=0.2, max_retries=2)
        reply = client.chat(MSG)
        assert reply.ok and reply.content == "0.3" and reply.http_calls == 2
        client.close()


def test_connection_refused_is_a_failure_not_an_exception(tmp_path, monkeypatch):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = make_client(f"http://127.0.0.1:{port}/v1", tmp_path, monkeypatch, max_retries=1)
    reply = client.chat(MSG)
    assert not reply.ok and "connection" in reply.error and reply.http_calls == 2
    client.close()


def test_null_content_is_ok_but_not_cached(tmp_path, monkeypatch):
    with FakeJudgeServer(lambda body, h: (200, completion(None))) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch)
        reply = client.chat(MSG)
        assert reply.ok and reply.content == ""
        client.chat(MSG)
        assert srv.count == 2
        client.close()


def test_concurrency_is_bounded_and_map_keeps_order(tmp_path, monkeypatch):
    def responder(body, headers):
        return (200, completion(body["messages"][0]["content"].upper()), {}, 0.05)

    with FakeJudgeServer(responder) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch, max_concurrency=3, cache_path=None)
        items = [f"q{i}" for i in range(12)]
        replies = client.map(lambda q: client.chat([{"role": "user", "content": q}]), items)
        assert [r.content for r in replies] == [q.upper() for q in items]
        assert 2 <= srv.max_inflight <= 3
        client.close()


def test_salt_and_temperature_override(tmp_path, monkeypatch):
    with FakeJudgeServer(lambda body, h: (200, completion("A"))) as srv:
        client = make_client(srv.url, tmp_path, monkeypatch)
        client.chat(MSG, temperature=0.7)
        client.chat(MSG, temperature=0.7, salt=1)  # same body, deliberate repeat -> asked again
        assert srv.count == 2
        assert srv.requests[0] == srv.requests[1]
        client.close()
        forced = make_client(srv.url, tmp_path, monkeypatch, temperature=0.0, cache_path=None)
        forced.chat(MSG, temperature=0.7)
        assert srv.requests[-1]["temperature"] == 0.0
        assert forced.describe()["temperature_override"] == 0.0
    assert cache_key("m", {"a": 1, "b": 2}) == cache_key("m", {"b": 2, "a": 1})
    assert cache_key("m", {"a": 1}) != cache_key("m2", {"a": 1})
    assert cache_key("m", {"a": 1}, salt=1) != cache_key("m", {"a": 1})


def test_judge_metrics_block():
    class Stub:
        model = "stub"

        def __init__(self):
            self._s = JudgeStats()

        def stats(self):
            return self._s

        def describe(self):
            return {"model": "stub", "base_url": "http://x/v1", "temperature_override": None}

        def cost(self, stats):
            return None

    stub = Stub()
    before = stub.stats()
    stub._s = JudgeStats(n_requests=3, n_cached=1, prompt_tokens=5, completion_tokens=1, total_tokens=6)
    block = judge_metrics(stub, before, n_judgements=4, n_missing=1, served_models=["s1", None, "s1"])
    # coverage = (4 - 1) / 4 = 75 %
    assert block["coverage"] == 75.0 and block["missing"] == 1
    assert block["n_requests"] == 3 and block["n_cached"] == 1
    assert block["tokens"] == {"prompt": 5, "completion": 1, "total": 6}
    assert block["served_models"] == ["s1"] and block["cost"] is None and block["model"] == "stub"
    assert judge_metrics(stub, before, n_judgements=0, n_missing=0)["coverage"] == 100.0
    assert isinstance(JudgeReply(ok=False).error, type(None))
