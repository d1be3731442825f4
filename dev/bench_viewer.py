"""Benchmark ``aligngpt-eval view`` on a 50,000-question synthetic run in headless Chromium.

Writes synthetic run folders (results.json + samples.jsonl shaped as the harness writes them:
chat-template prompts, VQA soft scores with 10 answers, full-precision gate weights), builds the
report for one run and for a two-run comparison, with thumbnails of synthetic images, and
measures in Debian's headless Chromium (``aligngpt.report.headless``):

* file size and Python build time;
* open: navigation start until the first frame after the page script finished
  (``performance.now()`` after two animation frames), and the page script's own time;
* filter: from changing a control until the next frame has been painted, for each filter.

Each browser figure is the median and the maximum of ``--repeats`` fresh page loads.

    python dev/bench_viewer.py --out results/viewer/bench.txt
"""
from __future__ import annotations

import argparse
import io
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions. USER: <image>\n")
SUFFIX = "\nAnswer the question using a single word or phrase. ASSISTANT:"
WORDS = ("red blue green yellow cat dog car tree table chair man woman sky left right top bottom two three "
         "wooden metal large small striped open closed").split()
#: task -> (questions, question kinds, scoring)
TASKS = {"vqav2_val": (20000, ("yes/no", "number", "other"), "vqa"), "gqa": (20000, ("open", "binary"), "exact"),
         "pope": (10000, ("random", "popular", "adversarial"), "exact")}


