"""Acceptance: llava_bench and mm-vet end to end through `run`, judged by a real HTTP
server on 127.0.0.1 that checks every request carries exactly the official prompt; a second run
hits only the cache; a failing judge gives missing judgements and a non-zero exit, never a number."""
from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aligngpt.cli.eval_cli import main

SHARED_PROTOCOL = Path(__file__).resolve().parents[1].parent / "shared" / "protocol-data"
LLAVA_SYSTEM = "You are a helpful and precise assistant for checking the quality of the answer."


@pytest.fixture(scope="module")
def toy_root(tmp_path_factory):
    from aligngpt.toy import write_benchmarks

    root = tmp_path_factory.mktemp("toy") / "eval"
    write_benchmarks(root, seed=7, n_per_task=6, benchmarks=["llava_bench", "mmvet"])
    return root


def _jsonl(path):
    return [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]


class Judge:
    """Checks requests against the protocol (docs/protocol/llava_bench.md, mmvet.md) and answers fixed scores."""

    def __init__(self, root: Path, shared: Path, mode: str = "ok"):
        rules = json.loads((shared / "protocol-data" / "llava_bench_rule.json").read_text())
        self.rules = {k: v for k, v in rules.items() if k.startswith("llava_bench_")}
        self.grader = (shared / "protocol-data" / "mmvet_grader_prompt.txt").read_text()
        bench = root / "llava-bench-in-the-wild"
        captions = {c["image"]: c["caption"] for c in _jsonl(bench / "context.jsonl")}
        refs = _jsonl(bench / "answers_gpt4.jsonl")
        self.llava = {}
        for q, ref in zip(_jsonl(bench / "questions.jsonl"), refs):
            cap = captions[q["image"]]
            cap = "\n".join(cap) if isinstance(cap, list) else cap
            self.llava.setdefault(q["text"], []).append((cap, ref["text"], q["category"]))
        mmvet = json.loads((root / "mm-vet" / "mm-vet.json").read_text())
        self.mmvet = {v["question"]: v["answer"].replace("<AND>", " <AND> ").replace("<OR>", " <OR> ") for v in mmvet.values()}
        self.mode = mode
        self.requests = 0
        self.problems: list[str] = []

    def answer(self, body: dict) -> tuple[int, str]:
        self.requests += 1
        if self.mode == "broken":
            return (500, "oops") if self.requests % 2 else (200, "{not json")
        messages = body["messages"]
        if messages[0]["role"] == "system":
            self._check_llava(messages)
            content = "8 6\nBoth answers are fine."
        else:
            self._check_mmvet(messages)
            content = "0.5"
        reply = {"id": "x", "object": "chat.completion", "model": body["model"],
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}}
        return 200, json.dumps(reply)

    def _check_llava(self, messages):
        if messages[0]["content"] != LLAVA_SYSTEM or len(messages) != 2:
            self.problems.append("llava system message")
            return
        m = re.fullmatch(r"\[Context\]\n(.*)\n\n\[Question\]\n(.*)\n\n\[Assistant 1\]\n(.*)\n\n\[End of Assistant 1\]\n\n"
                         r"\[Assistant 2\]\n(.*)\n\n\[End of Assistant 2\]\n\n\[System\]\n(.*)\n\n", messages[1]["content"], re.S)
        if not m:
            self.problems.append("llava content layout")
            return
        expected = [(cap, ref, self.rules.get(f"llava_bench_{cat}", {}).get("prompt"))
                    for cap, ref, cat in self.llava.get(m.group(2), [])]
        if (m.group(1), m.group(3), m.group(5)) not in expected:
            self.problems.append(f"llava content for {m.group(2)!r}")

    def _check_mmvet(self, messages):
        content = messages[0]["content"]
        if not content.startswith(self.grader + "\n") or not content.endswith(" | "):
            self.problems.append("mmvet grader prompt")
            return
        question, gt, *_ = content[len(self.grader) + 1 :].split(" | ")
        if self.mmvet.get(question) != gt:
            self.problems.append(f"mmvet question/answer for {question!r}")


def _serve(judge: Judge):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            status, text = judge.answer(body)
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _args(model, root, out, port, cache, *extra):
    return ["run", "--tasks", "llava_bench,mmvet", "--model", str(model), "--data-root", str(root), "--output-dir",
            str(out), "--max-new-tokens", "6", "--judge-base-url", f"http://127.0.0.1:{port}/v1", "--judge-model",
            "judge-test", "--judge-api-key-env", "JUDGE_TEST_KEY", "--judge-cache", str(cache), "--json", *extra]


def test_judged_tasks_end_to_end_and_cached(official_tiny, toy_root, shared, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-test-secret-123")
    judge = Judge(toy_root, shared)
    server = _serve(judge)
    try:
        args = _args(official_tiny / "checkpoint", toy_root, tmp_path / "runs", server.server_port, tmp_path / "cache.sqlite")
        assert main(args) == 0, capsys.readouterr().err
        results = json.loads(capsys.readouterr().out)
        assert judge.problems == []
        first = judge.requests
        assert first == 6 + 6  # one review per LLaVA-Bench question, one grade per MM-Vet question
        lb, mv = results["tasks"]["llava_bench"]["metrics"], results["tasks"]["mmvet"]["metrics"]
        # official aggregation: mean(model)=6, mean(reference)=8 -> 75.0; MM-Vet every score 0.5 -> 50.0
        assert lb["relative_score"] == pytest.approx(75.0)
        assert all(v == pytest.approx(75.0) for v in lb["categories"].values()), lb
        assert mv["total"] == pytest.approx(50.0)
        assert all(v == pytest.approx(50.0) for v in mv["capabilities"].values() if v is not None), mv
        assert any(v is not None for v in mv["capabilities"].values())
        assert lb["judge"]["coverage"] == pytest.approx(100.0) and lb["judge"]["missing"] == 0
        # a fresh run re-judges the same answers from the cache: no new request reaches the server
        assert main(args + ["--fresh"]) == 0
        capsys.readouterr()
        assert judge.requests == first
        # the key never lands in results, samples or the cache
        for path in list((tmp_path / "runs").rglob("*.json*")) + [tmp_path / "cache.sqlite"]:
            assert b"sk-test-secret-123" not in path.read_bytes(), path
    finally:
        server.shutdown()


def test_failing_judge_gives_missing_judgements_and_non_zero_exit(official_tiny, toy_root, shared, tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.setenv("JUDGE_TEST_KEY", "sk-test-secret-123")
    judge = Judge(toy_root, shared, mode="broken")
    server = _serve(judge)
    try:
        args = _args(official_tiny / "checkpoint", toy_root, tmp_path / "runs", server.server_port,
                     tmp_path / "cache.sqlite", "--judge-max-retries", "1")
        code = main(args)
        err = capsys.readouterr().err
        assert code == 2 and "judgement(s) failed" in err
        assert not list((tmp_path / "runs").rglob("results.json"))
    finally:
        server.shutdown()
