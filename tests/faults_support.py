"""Helpers of the fault-injection and security tests (test_faults_*.py, test_security.py).

* :func:`tiny_model`: the official-tiny fixture loaded once per process (several test modules
  run the harness in-process with it, through :func:`use_model`, instead of reloading it).
* :func:`run_cli`: ``aligngpt-eval`` in-process, returning (exit code, stdout, stderr).
* :class:`Tmpfs`: a real, tiny tmpfs (real ENOSPC / EROFS from the kernel), where the test
  process may mount one (root with CAP_SYS_ADMIN); tests skip otherwise.
* :func:`damageable_copy`: a private copy of toy benchmark data for a test to break.
* :class:`StubJudge`: an OpenAI-compatible endpoint on 127.0.0.1 that misbehaves on demand.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from aligngpt.cli.eval_cli import main as eval_main


# ---------------------------------------------------------------------------- model and CLI
@functools.lru_cache(maxsize=2)
def tiny_model(checkpoint: str):
    import aligngpt

    return aligngpt.load_pretrained(checkpoint)


def use_model(monkeypatch, checkpoint: Path) -> None:
    """``run --model <checkpoint>`` in this process reuses the cached model (no reload)."""
    import aligngpt.harness.pipeline as run_mod

    model, processor = tiny_model(str(checkpoint))
    monkeypatch.setattr(run_mod, "resolve_model", lambda settings: (model, processor, str(settings.model)))


def run_cli(capsys, args: list[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    code = eval_main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error_line(err: str) -> str:
    """The single ``aligngpt-eval: error: ...`` line (and nothing traceback-like) of a failure."""
    assert "Traceback" not in err, err
    lines = [l for l in err.strip().splitlines() if "error" in l.lower()]
    assert len(lines) == 1 and lines[0].startswith("aligngpt-eval: error: "), err
    return lines[0]


def run_dir_of(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def damageable_copy(pristine: Path, dst: Path) -> Path:
    """Text files copied, images hard-linked: cheap, and moving, replacing or deleting an image
    in the copy never reaches the original (only writing into one in place would)."""
    for src in pristine.rglob("*"):
        target = dst / src.relative_to(pristine)
        if src.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif src.suffix in (".json", ".jsonl", ".tsv", ".txt"):
            target.write_bytes(src.read_bytes())
        else:
            target.hardlink_to(src)
    return dst


def copy_journals(src_run: Path, dst_out: Path) -> Path:
    """A finished run's journals (only) under ``dst_out``: the next run just scores and writes."""
    dst = dst_out / src_run.name
    for journal in src_run.rglob("journal*.jsonl"):
        target = dst / journal.relative_to(src_run)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(journal, target)
    return dst


def journal_keys(task_dir: Path) -> list[str]:
    keys = []
    for journal in sorted(task_dir.glob("journal*.jsonl")):
        for line in journal.read_text(encoding="utf-8").splitlines():
            keys.append(str(json.loads(line)["key"]))
    return keys


# ---------------------------------------------------------------------------- tmpfs
class Tmpfs:
    """A tmpfs of ``size`` bytes mounted at ``path``; ``fill()`` uses up every free byte."""

    def __init__(self, path: Path, size: int = 1 << 20):
        self.path = Path(path)
        self.size = size
        self.mounted = False

    def __enter__(self) -> "Tmpfs":
        self.path.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size},mode=0755", "tmpfs", str(self.path)],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip()[:100]}); the monkeypatched variants cover it")
        self.mounted = True
        return self

    def fill(self) -> Path:
        filler = self.path / f".filler-{uuid.uuid4().hex}"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            block = b"\0" * 4096
            while True:
                try:
                    os.write(fd, block)
                except OSError:  # ENOSPC: full; then the last partial page
                    try:
                        while os.write(fd, b"\0"):
                            pass
                    except OSError:
                        pass
                    break
        finally:
            os.close(fd)
        return filler

    def remount(self, mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True, capture_output=True)

    def __exit__(self, *exc: Any) -> None:
        if self.mounted:
            for _ in range(20):
                if subprocess.run(["umount", str(self.path)], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            else:
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True)


# ---------------------------------------------------------------------------- judge stub
def completion(content: str, model: str = "judge-stub") -> dict:
    return {"id": "x", "object": "chat.completion", "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def good_content(body: dict) -> str:
    """A usable judgement for either protocol: LLaVA-Bench (system message) or MM-Vet."""
    return "8 6\nfine" if body["messages"][0]["role"] == "system" else "0.5"


class StubJudge:
    """``/v1/chat/completions`` on 127.0.0.1 whose behaviour is ``mode``:

    ok | timeout (sleeps past the client's time-out) | 429 | 500 | 503 (storms: every call) |
    flaky (the first ``fail_first`` calls 503, then ok) | truncated (Content-Length larger than
    the body, then the connection closes) | nonjson | nochoices | empty | reset (closes without
    an answer) | echo401 (401 whose body repeats the Authorization header).
    """

    def __init__(self, mode: str = "ok", *, sleep: float = 1.0, fail_first: int = 0):
        self.mode, self.sleep, self.fail_first = mode, sleep, fail_first
        self.calls = 0
        self.auth: list[str | None] = []
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                with stub._lock:
                    stub.calls += 1
                    n = stub.calls
                    stub.auth.append(self.headers.get("Authorization"))
                stub.handle(self, body, n)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def handle(self, h: BaseHTTPRequestHandler, body: dict, n: int) -> None:
        mode = self.mode
        if mode == "flaky":
            mode = "503" if n <= self.fail_first else "ok"
        if mode == "timeout":
            time.sleep(self.sleep)
            mode = "ok"
        if mode == "reset":
            h.close_connection = True
            try:
                h.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == "ok":
            self._send(h, 200, json.dumps(completion(good_content(body))).encode())
        elif mode in ("429", "500", "503"):
            self._send(h, int(mode), b'{"error": {"message": "busy"}}', {"Retry-After": "0"})
        elif mode == "truncated":
            data = json.dumps(completion(good_content(body))).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data[: len(data) // 2])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
        elif mode == "nonjson":
            self._send(h, 200, b"<html><body>Bad gateway</body></html>")
        elif mode == "nochoices":
            self._send(h, 200, b'{"object": "error", "message": "no"}')
        elif mode == "empty":
            self._send(h, 200, b"")
        elif mode == "echo401":
            self._send(h, 401, json.dumps({"error": {"message": f"invalid credentials: {h.headers.get('Authorization')}"}}).encode())
        else:  # pragma: no cover - a typo in a test
            raise ValueError(mode)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, data: bytes, extra: dict | None = None) -> None:
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (extra or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def __enter__(self) -> "StubJudge":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
