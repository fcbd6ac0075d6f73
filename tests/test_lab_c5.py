"""C5 (generalisation): the constructed problem against its closed forms, the digits splits, the verdict."""

from __future__ import annotations

import pytest
import torch
from labcheck import assert_well_formed
from scipy import stats

from adamlab.lab.claims import c5_generalisation as c5
from adamlab.lab.core import Context
from adamlab.lab.data_digits import digits_splits
from adamlab.lab.data_wilson import constructed_problem, fresh_labels, predict_fresh


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return c5.CLAIM.run(Context(tmp_path_factory.mktemp("c5"), quick=True, seed=0))


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


def test_quick_run_reproduces(outcome):
    assert_well_formed(outcome)
    assert [p.name for p in outcome.figures] == ["c5_constructed.png", "c5_digits.png"]
    assert c5.CLAIM.judge(outcome.metrics)


def test_adaptive_methods_reach_the_sign_direction(outcome):
    c = outcome.metrics["constructed"]
    for name in c5.ADAPTIVE:
        assert c[name]["cos_sign_direction"] >= 0.9999
        assert c[name]["max_abs_diff_to_sign_over_4"] < 1e-3
        # always predicting +1 errs on exactly the negatives among the fresh labels
        assert c[name]["test_error"] == outcome.metrics["constructed_setup"]["fresh_negative_fraction"]


def test_gradient_methods_reach_the_minimum_norm_solution(outcome):
    c = outcome.metrics["constructed"]
    assert c["gd"]["relative_distance_to_min_norm"] < 1e-8
    assert c["heavy_ball"]["relative_distance_to_min_norm"] < 1e-8
    assert c["sgd"]["relative_distance_to_min_norm"] < 0.05
    assert all(c[n]["test_error"] == 0 for n in ("gd", "sgd", "heavy_ball"))


def test_cnn_is_reported(outcome):
    cnn = outcome.metrics["cnn"]
    assert set(cnn["test_accuracy"]) == {"sgd", "adam"}
    assert all(0.5 < a <= 1 for a in cnn["test_accuracy"]["sgd"] + cnn["test_accuracy"]["adam"])
    assert cnn["gap_significant"] is False  # one seed: no spread to call a gap significant


def test_digits_splits_are_stratified_and_disjoint():
    splits = digits_splits()
    assert {k: len(v.y) for k, v in splits.items()} == {"train": 1000, "val": 297, "test": 500}
    counts = torch.bincount(splits["test"].y, minlength=10)
    assert counts.min() >= 48 and counts.max() <= 52
    rows = {k: {tuple(img.flatten().tolist()) for img in v.x} for k, v in splits.items()}
    # a few digits images are exact duplicates of each other, so allow a handful of coincidences
    assert len(rows["train"] & rows["test"]) < 5
    assert 0 <= splits["train"].x.min() and splits["train"].x.max() <= 1


@pytest.mark.parametrize(
    "sgd, adam",
    [
        ([0.980, 0.982, 0.978, 0.984, 0.980, 0.982], [0.986, 0.988, 0.984, 0.990, 0.986, 0.986]),  # consistent
        ([0.980, 0.990, 0.970, 0.984, 0.976, 0.982], [0.982, 0.984, 0.980, 0.978, 0.986, 0.980]),  # noise
        ([0.980, 0.982, 0.980, 0.982, 0.980, 0.982], [0.9804, 0.9826, 0.9805, 0.9823, 0.9805, 0.9824]),  # < 1 image
    ],
)
def test_paired_gap_agrees_with_a_paired_t_test(sgd, adam):
    gap = c5.paired_gap(sgd, adam, test_size=500)
    result = stats.ttest_rel(sgd, adam)
    assert gap["gap_sgd_minus_adam"] == pytest.approx(sum(sgd) / 6 - sum(adam) / 6)
    assert gap["gap_significant"] == (result.pvalue < 0.05 and abs(gap["gap_sgd_minus_adam"]) > 1 / 500)
    low, high = gap["gap_ci95"]
    assert (low > 0 or high < 0) == (result.pvalue < 0.05)


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
    assert c5.judge(passing())


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
    assert c5.judge(with_value(method, key, inside))
    assert not c5.judge(with_value(method, key, outside))


def test_verdict_ignores_the_cnn():
    m = passing()
    m["cnn"] = {"gap_sgd_minus_adam": -0.05, "gap_significant": True}
    assert c5.judge(m)
