"""POPE loader (local + HF layouts) and evaluator (LLaVA eval_pope.py parser and metrics)."""
from __future__ import annotations

import json

import pytest

from aligngpt.data import get_loader
from aligngpt.tasks.pope.loader import load_pope_hf, load_pope_local
from aligngpt.errors import ConfigError, DataError
from aligngpt.evaluators import get_evaluator
from aligngpt.tasks.pope.evaluator import POPEEvaluator, parse_answer, split_metrics
from tests.builders_gqa_pope_mme import POPE_LABELS, SUFFIX, build_pope_hf, build_pope_local, write_jsonl


@pytest.mark.parametrize("text, expected", [
    ("Yes", "yes"),
    ("No", "no"),                                 # token "No"
    ("no.", "no"),                                # text before the first "." is "no"
    ("There is not a cat.", "no"),                # token "not"
    ("I see no, cat", "no"),                      # comma deleted -> token "no"
    ("Yes, there is a dog. No cat.", "yes"),      # only the first sentence counts
    ("NO", "yes"),                                # upper case is not in the list
    ("Not sure", "yes"),                          # "Not" is not in the list
    ("Nope, I see it", "yes"),
    ("", "yes"),                                  # empty answer -> yes
    ("yes,no", "yes"),                            # comma removal glues "yesno"
    ("Yes\nno", "yes"),                           # split on spaces only: one token "Yes\nno"
    ("1.5 no", "yes"),                            # first sentence is "1"
])
def test_parse_answer_matches_eval_pope(text, expected):
    assert parse_answer(text) == expected


# Global question ids 1..12 (adversarial 1-4, popular 5-8, random 9-12), see build_pope_local.
PREDICTIONS = {
    # adversarial labels yes, no, yes, no
    "1": "Yes, there is a snowboard.",   # yes  TP
    "2": "No",                            # no   TN
    "3": "There is not a cat.",           # no   FN
    "4": "NO",                            # yes  FP
    # popular labels yes, yes, no, no
    "5": "Yes",                           # yes  TP
    "6": "Nope, I see it",                # yes  TP
    "7": "no.",                           # no   TN
    "8": "I see no, cat",                 # no   TN
    # random labels yes, no, no, no
    "9": "",                              # yes  TP
    "10": "Not sure",                     # yes  FP
    "11": "Yes.No",                       # yes  FP
    "12": "yes,no",                       # yes  FP
}


def test_local_loader_joins_labels_by_id_or_position(tmp_path):
    # The adversarial label file is permuted but its ids match -> joined by id.
    build_pope_local(tmp_path, adversarial_label_order=[2, 0, 3, 1])
    samples = load_pope_local(tmp_path)
    assert [s.question_id for s in samples] == list(range(1, 13))
    assert samples[0].question == "Is there a snowboard in the image?" + SUFFIX
    assert samples[0].image == tmp_path / "pope" / "val2014" / "COCO_val2014_000000310196.jpg"
    labels = {s.key: s.target["label"] for s in samples}
    assert [labels[str(i)] for i in range(1, 13)] == [l for split in ("adversarial", "popular", "random")
                                                      for _, _, l in POPE_LABELS[split]]
    modes = {s.target["split"]: s.target["join"] for s in samples}
    assert modes == {"adversarial": "question_id", "popular": "position", "random": "position"}
    # label_index is the position in the label file: qid 1 sits on line 2 of the permuted file.
    assert samples[0].target["label_index"] == 1
    assert get_loader("pope", "local") is load_pope_local


