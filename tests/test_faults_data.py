"""Fault injection: hostile or broken input data (no model needed).

Every loader that reads a file is fed a malformed JSON/JSONL/TSV line, non-UTF-8 bytes and a
duplicated question; answer files get unknown, duplicated and undecodable rows; images come
corrupt, truncated, empty, huge (decompression bombs), CMYK, palette and 16-bit. Each case
either works correctly (the odd image modes give the right RGB pixels) or raises one
:class:`DataError` whose text names the file (and line, or question id).
"""
from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from aligngpt.data.base import Sample
from aligngpt.data.images import open_image
from aligngpt.errors import DataError
from aligngpt.harness.settings import RunSettings
from aligngpt.harness.samples import check_unique_ids, load_samples
from aligngpt.harness.score import read_answers
from aligngpt.harness.tasks import load_task

from .faults_support import damageable_copy, one_error_line, run_cli

#: task -> its question file in the LLaVA layout (JSON Lines)
JSONL_FILES = {
    "gqa": "gqa/llava_gqa_testdev_balanced.jsonl",
    "pope": "pope/llava_pope_test.jsonl",
    "mme": "MME/llava_mme.jsonl",
    "textvqa": "textvqa/llava_textvqa_val_v051_ocr.jsonl",
    "seed_image": "seed_bench/llava-seed-bench.jsonl",
    "vizwiz": "vizwiz/llava_test.jsonl",
    "vqav2": "vqav2/llava_vqav2_mscoco_test-dev2015.jsonl",
    "llava_bench": "llava-bench-in-the-wild/questions.jsonl",
    "mmvet": "mm-vet/llava-mm-vet.jsonl",
}
#: task -> a (plain) JSON file its loader reads
JSON_FILES = {
    "gqa": "gqa/data/testdev_balanced_questions.json",
    "scienceqa_img": "scienceqa/problems.json",
    "textvqa": "textvqa/TextVQA_0.5.1_val.json",
    "seed_image": "seed_bench/SEED-Bench.json",
    "vizwiz_val": "vizwiz/val.json",
    "vqav2_val": "vqav2/v2_mscoco_val2014_annotations.json",
    "mmvet": "mm-vet/mm-vet.json",
}
#: more JSON Lines files read beside the question file
OTHER_JSONL = {"pope": "pope/coco/coco_pope_popular.json", "llava_bench": "llava-bench-in-the-wild/context.jsonl"}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    from aligngpt.toy import write_benchmarks

    root = tmp_path_factory.mktemp("pristine") / "eval"
    write_benchmarks(root, seed=5, n_per_task=3)
    return root


@pytest.fixture()
def root(pristine, tmp_path):
    return damageable_copy(pristine, tmp_path / "eval")


def _load(task: str, root: Path):
    return load_samples(load_task(task), RunSettings(data_root=str(root), source="local"))


def _error(task: str, root: Path) -> DataError:
    with pytest.raises(DataError) as info:
        _load(task, root)
    return info.value


def test_pristine_toy_data_loads(pristine):
    for task in set(JSONL_FILES) | set(JSON_FILES) | {"mmbench"}:
        assert _load(task, pristine), task


# ---------------------------------------------------------------------------- malformed lines
@pytest.mark.parametrize("task, rel", sorted({**JSONL_FILES, **{f"{t}+": f for t, f in OTHER_JSONL.items()}}.items()))
def test_malformed_jsonl_line_names_file_and_line(root, task, rel):
    path = root / rel
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = '{"question_id": 5, "text": \n'  # cut mid-object
    path.write_text("".join(lines))
    err = _error(task.rstrip("+"), root)
    assert (err.path, err.line) == (str(path), 2) and "malformed JSON line" in err.message, err


@pytest.mark.parametrize("task, rel", sorted({**JSONL_FILES, **{f"{t}+": f for t, f in OTHER_JSONL.items()}}.items()))
def test_non_utf8_jsonl_line_names_file_and_line(root, task, rel):
    path = root / rel
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b'"', b'"\xff\xfe', 1)  # Latin-1 / UTF-16 debris on line 2
    path.write_bytes(b"".join(lines))
    err = _error(task.rstrip("+"), root)
    assert (err.path, err.line) == (str(path), 2) and "not UTF-8" in err.message, err


@pytest.mark.parametrize("task, rel", sorted(JSON_FILES.items()))
def test_malformed_json_file_names_file_and_line(root, task, rel):
    path = root / rel
    pretty = json.dumps(json.loads(path.read_text()), indent=1).splitlines()
    pretty[2] = pretty[2] + " oops"  # a stray token at the end of line 3
    path.write_text("\n".join(pretty) + "\n")
    err = _error(task, root)
    assert (err.path, err.line) == (str(path), 3) and "malformed JSON" in err.message, err


