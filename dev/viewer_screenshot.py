"""Screenshot of ``aligngpt-eval view`` for the README (docs/images/viewer.png).

Runs a two-cell toy grid (gated vs none, 40 GQA + 40 POPE questions; about a minute on a CPU),
writes its comparison report, opens it in headless Chromium, lists the questions that flipped
between the two cells and saves a screenshot of the page, cropped and reduced to a palette so
the PNG stays small.

    python dev/viewer_screenshot.py --out docs/images/viewer.png
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="docs/images/viewer.png")
    ap.add_argument("--work", default=None, help="folder for the grid (default: a temporary one)")
    ap.add_argument("--width", type=int, default=1200)
    ap.add_argument("--height", type=int, default=1500, help="height of the cropped screenshot in px")
    args = ap.parse_args(argv)

    from PIL import Image

    from aligngpt.cli.eval_cli import main as eval_main
    from aligngpt.report.headless import chromium, file_url, missing_reason

    if missing_reason():
        print(f"viewer_screenshot: {missing_reason()}", file=sys.stderr)
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="viewer-shot-"))
    spec = work / "grid.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(yaml.safe_dump({"models": [{"label": "toy", "path": "toy"}], "align_modes": ["gated", "none"],
                                    "tasks": ["gqa", "pope"], "seeds": [0], "baseline": "toy/none",
                                    "settings": {"limit": 40, "source": "toy"}, "stats": {"n_resamples": 1000}}))
    grid = work / "grid"
    if eval_main(["grid", str(spec), "--output-dir", str(grid), "--quiet"]) != 0:
        return 1
    report = work / "report.html"
    if eval_main(["view", str(grid), "--out", str(report)]) != 0:
        return 1
    raw = work / "full.png"
    with chromium(args.width, 3000) as driver:
        driver.get(file_url(report))
        driver.execute_script(
            "const s = document.getElementById('f-flip'); s.value = 'any'; s.dispatchEvent(new Event('change'));")
        driver.save_screenshot(str(raw))
    with Image.open(raw) as im:
        shot = im.crop((0, 0, args.width, min(args.height, im.height))).convert("RGB")
        shot = shot.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shot.save(out, optimize=True)
    print(f"viewer_screenshot: {out} ({out.stat().st_size / 1e3:.0f} KB) from {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
