"""C5 (generalisation): the constructed problem against its closed forms, the digits splits, the verdict."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from labcheck import assert_well_formed, part_verdicts, quick_outcome
from scipy import stats

from adamlab.lab.claims.c5_generalisation import claim as c5
from adamlab.lab.claims.c5_generalisation import cnn, study
from adamlab.lab.claims.c5_generalisation.constructed import constructed_problem, fresh_labels, predict_fresh
from adamlab.lab.framework.claim import Context
from adamlab.lab.framework.verdicts import UNDECIDED
from adamlab.lab.framework.workers import Workers


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return quick_outcome(c5.CLAIM, tmp_path_factory)


# ---------------------------------------------------------------- the construction (Wilson et al. sec. 3.3)


def test_features_follow_the_construction():
    X, y = constructed_problem(50, 0.6, torch.Generator().manual_seed(1))
    assert X.shape == (50, 3 + 5 * 50) and y.sum() > 0
    assert torch.equal(X[:, 0], y) and torch.all(X[:, 1:3] == 1)
    private = X[:, 3:].sum(dim=1)
    assert torch.equal(private, torch.where(y > 0, 1.0, 5.0).double())
    # private blocks do not overlap: each column is used by at most one example
    assert X[:, 3:].sum(dim=0).max() == 1


def test_sign_solution_interpolates_and_predicts_plus_one():
    """w = sign(X^T y)/4 fits every training label exactly, and labels every fresh point +1."""
    gen = torch.Generator().manual_seed(2)
    X, y = constructed_problem(100, 0.6, gen)
    w = torch.sign(X.T @ y) / 4
    torch.testing.assert_close(X @ w, y)
    y_new = fresh_labels(1000, 0.6, gen)
    assert torch.all(predict_fresh(w, y_new) == 1)


def test_min_norm_solution_classifies_fresh_points():
    gen = torch.Generator().manual_seed(3)
    X, y = constructed_problem(100, 0.6, gen)
    w = torch.linalg.pinv(X) @ y
    y_new = fresh_labels(1000, 0.6, gen)
    assert torch.equal(predict_fresh(w, y_new), y_new)


# ---------------------------------------------------------------- the quick run


@pytest.mark.slow  # the quick run: seconds
def test_quick_run(outcome):
    assert_well_formed(outcome)
    assert [f.path.name for f in outcome.figures] == ["c5_constructed.png", "c5_tuning.png", "c5_digits.png"]
    # one seed gives no interval: the CNN part says it was not tested
    assert part_verdicts(c5.CLAIM, outcome.metrics) == {"constructed": "reproduced", "cnn": "not tested"}


@pytest.mark.slow  # the quick run: seconds
def test_adaptive_methods_reach_the_sign_direction(outcome):
    c = outcome.metrics["constructed"]
    for name in c5.ADAPTIVE:
        assert c[name]["cos_sign_direction"] >= 0.9999
        assert c[name]["max_abs_diff_to_sign_over_4"] < 1e-3
        # always predicting +1 errs on exactly the negatives among the fresh labels
        assert c[name]["test_error"] == outcome.metrics["constructed_setup"]["fresh_negative_fraction"]


@pytest.mark.slow  # the quick run: seconds
def test_gradient_methods_reach_the_minimum_norm_solution(outcome):
    c = outcome.metrics["constructed"]
    assert c["gd"]["relative_distance_to_min_norm"] < 1e-8
    assert c["heavy_ball"]["relative_distance_to_min_norm"] < 1e-8
    assert c["sgd"]["relative_distance_to_min_norm"] < 0.05
    assert all(c[n]["test_error"] == 0 for n in ("gd", "sgd", "heavy_ball"))


@pytest.mark.slow  # the quick run: seconds
def test_cnn_is_reported(outcome):
    cnn_metrics = outcome.metrics["cnn"]
    assert set(cnn_metrics["test_accuracy"]) == set(cnn.KINDS)
    assert cnn_metrics["adaptive"] in ("adam_l2", "adamw")
    assert cnn_metrics["gap"]["decision"] == "single seed"


# ---------------------------------------------------------------- the digits recipe


def test_digits_splits_are_stratified_and_disjoint():
    splits = cnn._splits(400, 400)
    assert {k: len(v[1]) for k, v in splits.items()} == {"train": 400, "val": 400, "test": 997}
    counts = np.bincount(splits["test"][1].numpy(), minlength=10)
    assert counts.min() >= 95 and counts.max() <= 105
    rows = {k: {tuple(img.flatten().tolist()) for img in v[0]} for k, v in splits.items()}
    # a few digits images are exact duplicates of each other, so allow a handful of coincidences
    assert len(rows["train"] & rows["test"]) < 5
    assert 0 <= splits["train"][0].min() and splits["train"][0].max() <= 1


def test_random_shift_moves_each_image_by_its_own_offset():
    """Every output is its input rolled by some (dy, dx) in [-1, 1]^2 with zeros shifted in (numpy as the oracle)."""
    x = torch.rand(50, 1, 8, 8)
    out = cnn.random_shift(x, 1, torch.Generator().manual_seed(0))
    seen = set()
    for before, after in zip(x[:, 0].numpy(), out[:, 0].numpy()):
        matches = []
        for dy, dx in itertools.product((-1, 0, 1), repeat=2):
            padded = np.pad(before, 1)
            if np.array_equal(padded[1 - dy:9 - dy, 1 - dx:9 - dx], after):
                matches.append((dy, dx))
        assert len(matches) == 1
        seen.add(matches[0])
    assert len(seen) == 9  # every offset occurs
    assert torch.equal(cnn.random_shift(x, 0, torch.Generator()), x)


@pytest.mark.parametrize(
    "sgd, adam",
    [
        ([0.980, 0.982, 0.978, 0.984, 0.980, 0.982], [0.986, 0.988, 0.984, 0.990, 0.986, 0.986]),  # consistent
        ([0.980, 0.990, 0.970, 0.984, 0.976, 0.982], [0.982, 0.984, 0.980, 0.978, 0.986, 0.980]),  # noise
        ([0.980, 0.982, 0.980, 0.982, 0.980, 0.982], [0.9804, 0.9826, 0.9805, 0.9823, 0.9805, 0.9824]),  # < 1 image
    ],
)
def test_paired_gap_agrees_with_a_paired_t_test(sgd, adam):
    gap = study.paired_gap(sgd, adam, test_size=500)
    result = stats.ttest_rel(sgd, adam)
    assert gap["gap"] == pytest.approx(sum(sgd) / 6 - sum(adam) / 6)
    low, high = gap["ci95"]
    assert (low > 0 or high < 0) == (result.pvalue < 0.05)
    significant = result.pvalue < 0.05 and abs(gap["gap"]) > 1 / 500
    assert (gap["decision"] in ("sgd", "other")) == significant


@pytest.mark.parametrize(
    "shift, decision, verdict",
    [(+0.02, "sgd", True), (-0.02, "other", False), (0.0, "equivalent", False)],
)
def test_gap_decisions(shift, decision, verdict):
    """A clear gap either way is significant; a tight interval around 0 is no gap; a wide one cannot decide."""
    rng = np.random.default_rng(0)
    adam = 0.96 + 0.004 * rng.standard_normal(20)
    sgd = adam + shift + 0.002 * rng.standard_normal(20)
    gap = study.paired_gap(sgd.tolist(), adam.tolist(), test_size=997)
    assert gap["decision"] == decision and study.verdict(gap["decision"]) is verdict
    wide = study.paired_gap((adam + 0.03 * rng.standard_normal(20)).tolist(), adam.tolist(), test_size=997)
    assert wide["decision"] == "undecided" and study.verdict(wide["decision"]) is UNDECIDED


def test_tuning_brackets_lr_and_wd(monkeypatch):
    """With a validation score peaked at lr 0.3 and wd 1e-2, beyond both first grids, tuning walks out to them."""
    def fake_train(run):
        score = 0.9 - 0.01 * abs(math.log10(run.lr / 0.3)) - 0.01 * abs(math.log10(run.wd / 1e-2))
        return {"train": 1.0, "val": score, "test": score, "finite": True}

    monkeypatch.setattr(study, "train_cnn", fake_train)
    recipe = study.Recipe(grids=(study.Grid("sgd", (0.01, 0.03), (1e-4, 1e-3)),), epochs=1, batch=8, shift=1,
                          train_size=400, val_size=400, tune_seeds=2, test_seeds=2, max_extensions=4)
    with Workers(1) as pool:
        tuned = study.tune(recipe, 0, pool, lambda description, total: (lambda: None))["sgd"]
    assert tuned["chosen_lr"] == pytest.approx(0.27, rel=0.01) and tuned["interior"]
    assert tuned["chosen_wd"] == pytest.approx(1e-2, rel=0.01) and tuned["wd_interior"]
    assert tuned["extended_lrs"] == pytest.approx([0.09, 0.27, 0.81], rel=0.01)


# ---------------------------------------------------------------- the verdict


def passing():
    errors = {"gd": 0.0, "sgd": 0.0, "heavy_ball": 0.0, "adam": 0.399, "rmsprop": 0.399, "adagrad": 0.399}
    return {
        "constructed": {n: {"train_error": 0.0, "test_error": e} for n, e in errors.items()},
        "constructed_setup": {"p": 0.6},
    }


def with_value(method, key, value):
    m = passing()
    m["constructed"][method][key] = value
    return m


def test_verdict_passes_on_the_reference_numbers():
    assert c5.judge_constructed(passing())


@pytest.mark.parametrize(
    "method, key, inside, outside",
    [
        ("adam", "train_error", 0.0, 0.01),
        ("gd", "train_error", 0.0, 0.01),
        ("gd", "test_error", 0.0, 0.002),
        ("adam", "test_error", 0.4 - c5.ADAPTIVE_TOL + 1e-9, 0.4 - c5.ADAPTIVE_TOL - 1e-6),
        ("rmsprop", "test_error", 0.4 + c5.ADAPTIVE_TOL - 1e-9, 0.4 + c5.ADAPTIVE_TOL + 1e-6),
        ("adagrad", "test_error", 0.405, 0.2),
    ],
)
def test_verdict_flips_at_each_threshold(method, key, inside, outside):
    assert c5.judge_constructed(with_value(method, key, inside))
    assert not c5.judge_constructed(with_value(method, key, outside))


@pytest.mark.slow
def test_full_cnn_study_verdict_follows_a_paired_t_test(tmp_path):
    """The full recipe, then scipy's paired t-test on its per-seed test accuracies as the oracle of the decision;
    and the verdict flipping when the adaptive method's accuracies are raised past SGD's."""
    outcome = c5.CLAIM.run(Context(tmp_path, quick=False, seed=0))
    m = outcome.metrics["cnn"]
    assert all(t["interior"] for t in m["tuning"].values())  # every lr optimum bracketed
    assert len(m["seeds"]) == c5.FULL.recipe.test_seeds
    sgd, other = np.array(m["test_accuracy"]["sgd"]), np.array(m["test_accuracy"][m["adaptive"]])
    test = stats.ttest_rel(sgd, other)
    half = stats.t.ppf(0.975, len(sgd) - 1) * (sgd - other).std(ddof=1) / math.sqrt(len(sgd))
    gap = (sgd - other).mean()
    if test.pvalue < 0.05 and abs(gap) > 1 / m["test_size"]:
        expected = "reproduced" if gap > 0 else "not reproduced"
    elif abs(gap) + half <= study.EQUIVALENCE_MARGIN:
        expected = "not reproduced"
    else:
        expected = "cannot decide"
    assert part_verdicts(c5.CLAIM, outcome.metrics)["cnn"] == expected
    flipped = {**outcome.metrics, "cnn": {**m, "gap": study.paired_gap(sgd.tolist(), (sgd + 0.02).tolist(),
                                                                       m["test_size"])}}
    assert part_verdicts(c5.CLAIM, flipped)["cnn"] == "not reproduced"
