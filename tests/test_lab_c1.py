"""C1 (bias correction): the quick run against closed forms, and the verdict's thresholds."""

from __future__ import annotations

import math

import pytest
import torch
from labcheck import assert_well_formed, part_verdicts, quick_outcome

from adamlab.lab.claims.c1_bias_correction import claim as c1


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return quick_outcome(c1.CLAIM, tmp_path_factory)


def test_quick_run_reproduces(outcome):
    assert_well_formed(outcome)
    assert part_verdicts(c1.CLAIM, outcome.metrics) == {"steps": "reproduced", "proxy": "reproduced"}


def test_first_step_matches_the_paper_table(outcome):
    """Uncorrected first step = (1-b1)/sqrt(1-b2) in units of lr (Kingma & Ba, sec. 3)."""
    first = outcome.metrics["first_step_uncorrected"]
    for b1 in (0.9, 0.0):
        for b2 in (0.99, 0.999, 0.9999):
            assert first[f"b1={b1},b2={b2}"] == pytest.approx((1 - b1) / math.sqrt(1 - b2), rel=1e-6)


def test_peak_of_the_uncorrected_step(outcome):
    """For b1 = 0.9 the step keeps growing after t = 1; its peak is found from the closed form."""
    for b2 in (0.99, 0.999, 0.9999):
        t_star = max(range(1, 1000), key=lambda t: (1 - 0.9**t) / math.sqrt(1 - b2**t))
        key = f"b1=0.9,b2={b2}"
        assert outcome.metrics["peak_step_t"][key] == t_star
        assert outcome.metrics["peak_step_uncorrected"][key] == pytest.approx(
            (1 - 0.9**t_star) / math.sqrt(1 - b2**t_star), rel=1e-6
        )
    # claims.md: peaks 2.13, 6.57 and 20.72 at t of about 12-13
    assert [round(outcome.metrics["peak_step_uncorrected"][f"b1=0.9,b2={b2}"], 2) for b2 in (0.99, 0.999, 0.9999)] == [
        2.13,
        6.57,
        20.72,
    ]


def test_paper_forms(outcome):
    """Algorithm 1 = efficient form only with eps_hat = eps sqrt(1-b2^t); adamlab.Adam is Algorithm 1."""
    for scale in ("1", "1e-07"):
        forms = outcome.metrics["paper_forms"][f"scale={scale}"]
        assert forms["eps_hat_exact"] < 1e-12
        assert forms["adamlab_vs_alg1"] < 1e-12
    # a constant eps_hat is off by about eps / (|g| sqrt(1-b2^t)): tiny at |g| = 1, order one at 1e-7
    assert outcome.metrics["paper_forms"]["scale=1"]["eps_hat_const"] < 1e-4
    assert outcome.metrics["paper_forms"]["scale=1e-07"]["eps_hat_const"] > 0.1


def passing() -> dict:
    return {"worst_ratio_near_1": 5.0, "worst_ratio_control": 2.0, "step_table_max_rel_err": 1e-9}


@pytest.mark.parametrize(
    "judge, key, failing",
    [(c1.judge_proxy, "worst_ratio_near_1", 4.999), (c1.judge_proxy, "worst_ratio_control", 2.001),
     (c1.judge_steps, "step_table_max_rel_err", 1.01e-9)],
)
def test_judge_flips_at_each_threshold(judge, key, failing):
    assert judge(passing())
    assert not judge({**passing(), key: failing})


def test_proxy_runs_are_deterministic_per_seed():
    run = lambda seed: c1.proxy_losses(seed, 0.9, 0.99, 0.03, True, lambda: None)  # noqa: E731
    assert run(5) == run(5)
    assert run(5) != run(6)


# ---------------------------------------------------------------- adamlab.Monitor on the proxy

from adamlab.lab.claims.c1_bias_correction import monitoring as c1_monitoring  # noqa: E402


def direct_first_step(row, bias_correction: bool, seed: int = 0) -> dict:
    """Update RMS / param RMS and the median effective step of the proxy's first step, from its state."""
    captured = {}

    def watch(opt):
        captured["opt"] = opt
        captured["before"] = [p.detach().clone() for g in opt.param_groups for p in g["params"]]

    c1.proxy_losses(seed, row.beta1, row.beta2, row.lr, bias_correction, lambda: None, 1, watch=watch)
    opt = captured["opt"]
    params = [p for g in opt.param_groups for p in g["params"]]
    before = torch.cat([b.reshape(-1) for b in captured["before"]])
    delta = torch.cat([p.detach().reshape(-1) for p in params]) - before
    v = torch.cat([opt.state[p]["exp_avg_sq"].reshape(-1) for p in params])
    bc1, bc2 = (1 - row.beta1, 1 - row.beta2) if bias_correction else (1.0, 1.0)
    effective = row.lr / bc1 / ((v / bc2).sqrt() + opt.defaults["eps"])  # Kingma & Ba, Algorithm 1
    rms = lambda x: x.pow(2).mean().sqrt().item()  # noqa: E731
    return {"update_to_param": rms(delta) / rms(before), "effective_step_p50": effective.median().item()}


@pytest.fixture(scope="module")
def watched():
    return c1_monitoring.monitor_runs(0, lambda description, total: (lambda: None))


@pytest.mark.parametrize("bias_correction", [False, True])
def test_monitor_numbers_are_the_state_of_the_first_step(watched, bias_correction):
    """The metrics' monitor numbers against update RMS / param RMS and the effective step computed from the
    optimizer's state after one step of the same run (histogram percentiles: within 2^(1/32))."""
    m = c1_monitoring.metrics(watched)[c1_monitoring.NEAR_1.key][c1_monitoring.label(bias_correction)]
    direct = direct_first_step(c1_monitoring.NEAR_1, bias_correction)
    assert m["update_to_param_step1"] == pytest.approx(direct["update_to_param"], rel=1e-6)
    assert m["effective_step_p50_step1"] == pytest.approx(direct["effective_step_p50"], rel=0.022)


def test_monitor_effective_step_ratio_is_the_closed_form(outcome):
    """At step 1 both runs share params and batch, so uncorrected / corrected = (1 - b1) / sqrt(1 - b2)."""
    for row in c1_monitoring.ROWS:
        m = outcome.metrics["monitor"][row.key]
        assert m["effective_step_p50_ratio_step1"] == pytest.approx((1 - row.beta1) / math.sqrt(1 - row.beta2),
                                                                    rel=0.045)  # two histogram bins
    near = outcome.metrics["monitor"][c1_monitoring.NEAR_1.key]
    assert near["uncorrected"]["update_to_param_step1"] > 5 * near["corrected"]["update_to_param_step1"]


def test_monitored_runs_are_the_proxy_runs(watched):
    """A monitor changes nothing: the monitored run's losses are the unmonitored run's, bit for bit."""
    row = c1_monitoring.NEAR_1
    plain = c1.proxy_losses(0, row.beta1, row.beta2, row.lr, False, lambda: None, c1.PROXY_WINDOW)
    assert watched.losses[row, False] == plain


def test_monitor_figure_and_table_on_the_page(outcome):
    names = [f.path.name for f in outcome.figures]
    assert "c1_monitor.png" in names
    assert any("adamlab.Monitor" in t["caption"] for t in outcome.tables)
    assert outcome.metrics["monitor"]["steps"] == c1.PROXY_WINDOW
