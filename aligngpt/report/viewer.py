"""``aligngpt-eval view``: one self-contained HTML report of a run, a comparison or a grid.

The file needs no server and no network: CSS and JavaScript are inline, thumbnails are JPEG
data URLs (longest side ``thumb_size`` px, one per distinct image), and the data is one JSON
block.  Model outputs and dataset text are untrusted, so:

* the JSON is embedded with ``<``, ``>``, ``&`` and U+2028/2029 written as ``\\uXXXX`` escapes:
  no markup from the data appears anywhere in the file, and no string can close the
  ``<script>`` element it sits in;
* the page script builds every element with DOM APIs and puts data in text nodes or attribute
  values, never through ``innerHTML``;
* a Content-Security-Policy allows only the page's own script (by hash), inline styles and
  ``data:`` images, so even an injected handler would not run and nothing is fetched.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Sequence

from ..io import atomic_write_text
from .viewer_data import ViewRun, baseline_index, build_payload, load_view_runs

_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_ESCAPE_RE = re.compile("[<>&\u2028\u2029]")


def embed_json(payload: Any) -> str:
    """JSON safe to place inside ``<script type="application/json">`` (see the module docstring).

    The escaped characters can only occur inside JSON strings, where ``\\uXXXX`` means the same
    character, so ``JSON.parse`` returns exactly the payload."""
    text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (possible in JSON input) cannot be written as UTF-8
        text = json.dumps(payload, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return _ESCAPE_RE.sub(lambda m: _ESCAPES[m.group(0)], text)


def _asset(name: str) -> str:
    return resources.files("aligngpt.report").joinpath(name).read_text(encoding="utf-8")


def render_html(payload: dict) -> str:
    """The report page for a payload from :func:`~aligngpt.report.viewer_data.build_payload`."""
    js, css = _asset("viewer.js"), _asset("viewer.css")
    if "</" in js or "<!--" in js or "</" in css:
        raise AssertionError("viewer assets must not contain '</' or '<!--' (they are inlined)")
    digest = base64.b64encode(hashlib.sha256(js.encode("utf-8")).digest()).decode("ascii")
    values = {"CSS": css, "JS": js, "DATA": embed_json(payload), "SCRIPT_HASH": f"sha256-{digest}"}
    # One pass over the template only: substituted text is never scanned for markers again.
    return re.sub(r"@(CSS|JS|DATA|SCRIPT_HASH)@", lambda m: values[m.group(1)], _asset("viewer.html"))


def default_out(runs: Sequence[ViewRun], paths: Sequence[str | Path]) -> Path:
    """``RUN_DIR/report.html`` for one run or one grid folder, else ``report-compare.html`` in
    the working directory."""
    if len(paths) == 1:
        return Path(paths[0]) / "report.html"
    return Path("report-compare.html")


def write_report(paths: Sequence[str | Path], out: str | Path | None = None, *, baseline: str | None = None,
                 with_images: bool = True, thumb_size: int = 160) -> tuple[Path, dict]:
    """Build and write the report; returns its path and the payload it embeds."""
    runs, grid_baseline = load_view_runs(paths)
    base = baseline_index(runs, baseline if baseline is not None else grid_baseline)
    payload = build_payload(runs, baseline=base, with_images=with_images, thumb_size=thumb_size)
    target = Path(out) if out else default_out(runs, paths)
    atomic_write_text(target, render_html(payload))
    return target, payload
