"""``aligngpt-eval view``: the HTML report, checked in its file and through headless Chromium's DOM.

Browser tests need Debian's ``chromium`` + ``chromium-driver`` and Selenium (the ``test``
extra); without them they skip and say why. The file-level checks (escaping, payload, CLI)
always run.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aligngpt.cli.eval_cli import main
from aligngpt.report.headless import chromium, file_url, missing_reason
from aligngpt.report.viewer import embed_json, write_report
from aligngpt.report.viewer_data import RIGHT_THRESHOLD

HOSTILE = '<img src=x onerror="window.__pwned=1"></script><script>window.__pwned=2</script>&amp;\u2028'
HOSTILE_TYPE = "<b>type</b>"


def _flat(metrics: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def _write_run(run_dir: Path, name: str, tasks: dict[str, list[dict]], metrics: dict[str, dict]) -> Path:
    """A run folder as the harness writes it (results.json + TASK/samples.jsonl)."""
    for task, rows in tasks.items():
        (run_dir / task).mkdir(parents=True, exist_ok=True)
        (run_dir / task / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    results = {
        "model": {"name": name, "path": f"/models/{name}", "align_mode": "gated", "dtype": "float32"},
        "settings": {"model": name, "source": "local", "data_root": None, "limit": None, "seed": 0},
        "environment": {"aligngpt": "0.1.0"},
        "tasks": {t: {"metrics": metrics[t], "n": len(rows), "protocol": "llava15",
                      "data": {"source": "local", "fingerprint": "ab" * 32}} for t, rows in tasks.items()},
    }
    (run_dir / "results.json").write_text(json.dumps(results), encoding="utf-8")
    return run_dir


def _row(qid, pred, target, score, kind="open", weights=(0.25, 0.5, 0.25)) -> dict:
    return {"question_id": qid, "prompt": f"SYSTEM USER: <image>\nQuestion {qid}?\nAnswer briefly. ASSISTANT:",
            "prediction": pred, "target": target, "alignment_weights": list(weights), "image": None,
            "meta": {}, "parsed": str(pred).lower(), "score": score, "type": kind}


@pytest.fixture()
def hand_runs(tmp_path):
    """Two hand-built runs over gqa and pope with known right/wrong states and hostile strings."""
    a_gqa = [_row(i, "yes" if i % 2 else "no", "yes", 1.0 if i % 2 else 0.0, "binary" if i % 3 else "open")
             for i in range(1, 13)]
    a_gqa[0] = _row(1, HOSTILE, HOSTILE, 0.0, HOSTILE_TYPE)
    b_gqa = [dict(r, score=1.0 - r["score"]) if r["question_id"] in (2, 3, 4, 5) else dict(r) for r in a_gqa]
    pope = [dict(_row(f"p{i}", "Yes", "yes" if i < 5 else "no", 1.0 if i < 5 else 0.0), split="adversarial")
            for i in range(8)]
    for r in pope:
        del r["type"]
    pope[6]["score"] = None  # e.g. a missing judgement: neither right nor wrong
    pope_b = [dict(r, score=0.0) if r["question_id"] == "p0" else dict(r) for r in pope[:7]]  # p7 absent from B
    metrics = {"gqa": {"accuracy": 50.0, "binary": 51.851851851851855, "open": None},
               "pope": {"f1": 64.15094339622641, "n_scored": 8, "splits": {"adversarial": {"f1": 64.15094339622641, "recall": 85.0}}}}
    a = _write_run(tmp_path / "run_a", "model-a" + HOSTILE, {"gqa": a_gqa, "pope": pope}, metrics)
    b = _write_run(tmp_path / "run_b", "model-b", {"gqa": b_gqa, "pope": pope_b},
                   {"gqa": dict(metrics["gqa"], accuracy=50.0), "pope": metrics["pope"]})
    return a, b


def _samples(run_dir: Path) -> dict[tuple[str, str], dict]:
    out = {}
    for f in sorted(run_dir.glob("*/samples.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            out[(f.parent.name, str(row["question_id"]))] = row
    return out


def _wrong(run_dir: Path) -> set[tuple[str, str]]:
    return {k for k, r in _samples(run_dir).items() if r.get("score") is not None and r["score"] < RIGHT_THRESHOLD}


def _flips(a: Path, b: Path) -> dict[str, set[tuple[str, str]]]:
    sa, sb = _samples(a), _samples(b)
    out = {"rw": set(), "wr": set()}
    for k in sa.keys() & sb.keys():
        ra, rb = sa[k].get("score"), sb[k].get("score")
        if ra is None or rb is None:
            continue
        if ra >= RIGHT_THRESHOLD > rb:
            out["rw"].add(k)
        elif rb >= RIGHT_THRESHOLD > ra:
            out["wr"].add(k)
    return out


def _shown(value) -> str:
    """How the page prints a metric (as the CLI's tables): floats with 2 decimals, None as a dash."""
    if value is None:
        return "—"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- file level


def test_embedded_json_has_no_markup_and_round_trips():
    payload = {"s": HOSTILE, "list": [HOSTILE, "a>b & c"], "n": 1.5, "cjk": "图中是什么？"}
    text = embed_json(payload)
    assert not re.search(r"[<>&\u2028\u2029]", text)
    assert json.loads(text) == payload and "图中是什么" in text  # non-ASCII stays as is (smaller files)
    lone = {"s": "broken \ud800 surrogate"}  # json.loads accepts it; UTF-8 cannot encode it
    text = embed_json(lone)
    text.encode("utf-8")
    assert json.loads(text) == lone


def test_report_file_carries_no_raw_markup_from_the_data(hand_runs, tmp_path):
    out, payload = write_report(list(hand_runs), tmp_path / "r.html", with_images=False)
    html = out.read_text(encoding="utf-8")
    assert html.count("</script") == 2  # the page's own two script elements, nothing from the data
    assert "<img" not in html and "<b>" not in html and "window.__pwned" in html  # present, but escaped
    data = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S).group(1)
    assert json.loads(data) == payload
    assert payload["samples"]["gqa"]["runs"][0]["pred"][0] == HOSTILE
    assert "innerHTML" not in html and "outerHTML" not in html and "insertAdjacentHTML" not in html