def test_metrics_per_split_and_means(tmp_path):
    samples = load_pope_local(build_pope_local(tmp_path))
    m = get_evaluator("pope").score(samples, PREDICTIONS).metrics
    # adversarial: TP=1 FP=1 TN=1 FN=1 -> acc .5, P .5, R .5, F1 .5, yes ratio 2/4.
    assert m["splits"]["adversarial"] == pytest.approx(
        {"accuracy": 50.0, "precision": 50.0, "recall": 50.0, "f1": 50.0, "yes_ratio": 50.0})
    # popular: TP=2 TN=2 -> everything 1.0, yes ratio 2/4.
    assert m["splits"]["popular"] == pytest.approx(
        {"accuracy": 100.0, "precision": 100.0, "recall": 100.0, "f1": 100.0, "yes_ratio": 50.0})
    # random: TP=1 FP=3 -> acc 1/4, P 1/4, R 1/1, F1 = 2*.25*1/1.25 = .4, yes ratio 4/4.
    assert m["splits"]["random"] == pytest.approx(
        {"accuracy": 25.0, "precision": 25.0, "recall": 100.0, "f1": 40.0, "yes_ratio": 100.0})
    # Reported POPE = mean F1 (50+100+40)/3; accuracy = mean (50+100+25)/3.
    assert m["f1"] == pytest.approx(190 / 3)
    assert m["accuracy"] == pytest.approx(175 / 3)
    assert list(m) == ["f1", "accuracy", "splits"]
    assert list(m["splits"]) == ["random", "popular", "adversarial"]


def test_per_sample_fields(tmp_path):
    samples = load_pope_local(build_pope_local(tmp_path))
    r = POPEEvaluator().score(samples, PREDICTIONS)
    assert r.n == 12
    assert r.per_sample["4"] == {"target": "no", "parsed": "yes", "split": "adversarial", "score": 0.0}
    assert r.per_sample["7"] == {"target": "no", "parsed": "no", "split": "popular", "score": 1.0}


def test_no_predicted_yes_gives_zero_precision_not_a_crash():
    # TP=0, FP=0 (eval_pope.py divides by zero here), TN=1, FN=1 -> P := 0, R = 0, F1 := 0.
    m = split_metrics([False, False], [False, True])
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["accuracy"] == 50.0 and m["yes_ratio"] == 0.0
    assert m["counts"] == {"TP": 0, "FP": 0, "TN": 1, "FN": 1}
    # zero_division is an explicit option.
    assert split_metrics([False], [False], zero_division=1.0)["precision"] == 100.0


def test_label_quirk_only_lowercase_no_is_negative(tmp_path):
    labels = {split: list(rows) for split, rows in POPE_LABELS.items()}
    labels["random"][1] = ("COCO_val2014_000000000074.jpg", "bus", "No")   # capital "No"
    samples = load_pope_local(build_pope_local(tmp_path, labels))
    r = POPEEvaluator().score(samples, PREDICTIONS)
    # qid 10 "Not sure" -> yes; gold "No" counts as positive in eval_pope.py -> correct.
    assert r.per_sample["10"]["score"] == 1.0
    # random now: TP=2 (9, 10) FP=2 (11, 12) -> P .5, R 1, F1 2/3, acc .5.
    assert r.metrics["splits"]["random"]["f1"] == pytest.approx(200 / 3)
    assert r.metrics["splits"]["random"]["accuracy"] == pytest.approx(50.0)