@pytest.mark.parametrize("task, rel", sorted(JSON_FILES.items()))
def test_non_utf8_json_file_names_the_file(root, task, rel):
    path = root / rel
    path.write_bytes(path.read_bytes().replace(b'"', b'"\xc0\xaf', 1))  # overlong encoding of '/'
    err = _error(task, root)
    assert err.path == str(path) and "not UTF-8" in err.message, err


def test_mme_ground_truth_file_non_utf8_and_malformed(root):
    gt = sorted((root / "MME" / "MME_Benchmark_release_version").rglob("*.txt"))[0]
    original = gt.read_bytes()
    gt.write_bytes(original + b"Is it caf\xe9?\tYes\n")  # Latin-1 e-acute on the last line
    n_lines = original.count(b"\n") + 1
    with pytest.raises(DataError) as info:
        _load("mme", root)
    assert (info.value.path, info.value.line) == (str(gt), n_lines) and "not UTF-8" in info.value.message
    gt.write_bytes(original + b"no tab here\n")
    with pytest.raises(DataError, match="question<TAB>answer") as info:
        _load("mme", root)
    assert info.value.line == n_lines


def _tsv(root: Path) -> tuple[Path, list[bytes]]:
    path = root / "mmbench" / "mmbench_dev_20230712.tsv"
    return path, path.read_bytes().split(b"\n")


def test_mmbench_tsv_extra_fields_line(root):
    path, lines = _tsv(root)
    lines[3] += b"\tstray\tcells"  # physical line 4 has two cells more than the header
    path.write_bytes(b"\n".join(lines))
    err = _error("mmbench", root)
    assert (err.path, err.line) == (str(path), 4) and "Expected 14 fields in line 4, saw 16" in err.message, err


def test_mmbench_tsv_non_utf8_line(root):
    path, lines = _tsv(root)
    lines[2] = lines[2].replace(b"\t", b"\t\x92", 1)  # a cp1252 apostrophe on line 3
    path.write_bytes(b"\n".join(lines))
    err = _error("mmbench", root)
    assert (err.path, err.line) == (str(path), 3) and "not UTF-8" in err.message, err


@pytest.mark.parametrize("damage, message", [
    (lambda cells: cells[:3], "fewer than two options"),  # a short row: options missing
    (lambda cells: [*cells[:9], "%%%not base64%%%", *cells[10:]], "not valid base64"),
    (lambda cells: ["seven", *cells[1:]], "index 'seven' is not an integer"),
])
def test_mmbench_tsv_bad_cells_name_the_line(root, damage, message):
    path, lines = _tsv(root)
    header = lines[0].decode().split("\t")
    assert header[9] == "image"
    lines[2] = "\t".join(damage(lines[2].decode().split("\t"))).encode()
    path.write_bytes(b"\n".join(lines))
    err = _error("mmbench", root)
    assert (err.path, err.line) == (str(path), 3) and message in err.message, err


# ---------------------------------------------------------------------------- duplicate ids
@pytest.mark.parametrize("task, rel", sorted(JSONL_FILES.items()))
def test_duplicated_question_line_is_refused_with_its_line(root, task, rel):
    path = root / rel
    lines = path.read_text().splitlines(keepends=True)
    path.write_text(lines[0] + "".join(lines))  # line 1 repeated as line 2
    if task == "llava_bench":  # its reference answers are paired line by line: repeat that too
        ref = root / "llava-bench-in-the-wild" / "answers_gpt4.jsonl"
        refs = ref.read_text().splitlines(keepends=True)
        ref.write_text(refs[0] + "".join(refs))
    err = _error(task, root)
    assert (err.path, err.line) == (str(path), 2), err
    # TextVQA's loader counts (question, image) against its annotation file instead of ids
    assert "duplicate" in err.message or "appears more often" in err.message, err


@pytest.mark.parametrize("task, rel, field_path, message", [
    ("scienceqa_img", "scienceqa/llava_test_CQM-A.json", None, "duplicate id"),
    ("vizwiz_val", "vizwiz/val.json", None, "duplicate image"),
    ("vqav2_val", "vqav2/v2_OpenEnded_mscoco_val2014_questions.json", "questions", "duplicate question_id"),
])
def test_duplicated_entry_in_json_is_refused(root, task, rel, field_path, message):
    path = root / rel
    data = json.loads(path.read_text())
    items = data[field_path] if field_path else data
    items.append(dict(items[0]))
    path.write_text(json.dumps(data))
    err = _error(task, root)
    assert err.path == str(path) and message in err.message, err


