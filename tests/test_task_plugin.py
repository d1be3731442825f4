"""A 13th benchmark as one folder outside the package: registered through the include path, it
runs, scores, enters a grid, a table and a plot with no file of the project touched. Plus the
strictness of task.yaml: unknown keys and bad values are refused at ``file:line``."""
from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import yaml

from aligngpt.cli.eval_cli import main as eval_main
from aligngpt.errors import ConfigError
from aligngpt.harness.task_registry import PATH_ENV
from aligngpt.harness.task_spec import read_spec

TASK_YAML = """\
name: shapecount
title: Shape count (a throwaway plugin benchmark)
protocol: llava15
template: vicuna_v1
max_new_tokens: 4
image_handling: config
prompt_suffix: "Answer the question using a single word or phrase."
scoring: local
loader:
  local: .loader:load_local
evaluator: .evaluator:ShapeCountEvaluator
headline: accuracy
sources:
  local: [shapecount/questions.jsonl, shapecount/images/]
resampling:
  scheme: question_mean
  metrics: [accuracy]
column:
  key: shapecount
  metric: accuracy
  markdown: ShapeCnt
  latex: ShapeCnt
  group: instruction
  note: "ShapeCnt: exact-match accuracy"
order: 500
toy:
  benchmark: shapecount
  writer: .toy:write
  chance:
    accuracy: null
  chance_rule: "always the most common answer"
"""

TOY_PY = '''
"""Writes the toy copy: squares on a plain background, "how many squares?"."""
import json
from collections import Counter
from pathlib import Path

from PIL import Image, ImageDraw


def write(root, seed, n, size=48):
    folder = Path(root) / "shapecount"
    (folder / "images").mkdir(parents=True, exist_ok=True)
    side = size if isinstance(size, int) else size[0]
    lines, answers = [], []
    for i in range(n):
        k = 1 + (i * 7 + seed) % 3
        image = Image.new("RGB", (side, side), "white")
        draw = ImageDraw.Draw(image)
        for j in range(k):
            draw.rectangle([4 + 12 * j, 4, 12 + 12 * j, 12], fill="black")
        image.save(folder / "images" / f"{i}.png")
        lines.append({"question_id": i, "image": f"{i}.png", "text": "How many squares are there?", "answer": str(k)})
        answers.append(str(k))
    (folder / "questions.jsonl").write_text("".join(json.dumps(x) + "\\n" for x in lines))
    top = Counter(answers).most_common(1)[0][1]
    return {"questions": n, "chance": {"accuracy": 100.0 * top / n}}
'''

LOADER_PY = '''
"""Reads shapecount/questions.jsonl under a data root."""
from pathlib import Path

from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.harness.task_registry import prompt_suffix
from aligngpt.io import iter_jsonl


def load_local(data_root):
    folder = Path(data_root) / "shapecount"
    suffix = "\\n" + prompt_suffix("shapecount")
    return [Sample(question_id=row["question_id"], question=row["text"] + suffix,
                   image=resolve_image_path(folder / "images", row["image"]), target=row["answer"])
            for _, row in iter_jsonl(folder / "questions.jsonl")]
'''

EVALUATOR_PY = '''
"""Exact match after lower-casing and stripping a final period."""
from aligngpt.evaluators.base import Evaluator, ScoreResult


class ShapeCountEvaluator(Evaluator):
    name = "shapecount"

    def score(self, samples, predictions):
        per = {}
        for s in samples:
            parsed = predictions[s.key].strip().lower().rstrip(".")
            per[s.key] = {"parsed": parsed, "score": float(parsed == s.target)}
        accuracy = 100.0 * sum(p["score"] for p in per.values()) / max(len(per), 1)
        return ScoreResult(metrics={"accuracy": accuracy}, per_sample=per, n=len(samples))
'''


def write_plugin(parent: Path) -> Path:
    folder = parent / "shapecount"
    folder.mkdir(parents=True)
    (folder / "task.yaml").write_text(TASK_YAML)
    (folder / "toy.py").write_text(TOY_PY)
    (folder / "loader.py").write_text(LOADER_PY)
    (folder / "evaluator.py").write_text(EVALUATOR_PY)
    return folder