def test_payload_joins_runs_and_keeps_exact_scores(hand_runs):
    from aligngpt.report.viewer_data import build_payload, load_view_runs

    runs, _ = load_view_runs(list(hand_runs))
    p = build_payload(runs, with_images=False)
    gqa = p["samples"]["gqa"]
    assert gqa["qid"] == [str(i) for i in range(1, 13)]
    assert gqa["prompt_prefix"] == "SYSTEM USER: <image>\n" and gqa["prompt"][1] == "Question 2?"
    assert gqa["prompt_suffix"] == "\nAnswer briefly. ASSISTANT:"
    assert [r["score"][1] for r in gqa["runs"]] == [0.0, 1.0]
    assert p["samples"]["pope"]["type"][0] == "adversarial"  # "split" names POPE's question kind


def test_view_cli_writes_report_and_bad_folder_is_one_line_error(hand_runs, tmp_path, capsys):
    out = tmp_path / "cmp.html"
    assert main(["view", str(hand_runs[0]), str(hand_runs[1]), "--out", str(out), "--no-images"]) == 0
    assert out.is_file() and "2 run(s), 20 questions" in capsys.readouterr().out
    assert main(["view", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope" in err and "results.json" in err
    with pytest.raises(SystemExit) as bad_size:  # argparse's own one-line error
        main(["view", str(hand_runs[0]), "--thumb-size", "4"])
    assert bad_size.value.code == 2 and "--thumb-size" in capsys.readouterr().err
    assert main(["view", str(hand_runs[0]), str(hand_runs[1]), "--baseline", "nope", "--out", str(out)]) == 2
    assert "--baseline 'nope' matches no run" in capsys.readouterr().err
    # a baseline by folder name puts it first in the deltas; images that cannot be found are a note, not an error
    assert main(["view", str(hand_runs[0]), str(hand_runs[1]), "--baseline", "run_b", "--out", str(out)]) == 0
    assert "images of gqa not found" in capsys.readouterr().err
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', out.read_text(encoding="utf-8"), re.S).group(1))
    assert data["baseline"] == 1 and data["images"] == []


def test_bad_samples_line_names_file_and_line(hand_runs, tmp_path, capsys):
    f = hand_runs[0] / "gqa" / "samples.jsonl"
    f.write_text(f.read_text().replace('"score": 1.0', '"score": "high"', 1))
    assert main(["view", str(hand_runs[0]), "--no-images", "--out", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert f"{f}:3: score" in err  # question 3 is the first with score 1.0


# --------------------------------------------------------------------------- browser

needs_browser = pytest.mark.skipif(missing_reason() is not None, reason=f"headless Chromium: {missing_reason()}")


@pytest.fixture(scope="module")
def browser():
    if missing_reason() is not None:
        pytest.skip(f"headless Chromium: {missing_reason()}")
    with chromium(1300, 1000) as driver:
        yield driver


@pytest.fixture(scope="module")
def toy_grid(tmp_path_factory):
    """A real toy grid (gated vs none, baseline none) on 40 GQA + 40 POPE questions: its folder and
    its two cells' run folders (gated first)."""
    import yaml

    root = tmp_path_factory.mktemp("viewer_grid")
    spec = root / "grid.yaml"
    spec.write_text(yaml.safe_dump({
        "models": [{"label": "toy", "path": "toy"}], "align_modes": ["gated", "none"], "tasks": ["gqa", "pope"],
        "seeds": [0], "baseline": "toy/none", "settings": {"limit": 40, "source": "toy"},
        "stats": {"n_resamples": 200}}))
    out = root / "grid"
    assert main(["grid", str(spec), "--output-dir", str(out), "--quiet"]) == 0
    cells = {c["label"]: out / c["run_dir"] for c in json.loads((out / "grid_state.json").read_text())["cells"]}
    return out, [cells["toy/gated"], cells["toy/none"]]


@pytest.fixture(scope="module")
def toy_runs(toy_grid):
    return toy_grid[1]


def _open(driver, path: Path) -> None:
    driver.get(file_url(path))
    assert driver.execute_script("return window.__viewer && window.__viewer.ready") is True


def _choose(driver, select_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.ID, select_id)).select_by_value(value)


def _listed(driver) -> list[tuple[str, str, str | None]]:
    """(task, question id, flip mark) of every card over all pages of the current filter."""
    from selenium.webdriver.common.by import By

    _choose(driver, "f-size", "200")
    seen = []
    while True:
        seen += driver.execute_script(
            "return Array.from(document.querySelectorAll('#sample-list .card'))"
            ".map(c => [c.dataset.task, c.dataset.qid, c.dataset.flip || null]);")
        nxt = driver.find_element(By.ID, "btn-next")
        if not nxt.is_enabled():
            return [tuple(x) for x in seen]
        nxt.click()


@needs_browser
def test_toy_report_metrics_and_wrong_filter_through_the_dom(browser, toy_runs, tmp_path):
    run = toy_runs[0]
    assert main(["view", str(run)]) == 0
    report = run / "report.html"
    _open(browser, report)
    results = json.loads((run / "results.json").read_text())
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('#metrics-table td.metric'))"
        ".map(td => [td.dataset.task, td.dataset.metric, td.dataset.value ?? null, td.textContent]);")
    expected = {(t, k): v for t, res in results["tasks"].items() for k, v in _flat(res["metrics"]).items()}
    assert {(t, k) for t, k, _, _ in cells} == set(expected)
    for t, k, value, text in cells:
        assert json.loads(value) == expected[(t, k)], (t, k)
        assert text == _shown(expected[(t, k)]), (t, k, text)
    # thumbnails came from the toy data
    assert browser.execute_script("return document.querySelectorAll('#sample-list img').length") > 0
    assert browser.execute_script("return document.querySelector('#sample-list img').src").startswith("data:image/jpeg")

    _choose(browser, "f-status", "wrong")
    listed = _listed(browser)
    assert len(listed) == len(set(listed))
    assert {(t, q) for t, q, _ in listed} == _wrong(run) and _wrong(run)
    badges = browser.execute_script("return Array.from(document.querySelectorAll('#sample-list .badge'))"
                                    ".map(b => b.dataset.state);")
    assert badges and set(badges) == {"wrong"}
    browser.save_screenshot(str(tmp_path / "toy_report.png"))
    assert (tmp_path / "toy_report.png").stat().st_size > 10_000


@needs_browser
def test_toy_comparison_flipped_list_equals_samples(browser, toy_runs, tmp_path):
    a, b = toy_runs
    out = tmp_path / "compare.html"
    assert main(["view", str(a), str(b), "--out", str(out)]) == 0
    _open(browser, out)
    flips = _flips(a, b)
    assert flips["rw"] and flips["wr"]  # the toy model answers some questions differently without alignment
    counts = browser.execute_script(
        "return Array.from(document.querySelectorAll('#flip-summary tr[data-task]')).map(r => [r.dataset.task,"
        " +r.querySelector('[data-kind=rw]').textContent, +r.querySelector('[data-kind=wr]').textContent]);")
    for task, rw, wr in counts:
        assert rw == sum(1 for t, _ in flips["rw"] if t == task)
        assert wr == sum(1 for t, _ in flips["wr"] if t == task)
    for kind in ("rw", "wr"):
        _choose(browser, "f-flip", kind)
        listed = _listed(browser)
        assert {(t, q) for t, q, _ in listed} == flips[kind]
        assert {f for _, _, f in listed} <= {kind}
    _choose(browser, "f-flip", "any")
    assert {(t, q) for t, q, _ in _listed(browser)} == flips["rw"] | flips["wr"]
    browser.save_screenshot(str(tmp_path / "toy_compare.png"))
    assert (tmp_path / "toy_compare.png").stat().st_size > 10_000


@needs_browser
def test_hand_built_flips_search_and_type_filters(browser, hand_runs, tmp_path):
    a, b = hand_runs
    out, _ = write_report([a, b], tmp_path / "cmp.html", with_images=False)
    _open(browser, out)
    flips = _flips(a, b)
    assert flips["rw"] == {("gqa", "3"), ("gqa", "5"), ("pope", "p0")} and flips["wr"] == {("gqa", "2"), ("gqa", "4")}
    _choose(browser, "f-flip", "rw")
    assert {(t, q) for t, q, _ in _listed(browser)} == flips["rw"]
    _choose(browser, "f-flip", "all")
    _choose(browser, "f-status", "unscored")
    assert _listed(browser) == [("pope", "p6", None)]
    _choose(browser, "f-status", "all")
    _choose(browser, "f-task", "pope")
    badges = browser.execute_script(
        "return Array.from(document.querySelectorAll('#sample-list .card[data-qid=p7] .badge')).map(b => b.dataset.state);")
    assert badges == ["wrong", "absent"]
    _choose(browser, "f-task", "gqa")
    _choose(browser, "f-type", "binary")
    assert {q for _, q, _ in _listed(browser)} == {str(i) for i in range(2, 13) if i % 3}
    _choose(browser, "f-type", "all")
    box = browser.find_element("id", "f-search")
    box.send_keys("question 11?")
    box.send_keys("\n")
    browser.execute_script("document.getElementById('f-search').dispatchEvent(new Event('change'))")
    assert [q for _, q, _ in _listed(browser)] == ["11"]
    # deltas against the baseline (first run) through the DOM
    delta = browser.execute_script("return document.querySelector(\"td.delta[data-task=gqa][data-metric=accuracy]\").dataset.value")
    assert json.loads(delta) == 0.0
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('#metrics-table td.metric[data-run=\"0\"]'))"
        ".map(td => [td.dataset.task + ':' + td.dataset.metric, td.textContent]);")
    assert dict(shown) == {"gqa:accuracy": "50.00", "gqa:binary": "51.85", "gqa:open": "—", "pope:f1": "64.15",
                           "pope:n_scored": "8", "pope:splits.adversarial.f1": "64.15",
                           "pope:splits.adversarial.recall": "85.00"}


