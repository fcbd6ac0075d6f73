"""C2 (AdamW vs Adam + L2): the quick run against closed forms and torch, and the verdict's thresholds."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from labcheck import assert_well_formed

from adamlab.lab.claims import c2_adamw as c2
from adamlab.lab.core import Context
from adamlab.lab.models_bn import BNNet, Replicas, angle_between_rows


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return c2.CLAIM.run(Context(tmp_path_factory.mktemp("c2"), quick=True, seed=0))


def test_quick_run_reproduces(outcome):
    assert_well_formed(outcome)
    assert [p.name for p in outcome.figures] == ["c2_decay.png", "c2_equilibrium.png"]
    assert c2.CLAIM.judge(outcome.metrics)


def test_adamw_mean_theta_follows_the_closed_form(outcome):
    """Pure noise averages out, so AdamW's mean theta_T is (1 - lr*wd)^T; its rate k is lr*wd in every group."""
    m = outcome.metrics
    closed = (1 - c2.A_LR * c2.A_ADAMW_WD) ** c2.A_STEPS
    assert m["a_expected_theta"] == pytest.approx(0.13520, abs=1e-5)  # claims.md
    assert abs(m["a_adamw_mean_theta"] - closed) < 0.005
    assert m["a_adamw_k"] == pytest.approx([c2.A_LR * c2.A_ADAMW_WD] * len(c2.SIGMAS), rel=0.02)


def test_adam_l2_decay_rate_in_the_noise_dominated_limit(outcome):
    """When noise dominates (sigma = 1), Adam + L2's decay rate is about lr * lambda' / sigma."""
    k_noisiest = outcome.metrics["a_adam_l2_k"][-1]
    assert k_noisiest == pytest.approx(c2.A_LR * c2.A_L2 / c2.SIGMAS[-1], rel=0.3)
    assert outcome.metrics["a_adam_l2_k"] == sorted(outcome.metrics["a_adam_l2_k"], reverse=True)


def test_sgd_l2_run_matches_a_numpy_recursion():
    """The equivalence check's SGD + L2 run against w <- w - lr (X^T (Xw - y)/n + wd w), written in numpy."""
    problem = c2.least_squares(0)
    X, y, w = (t.numpy() for t in problem)
    for _ in range(c2.LSQ_STEPS):
        w = w - c2.SGD_LR * (X.T @ (X @ w - y) / len(y) + c2.WD * w)
    import adamlab

    ours = c2.final_weights(problem, lambda p: adamlab.SGD(p, lr=c2.SGD_LR, weight_decay=c2.WD))
    np.testing.assert_allclose(ours.numpy(), w, rtol=0, atol=1e-12)


def test_equivalence_metrics(outcome):
    m = outcome.metrics
    assert m["sgd_l2_vs_decoupled_max_diff"] < 1e-12
    assert m["sgd_momentum_l2_vs_decoupled_max_diff"] > 1e-2
    assert m["adam_l2_best_max_diff"] > 1e-2
    assert m["adam_l2_best_max_diff"] <= m["adam_l2_same_coefficient_max_diff"]
    assert m["adamw_vs_torch_optim_adamw_max_diff"] < 1e-12


def test_replicas_match_torch_batchnorm_network():
    """Each copy of the batched network computes what torch's Linear/BatchNorm1d/ReLU/Linear computes."""
    base = BNNet()
    net = Replicas(base, 3)
    x = torch.randn(64, 20)
    expected = base(x)
    out = net(x)
    assert out.shape == (3, 64, 4)
    for copy in out:
        torch.testing.assert_close(copy, expected, rtol=1e-5, atol=1e-5)


def test_angle_between_rows_matches_acos():
    a, b = torch.randn(5, 20, dtype=torch.float64), torch.randn(5, 20, dtype=torch.float64)
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    assert angle_between_rows(a, b).item() == pytest.approx(torch.acos(cos).mean().item(), rel=1e-12)
    assert angle_between_rows(a, 3.0 * a).item() == pytest.approx(0.0, abs=1e-7)


PASSING = {
    "sgd_l2_vs_decoupled_max_diff": 1e-16,
    "sgd_momentum_l2_vs_decoupled_max_diff": 0.06,
    "adam_l2_best_max_diff": 0.12,
    "a_adam_l2_spread": 194.0,
    "a_adamw_spread": 1.01,
    "a_adamw_mean_theta": 0.1352,
    "a_expected_theta": 0.13520,
    "b_adamw_ratio": 1.11,
    "b_adam_l2_ratio": 4.2,
}

EPS = 1e-9
FLIPS = [
    ("sgd_l2_vs_decoupled_max_diff", c2.EXACT_TOL, c2.EXACT_TOL * 1.01),
    ("sgd_momentum_l2_vs_decoupled_max_diff", c2.DIFFER_MIN, c2.DIFFER_MIN * 0.99),
    ("adam_l2_best_max_diff", c2.DIFFER_MIN, c2.DIFFER_MIN * 0.99),
    ("a_adam_l2_spread", c2.L2_SPREAD_MIN, c2.L2_SPREAD_MIN - EPS),
    ("a_adamw_spread", c2.ADAMW_SPREAD_MAX, c2.ADAMW_SPREAD_MAX + EPS),
    ("a_adamw_mean_theta", 0.13520 + c2.THETA_TOL - 1e-6, 0.13520 + c2.THETA_TOL + 1e-6),
    ("a_adamw_mean_theta", 0.13520 - c2.THETA_TOL + 1e-6, 0.13520 - c2.THETA_TOL - 1e-6),
    ("b_adamw_ratio", c2.ADAMW_RATIO_MAX - EPS, c2.ADAMW_RATIO_MAX),
    ("b_adam_l2_ratio", c2.L2_RATIO_MIN + EPS, c2.L2_RATIO_MIN),
]


def test_verdict_passes_on_the_reference_numbers():
    assert c2.judge(PASSING)


@pytest.mark.parametrize("key, inside, outside", FLIPS)
def test_verdict_flips_at_each_threshold(key, inside, outside):
    assert c2.judge({**PASSING, key: inside})
    assert not c2.judge({**PASSING, key: outside})
