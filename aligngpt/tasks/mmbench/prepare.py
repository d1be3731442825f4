"""``prepare``: lmms-lab MMBench -> the OpenCompass TSV files LLaVA evaluated."""
from __future__ import annotations

import base64
from typing import Any, Callable, Sequence

from aligngpt.data.base import Sample
from aligngpt.harness.prepare import LayoutWriter, _image_bytes


def _mmbench_tsv(samples: list[Sample]) -> str:
    """The OpenCompass TSV of the HF rows: cells exactly as the HF loader saw them (pandas NA
    rules already applied: NA cells are empty), the image base64-encoded."""
    import pandas as pd

    columns: list[str] = []
    records = []
    for s in samples:
        row = dict(s.meta["row"])
        for key in row:
            if key not in columns:
                columns.append(key)
        row["image"] = base64.b64encode(_image_bytes(s, "mmbench")).decode("ascii")
        records.append(row)
    columns.append("image")
    frame = pd.DataFrame.from_records(records, columns=columns).astype(object)
    frame = frame.where(frame.notna(), None)
    return frame.to_csv(sep="\t", index=False, na_rep="", lineterminator="\n")


def _convert_mmbench_file(rel: str) -> Callable[..., None]:
    def convert(samples: list[Sample], w: LayoutWriter, source: str, hf_path: str, options: dict) -> None:
        w.write_text(rel, _mmbench_tsv(samples), rows=len(samples))

    convert.__doc__ = f"``{rel}``: one TSV row per HF row (circular copies included)."
    return convert


convert_mmbench = _convert_mmbench_file("mmbench/mmbench_dev_20230712.tsv")
convert_mmbench_cn = _convert_mmbench_file("mmbench/mmbench_dev_cn_20231003.tsv")


def count_details(samples: Sequence[Sample], full: bool, result: dict[str, Any], problems: list[str]) -> None:
    """Name the other MMBench release when its row count shows up."""
    if problems and len(samples) == 4_329 and result.get("expected") == 4_377:
        problems.append("4,329 rows is the 20231003 release (lmms-lab/MMBench 'en'); LLaVA's "
                        "mmbench_dev_20230712.tsv has 4,377 (lmms-lab/MMBench_EN)")
