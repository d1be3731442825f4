"""Bootstrap CIs, paired tests and task presets of aligngpt.report.stats."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aligngpt.data.base import Sample
from aligngpt.errors import ConfigError, DataError
from aligngpt.evaluators.base import Evaluator, ScoreResult
from aligngpt.report import stats as S
from aligngpt.report.stats.resampling import _binom_cdf_half


def bern(rng: np.random.Generator, p: float, n: int) -> np.ndarray:
    return (rng.random(n) < p).astype(float)


# ----------------------------------------------------------------------------- bootstrap_ci


def test_bernoulli_ci_width_matches_normal_theory():
    rng = np.random.default_rng(11)
    n, p = 2000, 0.3
    x = bern(rng, p, n)
    ci = S.bootstrap_ci(x, n_resamples=2000, seed=1)
    # Normal theory: width = 2 * 1.96 * sqrt(p(1-p)/n) = 3.92 * sqrt(0.21/2000) = 0.0402
    phat = x.mean()
    expected = 2 * 1.96 * math.sqrt(phat * (1 - phat) / n)
    assert ci.point == pytest.approx(phat)
    assert (ci.high - ci.low) == pytest.approx(expected, rel=0.10)
    assert ci.se == pytest.approx(math.sqrt(phat * (1 - phat) / n), rel=0.10)
    assert ci.low < ci.point < ci.high
    assert ci.half_width == pytest.approx((ci.high - ci.low) / 2)
    assert ci.n_resamples == 2000 and ci.method == "percentile" and ci.alpha == 0.05


def test_coverage_of_95_percent_interval():
    # 200 seeded datasets of 200 Bernoulli(0.3) items; the true mean must fall inside the 95% CI
    # in roughly 95% of them.
    p, hits = 0.3, 0
    for k in range(200):
        x = bern(np.random.default_rng(1000 + k), p, 200)
        ci = S.bootstrap_ci(x, n_resamples=400, seed=k)
        hits += ci.low <= p <= ci.high
    assert 0.90 <= hits / 200 <= 0.99


def test_general_path_equals_fast_path_and_is_deterministic():
    x = bern(np.random.default_rng(3), 0.6, 150)
    fast = S.bootstrap_ci(x, n_resamples=300, seed=7)
    general = S.bootstrap_ci(list(x), lambda sub: float(np.mean(sub)), n_resamples=300, seed=7)
    # same seed -> the same resamples on both paths
    assert general.low == pytest.approx(fast.low, abs=1e-12)
    assert general.high == pytest.approx(fast.high, abs=1e-12)
    assert general.se == pytest.approx(fast.se, abs=1e-12)
    assert S.bootstrap_ci(x, n_resamples=300, seed=7) == fast
    assert S.bootstrap_ci(x, n_resamples=300, seed=8) != fast


def test_predictions_are_passed_to_metric_fn():
    items = ["a", "b", "c", "d"]
    preds = {"a": 1.0, "b": 0.0, "c": 1.0, "d": 1.0}
    ci = S.bootstrap_ci(items, lambda sub, pr: float(np.mean([pr[i] for i in sub])), predictions=preds,
                        n_resamples=50)
    assert ci.point == pytest.approx(0.75)  # 3 of 4 right


def test_clustering_widens_interval_when_clusters_are_correlated():
    # 100 clusters of 5 questions that share one outcome (perfect within-cluster correlation):
    # the clustered CI must be ~sqrt(5) = 2.24 times the naive one.
    rng = np.random.default_rng(5)
    outcome = bern(rng, 0.5, 100)
    x = np.repeat(outcome, 5)
    clusters = np.repeat(np.arange(100), 5)
    naive = S.bootstrap_ci(x, n_resamples=2000, seed=0)
    clustered = S.bootstrap_ci(x, cluster_key=list(clusters), n_resamples=2000, seed=0)
    ratio = (clustered.high - clustered.low) / (naive.high - naive.low)
    assert 1.8 <= ratio <= 2.7
    assert clustered.point == naive.point


def test_cluster_key_function_and_clusters_stay_whole_and_ordered():
    items = [("img1", 0), ("img1", 1), ("img2", 0), ("img2", 1), ("img3", 0), ("img3", 1)]
    seen = []

    def check(sub):
        # every cluster appears as adjacent runs of its two questions in original order
        for j in range(0, len(sub), 2):
            assert sub[j][0] == sub[j + 1][0] and (sub[j][1], sub[j + 1][1]) == (0, 1)
        seen.append(len(sub))
        return 0.0

    S.bootstrap_ci(items, check, cluster_key=lambda it: it[0], n_resamples=30)
    assert set(seen) == {6}


def test_strata_keep_their_size_in_every_resample():
    items = [("random", i) for i in range(5)] + [("popular", i) for i in range(3)] + [("adv", i) for i in range(2)]
    sizes = []

    def count(sub):
        sizes.append(tuple(sum(1 for s, _ in sub if s == name) for name in ("random", "popular", "adv")))
        return float(len(sub))

    ci = S.bootstrap_ci(items, count, strata_key=lambda it: it[0], n_resamples=100, seed=3)
    assert set(sizes) == {(5, 3, 2)}
    assert ci.low == ci.high == 10.0


def test_stratification_removes_between_strata_variance():
    # Two strata with means 0.1 and 0.9: stratified resampling fixes their shares, so the CI of
    # the overall mean is narrower than without strata.
    rng = np.random.default_rng(9)
    x = np.concatenate([bern(rng, 0.1, 200), bern(rng, 0.9, 200)])
    strata = ["lo"] * 200 + ["hi"] * 200
    plain = S.bootstrap_ci(x, n_resamples=2000, seed=0)
    strat = S.bootstrap_ci(x, strata_key=strata, n_resamples=2000, seed=0)
    assert (strat.high - strat.low) < 0.8 * (plain.high - plain.low)


def test_clusters_must_nest_in_strata():
    with pytest.raises(ValueError, match="nested in strata"):
        S.bootstrap_ci([1.0, 0.0], cluster_key=["c", "c"], strata_key=["s1", "s2"], n_resamples=10)


def test_bad_inputs():
    with pytest.raises(ValueError, match="NaN"):
        S.bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="alpha"):
        S.bootstrap_ci([1.0, 0.0], alpha=1.5)
    with pytest.raises(ValueError, match="labels"):
        S.bootstrap_ci([1.0, 0.0], cluster_key=["a"])
    with pytest.raises(ValueError, match="n_resamples"):
        S.bootstrap_ci([1.0, 0.0], n_resamples=0)
    with pytest.raises(ValueError, match="undefined"):
        # metric is NaN whenever the resample has no positive item -> most resamples of [1,0,0,...]
        S.bootstrap_ci([1.0] + [0.0] * 30, lambda sub: float("nan") if sum(sub) < 5 else 1.0, n_resamples=50)


def test_ratio_statistic_point_and_interval():
    # sum(num)/sum(den) = (6 + 9)/(8 + 10) = 15/18 -> 83.33 with scale 100
    stat = S.ratio_statistic([6, 9], [8, 10], scale=100.0)
    ci = S.bootstrap_ci(None, stat, n_resamples=200)
    assert ci.point == pytest.approx(1500 / 18)
    # the only possible resamples: {6/8, 9/10, 15/18} -> bounds within [75, 90]
    assert 75.0 - 1e-9 <= ci.low <= ci.high <= 90.0 + 1e-9


# ----------------------------------------------------------------------------- paired tests


def test_paired_bootstrap_detects_planted_difference():
    rejections = 0
    for k in range(20):
        rng = np.random.default_rng(200 + k)
        a, b = bern(rng, 0.7, 1000), bern(rng, 0.6, 1000)
        res = S.paired_test(None, a, b, n_resamples=500, seed=k)
        rejections += res.p_value < 0.05
        assert res.ci_low < res.diff < res.ci_high
    assert rejections >= 19  # true diff 0.1, se ~0.021 -> z ~ 4.7, power ~1


def _null_pair(rng, n=300):
    difficulty = rng.random(n)  # both systems see the same question difficulty: paired, exchangeable
    return (rng.random(n) < difficulty).astype(float), (rng.random(n) < difficulty).astype(float)


def test_paired_bootstrap_null_rejection_rate_near_nominal():
    rejected = 0
    for k in range(200):
        a, b = _null_pair(np.random.default_rng(5000 + k))
        rejected += S.paired_test(None, a, b, n_resamples=400, seed=k).p_value < 0.05
    assert 0.01 <= rejected / 200 <= 0.10


def test_sign_flip_null_rejection_rate_and_power():
    rejected = 0
    for k in range(200):
        a, b = _null_pair(np.random.default_rng(9000 + k))
        rejected += S.sign_flip_test(a, b, n_permutations=400, seed=k).p_value < 0.05
    assert 0.01 <= rejected / 200 <= 0.10
    rng = np.random.default_rng(1)
    res = S.paired_test(None, bern(rng, 0.8, 500), bern(rng, 0.6, 500), method="permutation", n_resamples=999)
    assert res.p_value == pytest.approx(1 / 1000)  # no random flip reaches a 0.2 difference on 500 items
    assert res.method == "sign-flip monte-carlo"


def test_sign_flip_exact_small_cases():
    # d = [1, 1, 1]: of the 8 sign flips only +++ and --- reach |sum| >= 3 -> p = 2/8
    r = S.sign_flip_test([1, 1, 1], [0, 0, 0])
    assert r.p_value == pytest.approx(0.25) and r.method == "sign-flip exact"
    assert r.diff == pytest.approx(1.0) and math.isnan(r.ci_low)
    # d = [1, -1, 1, 1], |sum| = 2: flips with |sum| >= 2 are the 2 with sum +-4 and the 8 with
    # sum +-2 -> p = 10/16
    assert S.sign_flip_test([1, 0, 1, 1], [0, 1, 0, 0]).p_value == pytest.approx(10 / 16)
    # clusters: [1, 1] and [1] are two cluster sums (2, 1): |sum| >= 3 only for ++ and -- -> 2/4
    assert S.sign_flip_test([1, 1, 1], [0, 0, 0], clusters=["x", "x", "y"]).p_value == pytest.approx(0.5)
    # identical systems: no discordant cluster -> p = 1
    assert S.sign_flip_test([1, 0], [1, 0]).p_value == 1.0


def test_mcnemar_exact_hand_values():
    # A right / B wrong on 3 questions, never the reverse: p = 2 * P(Bin(3, .5) <= 0) = 2/8
    r = S.mcnemar_exact([1, 1, 1, 0], [0, 0, 0, 0])
    assert (r.a_only, r.b_only, r.n) == (3, 0, 4) and r.p_value == pytest.approx(0.25)
    # 8 vs 2 discordant: P(X <= 2; 10) = (1 + 10 + 45)/1024 -> p = 112/1024
    a = [1] * 8 + [0] * 2 + [1] * 5
    b = [0] * 8 + [1] * 2 + [1] * 5
    assert S.mcnemar_exact(a, b).p_value == pytest.approx(112 / 1024)
    # balanced discordance: p capped at 1
    assert S.mcnemar_exact([1, 0], [0, 1]).p_value == 1.0
    assert S.mcnemar_exact([True, False], [True, False]).p_value == 1.0
    with pytest.raises(ValueError, match="0/1"):
        S.mcnemar_exact([0.5, 1], [1, 1])
    with pytest.raises(ValueError, match="shapes"):
        S.mcnemar_exact([1], [1, 0])


def test_binomial_tail_both_branches():
    # n = 20000 (exact integer branch): P(X <= 9999) = (1 - P(X = 10000)) / 2 by symmetry
    mid = math.comb(20000, 10000) / 2 ** 20000
    assert _binom_cdf_half(9999, 20000) == pytest.approx((1 - mid) / 2, rel=1e-12)
    # n = 20001 (log-space branch): P(X <= 10000) = 1/2 exactly by symmetry (n odd)
    assert _binom_cdf_half(10000, 20001) == pytest.approx(0.5, rel=1e-9)
    assert _binom_cdf_half(-1, 5) == 0.0 and _binom_cdf_half(5, 5) == 1.0


def test_mcnemar_null_rejection_rate_is_at_most_nominal():
    rejected = 0
    for k in range(200):
        a, b = _null_pair(np.random.default_rng(700 + k))
        rejected += S.mcnemar_exact(a, b).p_value < 0.05
    assert rejected / 200 <= 0.10  # the exact test is conservative


def test_paired_general_path_matches_fast_path():
    rng = np.random.default_rng(42)
    items = [f"q{i}" for i in range(120)]
    pa = {q: float(v) for q, v in zip(items, bern(rng, 0.7, 120))}
    pb = {q: float(v) for q, v in zip(items, bern(rng, 0.5, 120))}

    def acc(sub, preds):
        return float(np.mean([preds[q] for q in sub]))

    general = S.paired_test(items, acc, predictions_a=pa, predictions_b=pb, n_resamples=300, seed=2)
    fast = S.paired_test(items, [pa[q] for q in items], [pb[q] for q in items], n_resamples=300, seed=2)
    assert general.diff == pytest.approx(fast.diff)
    assert general.ci_low == pytest.approx(fast.ci_low, abs=1e-12)
    assert general.ci_high == pytest.approx(fast.ci_high, abs=1e-12)
    assert general.p_value == pytest.approx(fast.p_value)


def test_paired_test_argument_errors():
    with pytest.raises(ValueError, match="only when a is a metric function"):
        S.paired_test(None, [1.0, 0.0])
    with pytest.raises(TypeError):
        S.paired_test(["x", "y"], [1.0, 0.0], lambda s: 0.0)
    with pytest.raises(ValueError, match="unknown method"):
        S.paired_test(None, [1.0], [0.0], method="t-test")
    with pytest.raises(ValueError, match="per-item scores"):
        S.paired_test(["x"], lambda s: 0.0, lambda s: 1.0, method="permutation")
    with pytest.raises(ValueError, match="items for A"):
        S.paired_test(None, [1.0, 0.0], [1.0])


# ----------------------------------------------------------------------------- evaluator bridge


def test_metric_at_paths_and_errors():
    m = {"f1": 80.0, "splits": {"random": {"f1": 81.5}}, "judge": {"model": "x"}}
    assert S.metric_at(m, "splits.random.f1") == 81.5
    assert S.metric_at(m, ("f1",)) == 80.0
    with pytest.raises(KeyError, match="no 'popular' under splits"):
        S.metric_at(m, "splits.popular.f1")
    with pytest.raises(TypeError, match="not a number"):
        S.metric_at(m, "judge")


class _DictAccuracy(Evaluator):
    """Indexes predictions by question id (as official scorers do): duplicates collapse."""

    name = "dict_acc"

    def score(self, samples, predictions):
        by_id = {s.key: s for s in samples}
        right = [float(predictions[k] == s.target) for k, s in by_id.items()]
        return ScoreResult({"accuracy": 100.0 * float(np.mean(right))}, {}, len(by_id))


def test_evaluator_metric_relabels_repeats():
    samples = [Sample(i, "q", None, "yes") for i in range(4)]
    preds = {"0": "yes", "1": "no", "2": "yes", "3": "yes"}
    fn = S.evaluator_metric(_DictAccuracy(), "accuracy", relabel=True)
    assert fn(samples, preds) == pytest.approx(75.0)
    # a resample with q1 (wrong) three times and q0 once: relabelled copies count -> 1/4 right
    assert fn([samples[0], samples[1], samples[1], samples[1]], preds) == pytest.approx(25.0)
    plain = S.evaluator_metric(_DictAccuracy(), "accuracy", relabel=False)
    assert plain([samples[0], samples[1], samples[1], samples[1]], preds) == pytest.approx(50.0)  # collapsed
    ci = S.bootstrap_ci(samples, fn, predictions=preds, n_resamples=100)
    assert ci.point == pytest.approx(75.0) and 0.0 <= ci.low <= ci.high <= 100.0
    with pytest.raises(ConfigError, match="unknown evaluator"):
        S.evaluator_metric("no_such_task", "accuracy")


# ----------------------------------------------------------------------------- task presets


def _pope_records():
    recs, qid = [], 0
    # (split, gold, right): random TP1 FN1 TN1 FP1 -> F1 0.5, acc 0.5; popular all right -> F1 1,
    # acc 1; adversarial: yes-wrong (FN), no-wrong (FP), no-right (TN), yes-right (TP) -> F1 0.5
    table = {"random": [("yes", 1), ("yes", 0), ("no", 1), ("no", 0)],
             "popular": [("yes", 1), ("yes", 1), ("no", 1), ("no", 1)],
             "adversarial": [("yes", 0), ("no", 0), ("no", 1), ("yes", 1)]}
    for split, rows in table.items():
        for j, (gold, right) in enumerate(rows):
            recs.append({"question_id": qid, "category": split, "target": gold, "score": right,
                         "image": f"img{j // 2}"})
            qid += 1
    return recs


def test_pope_f1_and_accuracy_presets():
    recs = _pope_records()
    tr = S.task_statistic("pope", recs)
    assert tr.statistic.point() == pytest.approx((50 + 100 + 50) / 3)  # mean split F1 x100
    assert S.task_statistic("pope", recs, "accuracy").statistic.point() == pytest.approx((50 + 100 + 50) / 3)
    assert tr.strata == ["random"] * 4 + ["popular"] * 4 + ["adversarial"] * 4
    assert tr.clusters[0] == ("random", "img0") and len(set(tr.clusters)) == 6
    # a split where the model never says yes: TP = 0 -> F1 = 0 (defined, not a crash)
    no_tp = [{"question_id": i, "split": "random", "target": "yes", "score": 0} for i in range(2)]
    assert S.task_statistic("pope", no_tp).statistic.point() == 0.0
    ci = S.task_bootstrap_ci("pope", recs, n_resamples=200)
    assert ci.low <= ci.point <= ci.high
    # eval_pope.py quirk: any label other than exactly "no" is positive; "parsed" wins over score
    quirk = [{"question_id": 0, "split": "random", "target": "No", "score": 1.0},
             {"question_id": 1, "split": "random", "target": "no", "parsed": "yes", "score": 0.0}]
    # q0: gold yes (not exactly "no"), right -> TP; q1: FP -> F1 = 2/(2+1)
    assert S.task_statistic("pope", quirk).statistic.point() == pytest.approx(200 / 3)
    with pytest.raises(ValueError, match="split"):
        S.task_statistic("pope", [{"question_id": 0, "split": "other", "target": "yes", "score": 1}])
    with pytest.raises(ValueError, match="lacks any of"):
        S.task_statistic("pope", [{"question_id": 0, "target": "yes", "score": 1}])


def _mme_records():
    rows = [("existence", "e1", 1), ("existence", "e1", 1), ("existence", "e2", 1), ("existence", "e2", 0),
            ("count", "c1", 0), ("count", "c1", 0), ("code_reasoning", "r1", 1), ("code_reasoning", "r1", 1)]
    return [{"question_id": i, "category": c, "image": img, "score": s} for i, (c, img, s) in enumerate(rows)]


def test_mme_presets_follow_official_calculation():
    recs = _mme_records()
    # existence: acc 3/4 = 75, acc+ 1/2 images = 50 -> 125; count: 0 + 0 -> 0; perception = 125
    tr = S.task_statistic("mme", recs)
    assert tr.statistic.point() == pytest.approx(125.0)
    assert tr.question_ids == [str(i) for i in range(6)]
    # cognition: code_reasoning both right -> 100 + 100 = 200
    assert S.task_statistic("mme", recs, "cognition").statistic.point() == pytest.approx(200.0)
    ci = S.task_bootstrap_ci("mme", recs, n_resamples=200)
    # existence keeps 2 images, count 1: resamples of existence give {e1,e1}=400/2.., values in [0, 400]
    assert 0.0 <= ci.low <= 125.0 <= ci.high <= 400.0
    # without an image field: the loader's "<image>#k" ids (or answer_question_id) give the clusters
    no_img = [{k: v for k, v in r.items() if k != "image"} | {"question_id": f"{r['image']}#{i % 2}"}
              for i, r in enumerate(recs)]
    tr2 = S.task_statistic("mme", no_img)
    assert tr2.statistic.point() == pytest.approx(125.0) and tr2.clusters == tr.clusters
    by_aqid = [{k: v for k, v in r.items() if k != "image"} | {"answer_question_id": r["image"]} for r in recs]
    assert S.task_statistic("mme", by_aqid).clusters == tr.clusters
    with pytest.raises(ValueError, match="unknown subtask"):
        S.task_statistic("mme", [{"question_id": 0, "category": "bogus", "image": "x", "score": 1}])


def test_mmbench_circular_preset():
    # group 1: both copies right -> hit; group 2: one copy wrong -> miss; group 3: right -> 2/3
    recs = [{"question_id": q, "score": s} for q, s in
            ((1, 1), (1000001, 1), (2, 1), (1000002, 0), (3, 1))]
    tr = S.task_statistic("mmbench", recs)
    assert tr.statistic.point() == pytest.approx(200 / 3)
    assert tr.clusters == [1, 1, 2, 2, 3]
    # an orphan copy and a missing (None) question are left out: groups 1 (hit) and 2 (miss) -> 50
    extra = recs + [{"question_id": 1000009, "score": 1, "orphan": True},
                    {"question_id": 4, "score": None}, {"question_id": 1000004, "score": None}]
    tr = S.task_statistic("mmbench", extra[:4] + extra[5:])
    assert tr.statistic.point() == pytest.approx(50.0) and tr.question_ids == ["1", "1000001", "2", "1000002"]
    with pytest.raises(ValueError, match="integer index"):
        S.task_statistic("mmbench_cn", [{"question_id": "abc", "score": 1}])


def test_mean_presets_and_filters():
    sqa = [{"question_id": 0, "has_image": True, "score": 1}, {"question_id": 1, "has_image": False, "score": 0},
           {"question_id": 2, "has_image": True, "score": 0}]
    assert S.task_statistic("scienceqa_img", sqa).statistic.point() == pytest.approx(50.0)  # 1 of 2 image Qs
    assert S.task_statistic("scienceqa_img", sqa, "accuracy").statistic.point() == pytest.approx(100 / 3)
    mmvet = [{"question_id": 0, "score": 0.5}, {"question_id": 1, "score": None}, {"question_id": 2, "score": 1.0}]
    tr = S.task_statistic("mmvet", mmvet)
    assert tr.statistic.point() == pytest.approx(75.0) and tr.question_ids == ["0", "2"]  # missing dropped
    gqa = [{"question_id": i, "score": float(i % 2)} for i in range(10)]
    assert S.task_statistic("gqa", gqa).statistic.point() == pytest.approx(50.0)
    # unbalanced GQA questions are outside eval.py's accuracy: 1 right + 1 wrong balanced -> 50
    gqa_ub = [{"question_id": 0, "score": 1.0, "balanced": True}, {"question_id": 1, "score": 1.0, "balanced": False},
              {"question_id": 2, "score": 0.0, "balanced": True}]
    assert S.task_statistic("gqa", gqa_ub).statistic.point() == pytest.approx(50.0)
    with pytest.raises(ValueError, match="no fast statistic for 'binary'"):
        S.task_statistic("gqa", gqa, "binary")
    with pytest.raises(ValueError, match="no fast statistic for task"):
        S.task_statistic("vqav2", gqa)
    with pytest.raises(ValueError, match="non-finite"):
        S.task_statistic("gqa", [{"question_id": 0, "score": float("inf")}])


def test_llava_bench_ratio_of_means():
    recs = [{"question_id": 0, "scores": [8, 6]}, {"question_id": 1, "reference_score": 10, "model_score": 9},
            {"question_id": 2, "scores": None}]
    # (6 + 9) / (8 + 10) * 100, the missing judgement excluded
    tr = S.task_statistic("llava_bench", recs)
    assert tr.statistic.point() == pytest.approx(1500 / 18) and tr.question_ids == ["0", "1"]
    with pytest.raises(ValueError, match="judge scores"):
        S.task_statistic("llava_bench", [{"question_id": 0, "score": 1}])


def test_task_paired_test_alignment():
    rng = np.random.default_rng(0)
    a = [{"question_id": i, "score": float(v)} for i, v in enumerate(bern(rng, 0.8, 400))]
    b = [{"question_id": i, "score": float(v)} for i, v in enumerate(bern(rng, 0.5, 400))]
    res = S.task_paired_test("gqa", a, b, n_resamples=300)
    assert res.diff == pytest.approx(100 * (np.mean([r["score"] for r in a]) - np.mean([r["score"] for r in b])))
    assert res.p_value < 0.01
    # B given in another order -> re-aligned to A's questions: identical result
    assert S.task_paired_test("gqa", a, list(reversed(b)), n_resamples=300) == res
    same = S.task_paired_test("gqa", a, a, n_resamples=100)
    assert same.diff == 0.0 and same.p_value == 1.0
    with pytest.raises(ValueError, match="different questions"):
        S.task_paired_test("gqa", a, b[:-1])
    with pytest.raises(ValueError, match="duplicate"):
        S.task_paired_test("gqa", a + a[:1], b + b[:1])
    # MM-Vet: a question with a missing judgement in either run is dropped from both
    ma = [{"question_id": 0, "score": 1.0}, {"question_id": 1, "score": None}, {"question_id": 2, "score": 0.0}]
    mb = [{"question_id": 0, "score": 0.0}, {"question_id": 1, "score": 1.0}, {"question_id": 2, "score": 0.0}]
    assert S.task_paired_test("mmvet", ma, mb, n_resamples=50).diff == pytest.approx(50.0)  # (1+0)/2 - 0


def test_records_from_result_and_load_records(tmp_path):
    samples = [Sample(1, "q?", tmp_path / "a.jpg", "yes", {"category": "random"}),
               Sample(2, "q?", b"\x89PNG bytes", "no", {"category": "random"}),
               Sample(3, "q?", None, "no", {"category": "popular"})]
    result = ScoreResult({}, {"1": {"score": 1, "target": "yes"}, "2": {"score": 0, "target": "no"},
                              "3": {"score": 1, "target": "no"}}, 3)
    recs = S.records_from_result(samples, result)
    assert recs[0]["image"] == str(tmp_path / "a.jpg") and recs[0]["category"] == "random"
    assert recs[1]["image"].startswith("sha1:") and recs[2]["image"] is None and recs[2]["has_image"] is False
    # random: gold yes right (TP) + gold no wrong (FP) -> F1 = 2/(2+1) = 2/3; popular: one TN, no TP
    # -> F1 0; mean = (66.67 + 0) / 2
    assert S.task_statistic("pope", recs).statistic.point() == pytest.approx(100 * (2 / 3) / 2)
    with pytest.raises(KeyError, match="no per-sample entry"):
        S.records_from_result(samples, ScoreResult({}, {}, 0))
    path = tmp_path / "samples.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    assert S.load_records(path) == recs
    path.write_text(json.dumps(recs[0]) + "\n{broken\n")
    with pytest.raises(DataError, match=r"samples.jsonl:2"):
        S.load_records(path)