def test_duplicated_mmbench_index_names_the_line(root):
    path, lines = _tsv(root)
    lines.insert(2, lines[1])
    path.write_bytes(b"\n".join(lines))
    err = _error("mmbench", root)
    assert (err.path, err.line) == (str(path), 3) and "duplicate index" in err.message


def test_unique_id_backstop_for_every_source():
    """Sources without a check of their own (HF rows) are caught before any model time."""
    samples = [Sample(1, "q"), Sample("2", "q"), Sample("1", "q")]
    with pytest.raises(DataError, match="task t: duplicate question id '1'"):
        check_unique_ids(samples, "t")


# ---------------------------------------------------------------------------- answer files
def _answers(path: Path, rows) -> Path:
    path.write_bytes(b"".join(r if isinstance(r, bytes) else (json.dumps(r) + "\n").encode() for r in rows))
    return path


def test_answers_for_unknown_duplicate_or_undecodable_ids(root, tmp_path, capsys):
    samples = _load("gqa", root)
    good = [{"question_id": s.question_id, "text": "yes"} for s in samples]
    path = tmp_path / "answers.jsonl"
    assert set(read_answers(_answers(path, good), samples)) == {s.key for s in samples}
    cases = [
        (good + [{"question_id": "not-a-question", "text": "yes"}], len(good) + 1, "unknown question id 'not-a-question'"),
        (good[:1] + good, 2, "duplicate answer for question id"),
        (good[:1] + [b'{"question_id": "x", "text": "caf\xe9"}\n'] + good[1:], 2, "not UTF-8"),
        (good[:1] + [{"question_id": good[1]["question_id"], "text": 7}] + good[2:], 2, "'text' must be a string"),
    ]
    for rows, line, message in cases:
        with pytest.raises(DataError) as info:
            read_answers(_answers(path, rows), samples)
        assert (info.value.path, info.value.line) == (str(path), line) and message in info.value.message
    # and through the CLI: one line, exit 2, nothing on stdout
    _answers(path, cases[0][0])
    code, out, err = run_cli(capsys, ["score", "--task", "gqa", "--answers", path, "--data-root", root, "--json"])
    assert code == 2 and out == ""
    assert f"answers.jsonl:{len(good) + 1}: answer for unknown question id" in one_error_line(err)


def test_mme_shared_ids_take_exactly_two_answers(root, tmp_path):
    """MME's two questions per image share the official id: answers match k-th to k-th; a third
    answer for the id is a duplicate (file + line)."""
    samples = _load("mme", root)
    official = [s.meta["answer_question_id"] for s in samples]
    rows = [{"question_id": q, "text": "Yes"} for q in official]
    path = tmp_path / "mme.jsonl"
    got = read_answers(_answers(path, rows), samples)
    assert len(got) == len(samples)
    with pytest.raises(DataError, match="duplicate answer") as info:
        read_answers(_answers(path, rows + [rows[0]]), samples)
    assert info.value.line == len(rows) + 1


def test_seed_answer_rows_follow_the_official_reader(root, tmp_path, capsys):
    """Documented quirk (aligngpt/tasks/seed_image/evaluator.py): like the official script, rows
    for questions not loaded (video questions, unknown ids) are ignored and a later row replaces an
    earlier one. A question without any row still fails."""
    samples = _load("seed_image", root)
    rows = [{"question_id": s.question_id, "text": "A"} for s in samples]
    path = _answers(tmp_path / "seed.jsonl", [{"question_id": 987654321, "text": "B"}, *rows,
                                              {"question_id": samples[0].question_id, "text": "Z"}])
    code, out, err = run_cli(capsys, ["score", "--task", "seed_image", "--answers", path, "--data-root", root, "--json"])
    assert code == 0, err
    targets = [s.target for s in samples]
    # accuracy = share of targets equal to the parsed answer; the first question answers "Z" (wrong)
    hits = sum(t == "A" for t in targets[1:])
    assert json.loads(out)["metrics"]["image_accuracy"] == pytest.approx(100.0 * hits / len(samples))
    _answers(path, rows[1:])
    code, out, err = run_cli(capsys, ["score", "--task", "seed_image", "--answers", path, "--data-root", root])
    assert code == 2 and "1 of 3 questions have no answer" in one_error_line(err)


# ---------------------------------------------------------------------------- images
def _encode(image: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG header for a huge RGB image with one row of data (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * (3 * width + 1))) + chunk(b"IEND", b"")


