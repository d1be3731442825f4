"""The README's grid example runs as written on the bundled model, prints one summary with
``--quiet``, and writes the files the README lists into a folder git ignores."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from aligngpt.cli.eval_cli import main as eval_main

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> tuple[str, list[str]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- grid-example -->\s*```yaml\n(.*?)```", text, re.S)
    assert block, "README.md: the grid example block is missing"
    spec = "\n".join(line.strip() for line in block.group(1).splitlines()) + "\n"
    command = re.search(r"`(aligngpt-eval grid grid\.yaml[^`]*)`", text).group(1).split()
    return spec, command


def test_readme_grid_example_runs_as_written(tmp_path, monkeypatch, capsys):
    spec, command = readme_example()
    monkeypatch.chdir(tmp_path)
    Path("grid.yaml").write_text(spec)
    assert eval_main(command[1:]) == 0
    out = capsys.readouterr().out
    assert out.count("cell ") == 1, out  # one status table, at the end
    assert "toy/none" in out and "toy/fixed:7" in out and "failed" not in out
    grid = Path("results/grids/grid")
    for name in ("grid_state.json", "grid_results.json", "tables/grid.md", "tables/grid.tex"):
        assert (grid / name).is_file(), name
    assert len(list((grid / "runs").glob("*/results.json"))) == 3
    table = (grid / "tables" / "grid.md").read_text()
    assert "Not the benchmarks' numbers: bundled toy data (synthetic) and a --limit subset" in table
    ignored = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", "results/grids/grid/grid_state.json"])
    assert ignored.returncode == 0, "results/grids/ must be ignored by git"