def _rows(task: str, n: int, kinds, scoring: str, rng: random.Random, flip_from: list[dict] | None) -> list[dict]:
    rows = []
    for i in range(n):
        if flip_from is not None:
            row = dict(flip_from[i])
            if rng.random() < 0.08:  # the second run answers 8% of the questions differently
                row["prediction"] = rng.choice(WORDS)
                row["parsed"] = row["prediction"]
                row["score"] = 1.0 - row["score"] if scoring == "exact" else rng.choice((0.0, 0.3, 0.6, 1.0))
            rows.append(row)
            continue
        q = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 10))).capitalize() + "?"
        pred = rng.choice(WORDS)
        w = [rng.random() for _ in range(7)]
        row = {"question_id": f"{task}-{i}", "prompt": SYSTEM + q + SUFFIX, "prediction": pred,
               "alignment_weights": [x / sum(w) for x in w], "image": f"images/{i // 25}.jpg",
               "meta": {"image_id": i // 25}, "parsed": pred}
        if scoring == "vqa":
            row["target"] = [rng.choice(WORDS) for _ in range(10)]
            row["score"] = min(row["target"].count(pred) / 3, 1.0)
            row["answer_type"] = rng.choice(kinds)
        else:
            row["target"] = rng.choice(WORDS)
            row["score"] = float(rng.random() < 0.6)
            row["split" if task == "pope" else "type"] = rng.choice(kinds)
        rows.append(row)
    return rows


def write_synthetic_run(root: Path, name: str, seed: int, base: Path | None = None) -> Path:
    run = root / name
    rng = random.Random(seed)
    tasks = {}
    for task, (n, kinds, scoring) in TASKS.items():
        prev = None
        if base is not None:
            prev = [json.loads(line) for line in (base / task / "samples.jsonl").read_text().splitlines()]
        rows = _rows(task, n, kinds, scoring, rng, prev)
        (run / task).mkdir(parents=True)
        (run / task / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        tasks[task] = {"metrics": {"accuracy": 100 * sum(r["score"] for r in rows) / n}, "n": n,
                       "protocol": "llava15", "data": {"source": "synthetic", "fingerprint": f"{seed:064x}"}}
    (run / "results.json").write_text(json.dumps({
        "model": {"name": name, "path": f"/synthetic/{name}", "align_mode": "gated", "dtype": "float16"},
        "settings": {"model": name, "source": "synthetic", "data_root": None, "limit": None, "seed": seed},
        "environment": {"aligngpt": "bench"}, "tasks": tasks}))
    return run


def synthetic_images(n_images: int):
    """find_images for build_payload: question i of every task shows image i // 25 (PNG bytes,
    336 px, drawn shapes), as the harness would reload them from the data."""
    from PIL import Image, ImageDraw

    cache: dict[int, bytes] = {}

    def image(k: int) -> bytes:
        if k not in cache:
            rng = random.Random(k)
            im = Image.new("RGB", (336, 336), tuple(rng.randrange(256) for _ in range(3)))
            d = ImageDraw.Draw(im)
            for _ in range(6):
                x, y = rng.randrange(300), rng.randrange(300)
                d.ellipse((x, y, x + rng.randrange(20, 120), y + rng.randrange(20, 120)),
                          fill=tuple(rng.randrange(256) for _ in range(3)))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            cache[k] = buf.getvalue()
        return cache[k]

    def find(task: str, settings) -> tuple[dict, None]:
        n = TASKS[task][0]
        return {f"{task}-{i}": image((i // 25) % n_images) for i in range(n)}, None

    return find


_FRAME = ("const done = arguments[arguments.length - 1];"
          "requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now())));")


def _filter_ms(driver, control: str, value: str) -> float:
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1]; const t = performance.now();"
        "const c = document.getElementById(arguments[0]); c.value = arguments[1];"
        "c.dispatchEvent(new Event('change'));"
        "requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t)));", control, value)


def measure(driver, path: Path, filters: list[tuple[str, str, str]]) -> dict[str, float]:
    from aligngpt.report.headless import file_url

    driver.get("about:blank")
    driver.get(file_url(path))
    out = {"open_ms": driver.execute_async_script(_FRAME),
           "script_ms": driver.execute_script("return window.__viewer.parseAndSetupMs")}
    assert driver.execute_script("return window.__viewer.ready") is True
    for name, control, value in filters:
        out[name] = _filter_ms(driver, control, value)
    out["shown"] = driver.execute_script("return document.getElementById('pager-info').dataset.total")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="results/viewer/bench.txt")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--images", type=int, default=2000, help="distinct synthetic images (25 questions each)")
    args = ap.parse_args(argv)

    from aligngpt.report.headless import chromium, missing_reason
    from aligngpt.report.viewer import render_html
    from aligngpt.report.viewer_data import build_payload, load_view_runs

    if missing_reason():
        print(f"bench_viewer: {missing_reason()}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-viewer-"))
    a = write_synthetic_run(work, "synthetic-a", 1)
    b = write_synthetic_run(work, "synthetic-b", 2, base=a)
    n = sum(v[0] for v in TASKS.values())
    common = [("filter_wrong", "f-status", "wrong"), ("filter_task_gqa", "f-task", "gqa"),
              ("filter_type_binary", "f-type", "binary"), ("filter_search_first", "f-search", "red car"),
              ("filter_search_second", "f-search", "blue"), ("filter_reset_all_tasks", "f-task", "all")]
    cases = [(f"one run, {n:,} questions, thumbnails", [a], True, common),
             (f"one run, {n:,} questions, --no-images", [a], False, common),
             (f"two runs compared, {n:,} questions each, thumbnails", [a, b], True,
              common + [("filter_flips_any", "f-flip", "any"), ("filter_flips_rw", "f-flip", "rw")])]
    lines = [f"# aligngpt-eval view on synthetic runs: {n} questions per run ({', '.join(f'{t} {v[0]}' for t, v in TASKS.items())}),",
             f"# {args.images} distinct 336 px images (25 questions each), 160 px JPEG thumbnails;",
             f"# headless Chromium (Debian package), median / max of {args.repeats} fresh page loads.",
             f"# command: python dev/bench_viewer.py --out {args.out} --repeats {args.repeats} --images {args.images}",
             "# open = navigation start to the first frame after the page script; filter = control change to the next painted frame.",
             ""]
    report = {}
    with chromium(1300, 1000) as driver:
        version = driver.capabilities.get("browserVersion")
        lines.insert(3, f"# browser: Chromium {version}, window 1300x1000")
        for title, runs_dirs, images, filters in cases:
            t0 = time.perf_counter()
            runs, _ = load_view_runs(runs_dirs)
            payload = build_payload(runs, with_images=images, find_images=synthetic_images(args.images))
            html = render_html(payload)
            path = work / f"report-{len(report)}.html"
            path.write_text(html, encoding="utf-8")
            build_s = time.perf_counter() - t0
            samples = [measure(driver, path, filters) for _ in range(args.repeats)]
            keys = [k for k in samples[0] if k != "shown"]
            stats = {k: (statistics.median(s[k] for s in samples), max(s[k] for s in samples)) for k in keys}
            report[title] = {"bytes": path.stat().st_size, "build_s": build_s, "thumbnails": len(payload["images"]),
                             **{k: {"median_ms": v[0], "max_ms": v[1]} for k, v in stats.items()}}
            lines.append(f"## {title}")
            lines.append(f"file size: {path.stat().st_size / 1e6:.1f} MB ({len(payload['images'])} thumbnails); "
                         f"python build: {build_s:.1f} s")
            for k, (med, mx) in stats.items():
                lines.append(f"{k:<24} median {med:7.0f} ms   max {mx:7.0f} ms")
            worst = max(mx for _, mx in stats.values())
            lines.append(f"slowest open or filter: {worst:.0f} ms ({'under' if worst < 2000 else 'OVER'} 2 s)")
            lines.append("")
    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
