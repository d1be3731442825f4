"""VQAv2: test-dev (scored by the EvalAI server) and val2014 (the local proxy).

Local layout (LLaVA-1.5 ``playground/data/eval``), under ``<data_root>/vqav2/``::

    llava_vqav2_mscoco_test-dev2015.jsonl       questions LLaVA runs (question_id, image, text)
    llava_vqav2_mscoco_test2015.jsonl           every test2015 question (the upload lists them all)
    test2015/COCO_test2015_*.jpg
    v2_OpenEnded_mscoco_val2014_questions.json  official VQA question file ({"questions": [...]})
    v2_mscoco_val2014_annotations.json          official VQA annotation file ({"annotations": [...]})
    val2014/COCO_val2014_*.jpg

Task ``vqav2``: one sample per test-dev line, its text used verbatim (the short-answer suffix is
already in it). LLaVA's ``scripts/convert_vqav2_for_submission.py`` writes the upload over the
*full* test2015 list, so every sample carries, in ``meta["submission_split"]``, a small JSON
reference to that list (one dict shared by all samples of a load); :func:`submission_question_ids`
turns it back into the ordered ids. The local loader checks up front that every test-dev id is in
the test2015 list (the official converter would silently drop an answer that is not).

Task ``vqav2_val``: one sample per question of the official question file, in file order; the
question id is the VQA ``question_id``; the prompt is the question plus the short-answer suffix;
the target holds the annotation's answers, answer type and question type.

HF source: ``lmms-lab/VQAv2`` (default config; splits ``testdev``, ``test``, ``validation``),
with prompts identical to the local ones.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

from aligngpt.errors import DataError
from aligngpt.extras import import_optional
from aligngpt.io import iter_jsonl, read_json
from aligngpt.data.base import Sample, resolve_image_path
from aligngpt.data.lmms_lab import _local_parquet_files, image_bytes, load_lmms_split
from aligngpt.harness.task_registry import prompt_suffix
from aligngpt.data.lmms_lab import benchmark_dir, require, undecoded_rows

TASK_TEST = "vqav2"
TASK_VAL = "vqav2_val"
SHORT_ANSWER_SUFFIX = "\n" + prompt_suffix(TASK_TEST)

TESTDEV_JSONL = "llava_vqav2_mscoco_test-dev2015.jsonl"
TEST_JSONL = "llava_vqav2_mscoco_test2015.jsonl"
TEST_IMAGES = "test2015"
VAL_QUESTIONS = "v2_OpenEnded_mscoco_val2014_questions.json"
VAL_ANNOTATIONS = "v2_mscoco_val2014_annotations.json"
VAL_IMAGES = "val2014"

#: The answer types of the VQA annotations, as the VQA API reports them (accPerAnsType keys).
ANSWER_TYPES: tuple[str, ...] = ("yes/no", "number", "other")

HF_PATH = "lmms-lab/VQAv2"


def coco_image_name(subtype: str, image_id: int) -> str:
    """``COCO_{subtype}_{image_id:012d}.jpg``, the COCO 2014/2015 file name.

    Source: GT-Vision-Lab/VQA PythonHelperTools/vqaDemo.py (imgFilename construction).
    """
    return f"COCO_{subtype}_{image_id:012d}.jpg"


# ------------------------------------------------------------------ the full test2015 list
@functools.lru_cache(maxsize=4)
def _llava_ids_cached(path: str, mtime_ns: int, size: int) -> tuple[int, ...]:
    ids: list[int] = []
    seen: set[int] = set()
    for lineno, row in iter_jsonl(path):
        qid = require(row, "question_id", int, path, lineno)
        if qid in seen:
            raise DataError(path, f"duplicate question_id {qid}", line=lineno)
        seen.add(qid)
        ids.append(qid)
    return tuple(ids)


def read_llava_question_ids(path: str | Path) -> tuple[int, ...]:
    """The integer ``question_id`` of every line of a LLaVA question JSONL, in file order.

    Cached per (path, modification time, size): the 447,793-line test2015 list is read once per
    process even though the loader and the submission writer both need it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found (the VQAv2 upload must list every test2015 question)")
    st = path.stat()
    return _llava_ids_cached(str(path.resolve()), st.st_mtime_ns, st.st_size)