@needs_browser
def test_hostile_strings_render_as_text(browser, hand_runs, tmp_path):
    out, _ = write_report([hand_runs[0]], tmp_path / "hostile.html", with_images=False)
    _open(browser, out)
    _choose(browser, "f-task", "gqa")
    state = browser.execute_script("""
        const card = document.querySelector('#sample-list .card[data-qid="1"]');
        return {pwned: window.__pwned === undefined ? null : window.__pwned,
                pred: card.querySelector('td.pred').textContent,
                target: card.querySelector('.target-text').textContent,
                imgs: document.querySelectorAll('img').length,
                scripts: document.querySelectorAll('script').length,
                bold: document.querySelectorAll('b').length - document.querySelectorAll('.target b').length,
                title: document.title,
                label: document.querySelector('#runs summary').textContent,
                types: Array.from(document.querySelectorAll('#f-type option')).map(o => o.value)};""")
    assert state["pwned"] is None
    assert state["pred"] == HOSTILE and state["target"] == HOSTILE
    assert state["imgs"] == 0 and state["scripts"] == 2 and state["bold"] == 0
    assert HOSTILE in state["title"] and HOSTILE in state["label"]
    assert HOSTILE_TYPE in state["types"]
    logs = [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"] if hasattr(browser, "get_log") else []
    assert not logs, logs


@needs_browser
def test_grid_folder_shows_cis_and_paired_deltas_against_its_baseline(browser, toy_grid, tmp_path):
    grid, _ = toy_grid
    assert main(["view", str(grid)]) == 0
    _open(browser, grid / "report.html")
    gres = {c["label"]: c for c in json.loads((grid / "grid_results.json").read_text())["cells"]}
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('#metrics-table td.delta[data-value]'))"
        ".map(td => [td.dataset.run, td.dataset.task, td.dataset.metric, +td.dataset.value, td.textContent]);")
    heads = browser.execute_script("return Array.from(document.querySelectorAll('#metrics-table th')).map(t => t.textContent);")
    assert "toy/none (baseline)" in heads and "Δ toy/gated" in heads
    paired = gres["toy/gated"]["tasks"]["gqa"]["vs_baseline"]["accuracy"]
    row = [c for c in cells if c[1] == "gqa" and c[2] == "accuracy"]
    assert len(row) == 1 and row[0][3] == paired["diff"]
    assert f"CI [{paired['ci_low']:.2f}, {paired['ci_high']:.2f}]" in row[0][4]
    ci = gres["toy/none"]["tasks"]["pope"]["ci"]["f1"]
    shown = browser.execute_script(
        "return Array.from(document.querySelectorAll('#metrics-table td.metric[data-task=pope][data-metric=f1]'))"
        ".map(td => td.textContent);")
    assert any(f"CI [{ci['low']:.2f}, {ci['high']:.2f}]" in t for t in shown)


@needs_browser
def test_bench_script_runs_on_a_small_synthetic_run(tmp_path, monkeypatch, capsys):
    from dev import bench_viewer as bench

    monkeypatch.setattr(bench, "TASKS", {"gqa": (60, ("open", "binary"), "exact"),
                                         "vqav2_val": (40, ("yes/no", "other"), "vqa")})
    out = tmp_path / "bench.txt"
    assert bench.main(["--out", str(out), "--repeats", "1", "--images", "3"]) == 0
    text = out.read_text()
    assert "100 questions per run" in text and text.count("slowest open or filter") == 3
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["one run, 100 questions, thumbnails"]["thumbnails"] == 5  # 3 images in gqa, 2 in vqav2_val