def test_join_by_id_equals_positional_on_ordered_file_and_differs_when_shuffled(tmp_path):
    samples = load_pope_local(build_pope_local(tmp_path))
    by_id, by_pos = POPEEvaluator(join="id"), POPEEvaluator(join="position")
    assert by_id.score(samples, PREDICTIONS).metrics == by_pos.score(samples, PREDICTIONS).metrics

    shuffled = {k: PREDICTIONS[k] for k in ["8", "7", "6", "5"] + [k for k in PREDICTIONS if k not in "5678"]}
    assert by_id.score(samples, shuffled).metrics == by_id.score(samples, PREDICTIONS).metrics
    pos = by_pos.score(samples, shuffled).metrics["splits"]["popular"]
    # Positional pairing: answers no, no, yes, yes against labels yes, yes, no, no
    # -> FN, FN, FP, FP: acc 0, P 0/2 = 0, R 0/2 = 0, F1 0, yes ratio 2/4.
    assert pos == pytest.approx({"accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "yes_ratio": 50.0})


def test_positional_join_follows_label_file_order(tmp_path):
    # Permuted adversarial label file: by id the permutation is undone; by position the
    # official script would pair answers with labels in label-file order.
    samples = load_pope_local(build_pope_local(tmp_path, adversarial_label_order=[2, 0, 3, 1]))
    pos = POPEEvaluator(join="position").score(samples, PREDICTIONS).metrics["splits"]["adversarial"]
    # Label file order now: qid3 yes, qid1 yes, qid4 no, qid2 no; answers yes, no, no, yes
    # -> TP, FN, TN, FP: acc .5, P .5, R .5, F1 .5, yes ratio .5 (same counts, different pairs).
    assert pos["accuracy"] == pytest.approx(50.0)
    per = POPEEvaluator(join="position").score(samples, PREDICTIONS).per_sample
    assert per["2"]["target"] == "yes" and per["2"]["score"] == 0.0


def test_positional_join_truncates_like_zip(tmp_path):
    samples = load_pope_local(build_pope_local(tmp_path))
    preds = {k: v for k, v in PREDICTIONS.items() if k != "12"}
    m = POPEEvaluator(join="position").score(samples, preds).metrics["splits"]["random"]
    # Three answers zipped with the first three labels yes, no, no: TP, FP, FP.
    # acc 1/3, P 1/3, R 1, F1 = 2*(1/3)/(4/3) = .5, yes ratio 3/3.
    assert m == pytest.approx({"accuracy": 100 / 3, "precision": 100 / 3, "recall": 100.0,
                               "f1": 50.0, "yes_ratio": 100.0})


def test_missing_prediction_raises_with_id_join(tmp_path):
    samples = load_pope_local(build_pope_local(tmp_path))
    with pytest.raises(DataError, match="no prediction for question 3"):
        POPEEvaluator().score(samples, {k: v for k, v in PREDICTIONS.items() if k != "3"})


def test_absent_split_is_none_and_so_are_the_three_split_means(tmp_path):
    samples = [s for s in load_pope_local(build_pope_local(tmp_path)) if s.target["split"] != "random"]
    m = POPEEvaluator().score(samples, PREDICTIONS).metrics
    assert m["splits"]["random"] == {k: None for k in ("accuracy", "precision", "recall", "f1", "yes_ratio")}
    assert m["splits"]["adversarial"]["f1"] == pytest.approx(50) and m["splits"]["popular"]["f1"] == pytest.approx(100)
    # the headline is the mean of three splits: from two it would be a different number
    assert m["f1"] is None and m["accuracy"] is None
    assert POPEEvaluator().score([], {}).metrics["f1"] is None


def test_bad_join_option():
    with pytest.raises(ConfigError):
        POPEEvaluator(join="zip")


def test_missing_label_file_names_it(tmp_path):
    build_pope_local(tmp_path)
    (tmp_path / "pope" / "coco" / "coco_pope_popular.json").unlink()
    with pytest.raises(DataError, match=r"coco_pope_popular\.json: file not found"):
        load_pope_local(tmp_path)


def test_missing_question_file_names_it(tmp_path):
    with pytest.raises(DataError, match=r"llava_pope_test\.jsonl: file not found"):
        load_pope_local(tmp_path)


def test_malformed_question_line_names_line(tmp_path):
    build_pope_local(tmp_path)
    q = tmp_path / "pope" / "llava_pope_test.jsonl"
    lines = q.read_text().splitlines()
    lines[4] = "{not json"
    q.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as err:
        load_pope_local(tmp_path)
    assert err.value.line == 5 and str(q) in str(err.value)


def test_malformed_label_line_names_line(tmp_path):
    build_pope_local(tmp_path)
    f = tmp_path / "pope" / "coco" / "coco_pope_random.json"
    f.write_text(f.read_text() + '{"question_id": 5, "image": "x.jpg"}\n')
    with pytest.raises(DataError, match="'label' field") as err:
        load_pope_local(tmp_path)
    assert err.value.line == 5


def test_positional_count_mismatch_raises(tmp_path):
    build_pope_local(tmp_path)
    f = tmp_path / "pope" / "coco" / "coco_pope_popular.json"
    f.write_text("".join(f.read_text().splitlines(keepends=True)[:3]))
    with pytest.raises(DataError, match="3 labels but .* has 4 'popular' questions"):
        load_pope_local(tmp_path)


def test_positional_image_mismatch_raises(tmp_path):
    build_pope_local(tmp_path)
    f = tmp_path / "pope" / "coco" / "coco_pope_random.json"
    rows = [json.loads(l) for l in f.read_text().splitlines()]
    rows[0], rows[2] = rows[2], rows[0]          # different images -> file order broken
    write_jsonl(f, rows)
    with pytest.raises(DataError, match="not in the same order") as err:
        load_pope_local(tmp_path)
    assert err.value.line == 1


@pytest.mark.parametrize("row, message", [
    ({"question_id": 1, "image": "a.jpg", "text": "Q?"}, "missing field 'category'"),
    ({"question_id": 1, "image": "a.jpg", "text": 3, "category": "random"}, "must be strings"),
    ({"question_id": 1, "image": "a.jpg", "text": "Q?", "category": "random"}, "duplicate question_id 1"),
    ("text", "expected a JSON object"),
])
def test_bad_question_rows(tmp_path, row, message):
    build_pope_local(tmp_path)
    q = tmp_path / "pope" / "llava_pope_test.jsonl"
    q.write_text(q.read_text() + json.dumps(row) + "\n")
    with pytest.raises(DataError, match=message) as err:
        load_pope_local(tmp_path)
    assert err.value.line == 13


def test_hf_full_config(tmp_path):
    root = build_pope_hf(tmp_path / "POPE")
    samples = get_loader("pope", "hf")(str(root), cache_dir=str(tmp_path / "cache"))
    assert [s.key for s in samples[:2]] == ["random/1", "random/2"]
    assert samples[0].question == "Is there a dog in the image?" + SUFFIX
    assert isinstance(samples[0].image, bytes) and samples[0].image[:4] == b"\x89PNG"
    # "Yes"/"No" in the parquet -> lower-cased labels (else "No" would count as positive).
    assert [s.target["label"] for s in samples[:4]] == ["yes", "no", "no", "no"]
    preds = {f"{split}/{i + 1}": ("Yes" if label == "yes" else "No")
             for split, rows in POPE_LABELS.items() for i, (_, _, label) in enumerate(rows)}
    m = POPEEvaluator().score(samples, preds).metrics
    assert m["f1"] == pytest.approx(100.0) and m["accuracy"] == pytest.approx(100.0)
    # Only random answered "No" everywhere: TP 0 -> P := 0, F1 := 0 for that split.
    preds_no = {k: ("No" if k.startswith("random/") else v) for k, v in preds.items()}
    m = POPEEvaluator().score(samples, preds_no).metrics
    assert m["splits"]["random"]["f1"] == 0.0 and m["f1"] == pytest.approx(200 / 3)


def test_hf_default_config_uses_category_column(tmp_path):
    root = build_pope_hf(tmp_path / "POPE")
    full = load_pope_hf(str(root), cache_dir=str(tmp_path / "c1"))
    pooled = load_pope_hf(str(root), cache_dir=str(tmp_path / "c2"), config="default")
    # Pooled rows are in adversarial, popular, random order; same samples otherwise.
    assert sorted((s.key, s.question, s.target["label"], s.target["label_index"]) for s in pooled) == \
        sorted((s.key, s.question, s.target["label"], s.target["label_index"]) for s in full)
    only_random = load_pope_hf(str(root), cache_dir=str(tmp_path / "c3"), config="default", splits=("random",))
    assert {s.target["split"] for s in only_random} == {"random"} and len(only_random) == 4


def test_hf_missing_column(tmp_path):
    from tests.builders_gqa_pope_mme import write_hf_parquet

    write_hf_parquet(tmp_path / "POPE" / "data" / "test-00000-of-00001.parquet",
                     {"question_id": ["1"], "question": ["Q?"], "answer": ["yes"], "image": [b"\x89PNG.."]})
    with pytest.raises(DataError, match="missing column.*category"):
        load_pope_hf(str(tmp_path / "POPE"), cache_dir=str(tmp_path / "c"), config="default")


def test_registry_finds_evaluator():
    assert isinstance(get_evaluator("pope"), POPEEvaluator)


def test_hf_parquet_converter_layout(tmp_path):
    # refs/convert/parquet stores shards as {config}/{split}/0000.parquet.
    from tests.builders_gqa_pope_mme import _pope_hf_columns, write_hf_parquet

    for split in ("random", "popular", "adversarial"):
        write_hf_parquet(tmp_path / "POPE" / "Full" / split / "0000.parquet", _pope_hf_columns(split, POPE_LABELS))
    samples = load_pope_hf(str(tmp_path / "POPE"), cache_dir=str(tmp_path / "c"))
    assert len(samples) == 12 and samples[4].key == "popular/1"