def _hf_question_ids(hf_path: str, split: str, cache_dir: str | None) -> tuple[int, ...]:
    """``question_id`` of every row of an lmms-lab/VQAv2 split, reading only that column.

    A local folder is read with pyarrow (column projection, no image bytes touched); a hub id is
    streamed with the parquet builder's ``columns`` option, so the images are not downloaded
    into the cache.
    """
    local = Path(hf_path).expanduser()
    if local.is_dir():
        pq = import_optional("pyarrow.parquet", "the hf data source")
    else:
        datasets = import_optional("datasets", "the hf data source")
    try:
        if local.is_dir():
            ids = []
            for f in _local_parquet_files(local, None, split):
                ids.extend(pq.read_table(f, columns=["question_id"]).column("question_id").to_pylist())
        else:
            ds = datasets.load_dataset(hf_path, split=split, streaming=True, columns=["question_id"],
                                       cache_dir=cache_dir)
            ids = [qid for batch in ds.iter(batch_size=10_000) for qid in batch["question_id"]]
    except DataError:
        raise
    except Exception as exc:  # pyarrow / datasets raise many types; name the source and cause
        raise DataError(hf_path, f"cannot read the question ids of split {split!r}: {exc}") from exc
    bad = next((q for q in ids if not isinstance(q, int) or isinstance(q, bool)), None)
    if bad is not None:
        raise DataError(hf_path, f"split {split!r}: question_id {bad!r} is not an integer")
    if len(set(ids)) != len(ids):
        raise DataError(hf_path, f"split {split!r}: duplicate question ids")
    return tuple(ids)


_hf_question_ids_cached = functools.lru_cache(maxsize=2)(_hf_question_ids)


def submission_question_ids(ref: Mapping[str, Any]) -> tuple[int, ...]:
    """The ordered test2015 question ids a ``meta["submission_split"]`` reference points to.

    ``{"kind": "llava_jsonl", "path": ...}`` -> the ids of that LLaVA JSONL;
    ``{"kind": "hf", "path": hub id or folder, "split": "test"}`` -> the ids of that HF split.
    """
    kind = ref.get("kind")
    if kind == "llava_jsonl":
        return read_llava_question_ids(ref["path"])
    if kind == "hf":
        return _hf_question_ids_cached(ref["path"], ref.get("split", "test"), ref.get("cache_dir"))
    raise DataError(None, f"unknown VQAv2 submission split reference {dict(ref)!r}")


# ------------------------------------------------------------------ task vqav2 (test-dev)
def load_testdev_local(data_root: Path, *, question_file: str = TESTDEV_JSONL, test_file: str = TEST_JSONL,
                       image_folder: str = TEST_IMAGES) -> list[Sample]:
    """test-dev questions in file order; each must be in the test2015 list (checked here)."""
    root = benchmark_dir(data_root, "vqav2", question_file)
    qpath, tpath = root / question_file, root / test_file
    all_ids = set(read_llava_question_ids(tpath))
    ref = {"kind": "llava_jsonl", "path": str(tpath.resolve())}
    samples: list[Sample] = []
    seen: set[int] = set()
    for lineno, row in iter_jsonl(qpath):
        qid = require(row, "question_id", int, qpath, lineno)
        text = require(row, "text", str, qpath, lineno)
        image = require(row, "image", str, qpath, lineno)
        if qid in seen:
            raise DataError(qpath, f"duplicate question_id {qid}", line=lineno)
        seen.add(qid)
        if qid not in all_ids:
            raise DataError(qpath, f"question_id {qid} is not in {tpath.name}; the upload (built over "
                                   f"that list) would drop its answer", line=lineno)
        samples.append(Sample(
            question_id=qid, question=text,
            image=resolve_image_path(root / image_folder, image, source_file=qpath, line=lineno),
            target=None, meta={"image": image, "submission_split": ref},
        ))
    return samples


def load_testdev_hf(hf_path: str = HF_PATH, *, cache_dir: str | None = None, config: str | None = None,
                    split: str = "testdev", test_split: str = "test",
                    test_question_file: str | Path | None = None, **kw: Any) -> list[Sample]:
    """lmms-lab/VQAv2 ``testdev``: question + the short-answer suffix (= the LLaVA JSONL text).

    The upload's full question list is the HF ``test`` split (read lazily, ids only, when the
    submission is written), or ``test_question_file`` (a local ``llava_vqav2_mscoco_test2015.jsonl``).
    """
    ds = load_lmms_split(hf_path, config, split, cache_dir=cache_dir, **kw)
    source = f"{hf_path} [{split}]"
    if test_question_file is not None:
        ref: dict[str, Any] = {"kind": "llava_jsonl", "path": str(Path(test_question_file).resolve())}
    else:
        ref = {"kind": "hf", "path": str(hf_path), "split": test_split, "cache_dir": cache_dir}
    samples = []
    for idx, row in enumerate(undecoded_rows(ds)):
        where = f"{source} row {idx}: "
        qid = require(row, "question_id", int, None, where=where)
        question = require(row, "question", str, None, where=where)
        samples.append(Sample(
            question_id=qid, question=question + SHORT_ANSWER_SUFFIX,
            image=image_bytes(row.get("image"), source=source, row=idx),
            target=None, meta={"image_id": row.get("image_id"), "submission_split": ref},
        ))
    return samples