@pytest.fixture()
def strict_truncation(monkeypatch):
    # score-alignment sets PIL's process-wide LOAD_TRUNCATED_IMAGES (as the reference training
    # loader does); evaluation must see truncation, whatever ran earlier in this process.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)


def test_cmyk_images_become_the_right_rgb():
    rgb = Image.fromarray(np.array([[[200, 30, 90], [0, 255, 10]], [[12, 34, 56], [255, 255, 255]]], dtype=np.uint8))
    cmyk = rgb.convert("CMYK")
    tiff = open_image(_encode(cmyk, "TIFF"))
    assert tiff.mode == "CMYK"
    assert np.array_equal(np.asarray(tiff.convert("RGB")), np.asarray(rgb))  # lossless round trip
    jpeg = open_image(_encode(cmyk.resize((16, 16), Image.NEAREST), "JPEG", quality=100))
    assert jpeg.mode == "CMYK"
    expected = np.asarray(rgb.resize((16, 16), Image.NEAREST)).astype(int)
    assert np.abs(np.asarray(jpeg.convert("RGB")).astype(int) - expected).mean() < 8  # lossy, but the colours


def test_palette_image_with_transparency_uses_its_palette():
    pal = Image.new("P", (2, 2), 0)
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * (768 - 6))
    pal.putpixel((1, 1), 1)
    image = open_image(_encode(pal, transparency=0))
    rgb = np.asarray(image.convert("RGB"))
    assert rgb[0, 0].tolist() == [10, 20, 30] and rgb[1, 1].tolist() == [200, 100, 50]


def test_16_bit_greyscale_is_scaled_not_clipped():
    values = np.array([[0, 255], [4096, 65535]], dtype=np.uint16)  # 16-bit samples
    image = open_image(_encode(Image.fromarray(values)))
    # v -> floor(v / 256): 0, 0, 16, 255. PIL's own I;16 -> RGB would clip (255 -> 255, 4096 -> 255).
    assert image.mode == "L" and np.asarray(image).tolist() == [[0, 0], [16, 255]]
    from aligngpt.processing.image import ImageProcessorSettings, preprocess_images

    settings = ImageProcessorSettings(shortest_edge=2, crop_height=2, crop_width=2, do_normalize=False)
    pixels = preprocess_images([image], settings, pad_to_square=False)
    assert pixels.shape == (1, 3, 2, 2)
    assert np.allclose(pixels[0, 0].numpy(), np.array([[0, 0], [16, 255]]) / 255, atol=1e-6)  # grey in all 3 channels
    assert np.allclose(pixels[0, 0].numpy(), pixels[0, 2].numpy())


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGBA", "I;16"])
def test_other_modes_preprocess_to_three_channels(mode):
    from aligngpt.processing.image import ImageProcessorSettings, preprocess_images

    image = open_image(_encode(Image.new(mode, (5, 3))))
    for pad in (False, True):
        pixels = preprocess_images([image], ImageProcessorSettings(shortest_edge=4, crop_height=4, crop_width=4), pad)
        assert pixels.shape == (1, 3, 4, 4) and bool(pixels.isfinite().all())


def _png(size=(64, 64)) -> bytes:
    rng = np.random.default_rng(0)
    return _encode(Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)))


@pytest.mark.parametrize("content, message", [
    (b"", "image file is empty"),
    (b"GIF89a but not really an image", "cannot decode image"),
    (_png()[: len(_png()) // 2], "cannot decode image (image file is truncated)"),
    (_encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")[:300], "cannot decode image"),
    (_png_claiming(30000, 30000), "image refused: Image size (900000000 pixels) exceeds limit"),
    (_png_claiming(10000, 10000), "image refused: Image size (100000000 pixels) exceeds limit"),
])
def test_bad_image_files_name_question_and_file(tmp_path, strict_truncation, content, message):
    path = tmp_path / "img.png"
    path.write_bytes(content)
    with pytest.raises(DataError) as info:
        open_image(path, item="question 42")
    assert info.value.path == str(path) and f"question 42: {message}" in info.value.message, info.value
    if content:  # the same bytes from a parquet / TSV cell: named by question
        with pytest.raises(DataError, match="question 42: "):
            open_image(content, item="question 42")


def test_missing_image_file_and_empty_cell(tmp_path):
    with pytest.raises(DataError, match="question 7: image file not found"):
        open_image(tmp_path / "gone.png", item="question 7")
    with pytest.raises(DataError, match="question 7: image bytes are empty"):
        open_image(b"", item="question 7")