def _only_run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if (d / "results.json").is_file()]
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.fixture()
def plugin_env(tmp_path, monkeypatch):
    plugins = tmp_path / "plugins"
    write_plugin(plugins)
    monkeypatch.setenv(PATH_ENV, str(plugins))
    monkeypatch.setenv("ALIGNGPT_CACHE", str(tmp_path / "cache"))  # the toy suite with the plugin is cached apart
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return plugins


def test_a_plugin_folder_runs_scores_and_reports(plugin_env, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "runs"
    tasks = "shapecount,gqa,pope"  # three columns, so the radar chart has its minimum of axes
    code = eval_main(["run", "--tasks", tasks, "--limit", "4", "--batch-size", "4", "--max-new-tokens", "4",
                      "--output-dir", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    results = json.loads(captured.out)
    run_dir = _only_run_dir(out)
    mine = results["tasks"]["shapecount"]
    assert mine["n"] == 4 and set(mine["metrics"]) == {"accuracy"} and mine["data"]["source"] == "toy"
    samples = [json.loads(line) for line in (run_dir / "shapecount" / "samples.jsonl").read_text().splitlines()]
    assert "squares are there?\nAnswer the question using a single word or phrase. ASSISTANT:" in samples[0]["prompt"]

    # score: the run's own answer file gives the run's number
    code = eval_main(["score", "--task", "shapecount", "--answers", str(run_dir / "shapecount" / "answers.jsonl"),
                      "--limit", "4", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["metrics"] == mine["metrics"]

    # table: the plugin's own column, label and footnote, with a bootstrap CI from its resampling
    code = eval_main(["table", str(run_dir), "--format", "markdown", "--ci", "--n-resamples", "50"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    header = captured.out.splitlines()[0]
    assert "ShapeCnt" in header and header.index("POPE") < header.index("ShapeCnt")
    assert "ShapeCnt: exact-match accuracy" in captured.out

    # plot: radar over the three columns, and the gate heatmap with the plugin's row
    code = eval_main(["plot", str(run_dir), "--kind", "radar", "--out", str(tmp_path / "radar")])
    assert code == 0, capsys.readouterr().err
    code = eval_main(["plot", str(run_dir), "--kind", "gate-heatmap", "--out", str(tmp_path / "gates")])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "radar.png").stat().st_size > 0 and (tmp_path / "gates.pdf").stat().st_size > 0

    # tasks: listed with its data files
    assert eval_main(["tasks"]) == 0
    listing = capsys.readouterr().out
    assert re.search(r"\| shapecount +\| Shape count", listing) and "shapecount/questions.jsonl" in listing


def test_a_plugin_folder_in_a_grid(plugin_env, tmp_path, capsys):
    spec = tmp_path / "grid.yaml"
    spec.write_text(yaml.safe_dump({
        "models": ["toy"], "align_modes": ["gated", "none"], "tasks": ["shapecount"], "seeds": [0],
        "baseline": "toy/none", "settings": {"limit": 4, "batch_size": 4, "max_new_tokens": 4, "source": "toy"},
        "stats": {"n_resamples": 50}}))
    out = tmp_path / "grid"
    code = eval_main(["grid", str(spec), "--output-dir", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    table = (out / "tables" / "grid.md").read_text()
    assert "ShapeCnt" in table


def test_an_entry_point_package_registers_its_folders(tmp_path, monkeypatch, capsys):
    """The third mechanism: another installed package names itself in the ``aligngpt.tasks`` group."""
    from importlib.metadata import EntryPoint

    from aligngpt.harness import task_registry

    package = tmp_path / "site" / "mybench_tasks"
    (package / "shapecount").parent.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    write_plugin(package)
    (package / "shapecount" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.delenv(PATH_ENV, raising=False)
    monkeypatch.setenv("ALIGNGPT_CACHE", str(tmp_path / "cache"))
    point = EntryPoint(name="mybench", value="mybench_tasks", group=task_registry.ENTRY_POINT_GROUP)
    monkeypatch.setattr(task_registry, "entry_points",
                        lambda group: [point] if group == task_registry.ENTRY_POINT_GROUP else [])
    task_registry.clear_cache()
    try:
        spec = task_registry.get_spec("shapecount")
        assert spec.package == "mybench_tasks.shapecount"
        code = eval_main(["run", "--tasks", "shapecount", "--limit", "2", "--batch-size", "2",
                          "--max-new-tokens", "4", "--output-dir", str(tmp_path / "runs"), "--json"])
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert json.loads(captured.out)["tasks"]["shapecount"]["n"] == 2
    finally:
        task_registry.clear_cache()


def test_include_path_flag_registers_a_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(PATH_ENV, raising=False)  # restored after the test, whatever the flag sets
    plugins = tmp_path / "elsewhere"
    write_plugin(plugins)
    assert eval_main(["tasks"]) == 0
    assert "shapecount" not in capsys.readouterr().out
    assert eval_main(["--include-path", str(plugins / "shapecount"), "tasks"]) == 0
    assert "shapecount" in capsys.readouterr().out


def test_a_name_may_be_defined_once(tmp_path, monkeypatch):
    from aligngpt.harness.task_registry import all_specs

    clash = tmp_path / "gqa"
    clash.mkdir()
    (clash / "task.yaml").write_text(TASK_YAML.replace("name: shapecount", "name: gqa"))
    monkeypatch.setenv(PATH_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=r"task 'gqa' is already defined by aligngpt/tasks/gqa/task\.yaml"):
        all_specs()


def _read(text: str, where: str = "/x/shapecount/task.yaml"):
    return read_spec(text, where, folder_name="shapecount", package="aligngpt_task_plugins.shapecount")


def test_the_plugin_spec_reads_back():
    spec = _read(TASK_YAML)
    assert spec.loaders == {"local": ".loader:load_local"} and spec.resampling.metrics == {"accuracy": "all"}
    assert spec.column.group == "instruction" and spec.toy.chance == {"accuracy": None}


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize("old, new, needle, message", [
    ("max_new_tokens: 4", "max_new_tokens: 4\nmax_new_token: 8", "max_new_token: 8", "unknown key"),
    ("  group: instruction", "  group: instruction\n  colour: red", "colour: red", "unknown key"),
    ("max_new_tokens: 4", "max_new_tokens: -1", "max_new_tokens: -1", "must be a positive integer"),
    ("scoring: local", "scoring: locally", "scoring: locally", "must be one of local, server, judge"),
    ("image_handling: config", "image_handling: stretch", "image_handling: stretch", "must be one of config"),
    ("  scheme: question_mean", "  scheme: bootstrap", "scheme: bootstrap", "must be one of question_mean"),
    ("evaluator: .evaluator:ShapeCountEvaluator", "evaluator: ShapeCountEvaluator", "evaluator: ShapeCount",
     "expected 'module:Name'"),
    ("    accuracy: null", "    accuracy: fifty", "accuracy: fifty", "expected a number or null"),
    ("  group: instruction", "  group: instruction\n  ablation: maybe", "ablation: maybe", "expected bool"),
])
def test_bad_keys_and_values_are_refused_at_file_and_line(old, new, needle, message):
    text = TASK_YAML.replace(old, new, 1)
    assert text != TASK_YAML
    with pytest.raises(ConfigError) as err:
        _read(text)
    line = _line_of(text, needle)
    assert str(err.value).startswith(f"/x/shapecount/task.yaml:{line}: "), str(err.value)
    assert message in str(err.value)


def test_missing_key_and_wrong_folder_name_are_refused():
    without = "\n".join(line for line in TASK_YAML.splitlines() if not line.startswith("headline:"))
    with pytest.raises(ConfigError, match=r"task\.yaml:1: .*missing required key 'headline'"):
        _read(without)
    with pytest.raises(ConfigError, match=r"task\.yaml:1: name: must equal the task's folder name 'shapecount'"):
        _read(TASK_YAML.replace("name: shapecount", "name: othername"))


def test_every_builtin_spec_key_is_known_and_docs_list_them():
    """The shipped folders parse strictly, and the benchmark guide documents every top-level key."""
    from aligngpt.harness.task_registry import ordered_specs
    from aligngpt.harness.task_spec import _TOP_KEYS

    builtin = [s for s in ordered_specs() if s.package.startswith("aligngpt.tasks.")]
    assert len(builtin) == 14
    guide = (Path(__file__).resolve().parents[1] / "docs" / "adding-a-benchmark.md").read_text()
    missing = [k for k in _TOP_KEYS if f"`{k}`" not in guide]
    assert not missing, missing
    assert textwrap.dedent(TASK_YAML).startswith("name: shapecount")