# ------------------------------------------------------------------ task vqav2_val
def vqa_target(answers: Any, answer_type: Any, question_type: Any, *, path: Path | str | None,
               where: str) -> dict:
    """The fields the VQA API reads for one question: the human answers (in annotation order;
    leave-one-out goes by position) and the answer type its per-type accuracy groups by."""
    if not isinstance(answers, list) or not answers:
        raise DataError(path, f"{where}'answers' must be a non-empty list")
    texts = []
    for i, ans in enumerate(answers):
        text = ans.get("answer") if isinstance(ans, dict) else None
        if not isinstance(text, str):
            raise DataError(path, f"{where}answers[{i}] has no string 'answer'")
        texts.append(text)
    if answer_type not in ANSWER_TYPES:
        raise DataError(path, f"{where}answer_type {answer_type!r} is not one of {', '.join(ANSWER_TYPES)}")
    return {"answers": texts, "answer_type": answer_type, "question_type": question_type}


def load_val_local(data_root: Path, *, question_file: str = VAL_QUESTIONS,
                   annotation_file: str = VAL_ANNOTATIONS, image_folder: str = VAL_IMAGES) -> list[Sample]:
    """val2014 questions (file order) joined with their annotations by ``question_id``.

    The question and annotation files must describe the same questions: the VQA API refuses a
    result set that does not equal the annotation set, so a mismatch here is a broken download.
    """
    root = benchmark_dir(data_root, "vqav2", question_file)
    qpath, apath = root / question_file, root / annotation_file
    qdata, adata = read_json(qpath), read_json(apath)
    questions = qdata.get("questions") if isinstance(qdata, dict) else None
    annotations = adata.get("annotations") if isinstance(adata, dict) else None
    if not isinstance(questions, list):
        raise DataError(qpath, "expected an object with a 'questions' list")
    if not isinstance(annotations, list):
        raise DataError(apath, "expected an object with an 'annotations' list")
    by_id: dict[int, dict] = {}
    for i, ann in enumerate(annotations):
        qid = require(ann, "question_id", int, apath, where=f"annotations[{i}]: ")
        if qid in by_id:
            raise DataError(apath, f"annotations[{i}]: duplicate question_id {qid}")
        by_id[qid] = ann
    samples: list[Sample] = []
    seen: set[int] = set()
    for i, q in enumerate(questions):
        where = f"questions[{i}]: "
        qid = require(q, "question_id", int, qpath, where=where)
        text = require(q, "question", str, qpath, where=where)
        image_id = require(q, "image_id", int, qpath, where=where)
        if qid in seen:
            raise DataError(qpath, f"{where}duplicate question_id {qid}")
        seen.add(qid)
        ann = by_id.get(qid)
        if ann is None:
            raise DataError(apath, f"no annotation for question_id {qid} (from {qpath.name})")
        awhere = f"annotation of question {qid}: "
        target = vqa_target(ann.get("answers"), ann.get("answer_type"), ann.get("question_type"),
                            path=apath, where=awhere)
        image = coco_image_name("val2014", image_id)
        samples.append(Sample(
            question_id=qid, question=text + SHORT_ANSWER_SUFFIX,
            image=resolve_image_path(root / image_folder, image, source_file=qpath),
            target=target,
            meta={"image_id": image_id, "answer_type": target["answer_type"],
                  "question_type": target["question_type"]},
        ))
    extra = [k for k in by_id if k not in seen]
    if extra:
        raise DataError(apath, f"{len(extra)} annotation(s) have no question in {qpath.name} "
                               f"(e.g. {', '.join(map(str, extra[:3]))})")
    return samples


def load_val_hf(hf_path: str = HF_PATH, *, cache_dir: str | None = None, config: str | None = None,
                split: str = "validation", **kw: Any) -> list[Sample]:
    """lmms-lab/VQAv2 ``validation``: the same questions, answers and types as the official files."""
    ds = load_lmms_split(hf_path, config, split, cache_dir=cache_dir, **kw)
    source = f"{hf_path} [{split}]"
    samples = []
    for idx, row in enumerate(undecoded_rows(ds)):
        where = f"{source} row {idx}: "
        qid = require(row, "question_id", int, None, where=where)
        question = require(row, "question", str, None, where=where)
        target = vqa_target(row.get("answers"), row.get("answer_type"), row.get("question_type"),
                            path=None, where=where)
        samples.append(Sample(
            question_id=qid, question=question + SHORT_ANSWER_SUFFIX,
            image=image_bytes(row.get("image"), source=source, row=idx),
            target=target,
            meta={"image_id": row.get("image_id"), "answer_type": target["answer_type"],
                  "question_type": target["question_type"]},
        ))
    return samples
