"""Atomic writes: a failed or killed write never leaves a half results file, journal or table.

* The writers of aligngpt.io: a write that fails (disk full at fsync, interrupted at the rename)
  keeps the previous file intact, removes its temporary file and names the target in the error.
* A process SIGKILLed at random moments while rewriting a large file: the file is always one
  complete version (the kernel's rename is atomic), never a prefix.
* Every results / samples / answers / submission / table / state write of the harness, the
  evaluators and the report commands goes through those writers (AST scan); the two documented
  exceptions are the append-only journal (torn tails are cut on read) and matplotlib figures.
Real ENOSPC / EROFS / EACCES during `run`: tests/test_faults_run.py.
"""
from __future__ import annotations

import ast
import errno
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import aligngpt.io as io_mod
from aligngpt.io import atomic_write_json, atomic_write_text

REPO = Path(__file__).resolve().parents[1]


def _leftovers(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def test_failed_write_keeps_the_old_file_and_names_the_target(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    atomic_write_json(target, {"old": True})
    before = target.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # what a full disk reports at fsync

    monkeypatch.setattr(io_mod.os, "fsync", full)
    with pytest.raises(OSError) as info:
        atomic_write_json(target, {"new": True})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert target.read_bytes() == before and _leftovers(tmp_path) == []


def test_interrupted_rename_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "table.md"
    atomic_write_text(target, "| old |\n")
    monkeypatch.setattr(io_mod.os, "replace", lambda src, dst: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(target, "| new |\n")
    assert target.read_text() == "| old |\n" and _leftovers(tmp_path) == []


def test_errors_that_name_a_file_keep_their_own_name(tmp_path, monkeypatch):
    def denied(*a, dir=None, **k):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))

    monkeypatch.setattr(io_mod.tempfile, "mkstemp", denied)
    with pytest.raises(PermissionError) as info:
        atomic_write_text(tmp_path / "x.json", "{}")
    assert info.value.filename == str(tmp_path)  # the folder that refused, as the OS said


WRITER = """
import sys
from aligngpt.io import atomic_write_text
target, size = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
i = 0
while True:
    i += 1
    atomic_write_text(target, f"version {i}\\n" + "x" * size + f"\\nend {i}\\n")
"""


def test_sigkill_during_rewrites_never_leaves_a_partial_file(tmp_path):
    target = tmp_path / "results.json"
    rng = random.Random(5)
    for _ in range(3):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(8 << 20)], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(rng.uniform(0.05, 0.6))  # somewhere inside one of the 8 MB writes
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert proc.returncode == -signal.SIGKILL
        if target.exists():
            data = target.read_bytes()
            head, _, rest = data.partition(b"\n")
            n = head.split()[1]
            assert head == b"version " + n and rest.endswith(b"\nend " + n + b"\n") and len(rest) == (8 << 20) + len(n) + 6
        for tmp in _leftovers(tmp_path):  # what SIGKILL leaves: hidden, never read, ignored
            assert tmp.name.startswith(".results.json.")
            tmp.unlink()


#: (file, callee) pairs that write outside aligngpt.io on purpose
ALLOWED = {
    ("aligngpt/harness/journal.py", "open"),  # append-only journal: fsync per batch, torn tail cut on read
    ("aligngpt/harness/toy.py", "(tmp / '.complete').write_text"),  # inside a temp folder renamed into place
    ("aligngpt/report/plots.py", "fig.savefig"),  # rendered into a buffer, then atomic_write_bytes
}
WRITE_CALLS = ("write_text", "write_bytes", "savefig", "to_csv", "to_excel", "to_parquet", "to_json", "dump")


def direct_writes(source: str, filename: str) -> list[tuple[str, str, int]]:
    """Calls that write a file in place: open(..., 'w'/'a'/'x'/'+'), Path.write_*, savefig, to_csv(path), json.dump."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        last = name.split(".")[-1]
        if last == "open":
            mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+"):
                found.append((filename, name, node.lineno))
        elif last in WRITE_CALLS and not name.startswith(("self.", "w.")):  # prepare.py's own atomic writer
            targets = {"path_or_buf", "excel_writer", "path"}
            if last.startswith("to_") and not node.args and not targets & {k.arg for k in node.keywords}:
                continue  # no target: returns the text, which the caller writes atomically
            if last == "to_excel" and node.args and ast.unparse(node.args[0]) == "buf":
                continue  # to an in-memory buffer
            found.append((filename, name, node.lineno))
    return found


def test_every_output_write_goes_through_the_atomic_writers():
    found = []
    for folder in ("aligngpt/harness", "aligngpt/cli", "aligngpt/report", "evaluators"):
        for path in sorted((REPO / folder).rglob("*.py")):
            rel = str(path.relative_to(REPO))
            found += [f for f in direct_writes(path.read_text(encoding="utf-8"), rel) if (f[0], f[1]) not in ALLOWED]
    assert found == []
    # the scan sees what it is meant to see
    sample = "open(p, 'w').write(x)\nPath(p).write_text(x)\nfig.savefig(p)\nframe.to_csv(p)\nopen(p)\nframe.to_csv(sep='\\t')\n"
    assert sorted(f[2] for f in direct_writes(sample, "s.py")) == [1, 2, 3, 4]


def test_text_lines_count_as_jsonl_readers_or_as_text_mode_and_name_the_bad_line(tmp_path):
    from aligngpt.errors import DataError
    from aligngpt.io import iter_text_lines

    path = tmp_path / "lines.txt"
    path.write_bytes(b"a\rb\r\nc\n")
    assert list(iter_text_lines(path)) == [(1, "a\rb\r\n"), (2, "c\n")]
    assert list(iter_text_lines(path, universal_newlines=True)) == [(1, "a"), (2, "b"), (3, "c")]
    path.write_bytes(b"a\rb\r\n\xff\n")
    for universal, line in ((False, 2), (True, 3)):
        with pytest.raises(DataError) as err:
            list(iter_text_lines(path, universal_newlines=universal))
        assert err.value.line == line and "not UTF-8" in err.value.message
