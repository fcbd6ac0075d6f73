"""C7 (low-precision state): a small run end to end, the one-step check's oracles, and the verdict's thresholds."""

from __future__ import annotations

import copy

import pytest
import torch
from labcheck import assert_well_formed

from adamlab.lab.claims.c7_low_precision import claim, dynamic_map, experiment, verdict
from adamlab.lab.core import Context

TINY = experiment.smaller(experiment.QUICK, lm_steps=20, digits_steps=30, one_step_after=5)


@pytest.fixture(scope="module")
def metrics():
    return experiment.run(TINY, seed=0)


def test_every_way_runs_on_both_tasks_and_reports_its_memory(metrics):
    for key in ("lm", "digits"):
        configs = metrics[key]["configs"]
        assert list(configs) == list(experiment.CONFIGS)
        for v in configs.values():
            assert len(v["final_val_loss"]) == 1 and v["final_val_loss"][0] > 0
        assert configs["fp32 state"]["state_bytes_per_param"] == 8.0
        assert configs["bf16 state"]["state_bytes_per_param"] == 4.0
        assert 2.03 < configs["8-bit state"]["state_bytes_per_param"] < 4.0  # small tensors keep fp32 state
        assert configs["bf16 params, nearest"]["param_bytes_per_param"] == 2.0
        assert configs["bf16 params, Kahan"]["state_bytes_per_param"] == 8.0 + 2.0  # the compensation buffer
    assert metrics["lm"]["gaps"]["fp32 state"] == 0.0


def test_the_one_step_check_measures_the_codes_against_torch(metrics):
    check = metrics["one_step"]
    # the 8-bit step's moments are its fp32 values through the codes: the two rows agree to rounding
    for name in ("exp_avg", "exp_avg_sq"):
        assert check[f"step_{name}"]["median"] == pytest.approx(check[f"ours_{name}"]["median"], rel=1e-3)
    assert check["step_update"]["max"] < 1e-5  # the step itself used the same (unrounded) moments
    assert verdict.one_step(metrics)
    assert check["ours_update"]["median"] < check["map_update"]["median"]


def test_the_dynamic_map_has_256_levels_with_zero_and_one():
    for signed in (True, False):
        table = dynamic_map.levels(signed)
        assert table.numel() == 256 and len(set(table.tolist())) == 256
        assert 0.0 in table.tolist() and table.max() == 1.0
    assert dynamic_map.levels(True).min() < 0 and dynamic_map.levels(False).min() == 0
    x = torch.randn(1024, dtype=torch.float64)
    q = dynamic_map.quantize(x, True)
    absmax = x.view(-1, 256).abs().amax(1).repeat_interleave(256)
    table = dynamic_map.levels(True)
    nearest = table[(x / absmax).unsqueeze(1).sub(table).abs().argmin(1)] * absmax  # the nearest level, by search
    assert torch.allclose(q, nearest, rtol=1e-12, atol=0)


def test_a_quick_claim_run_is_well_formed_and_undecided(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "QUICK", TINY)
    outcome = claim.CLAIM.run(Context(tmp_path, quick=True, seed=0))
    assert_well_formed(outcome)
    assert claim.CLAIM.judge(outcome.metrics) is None  # one seed, 20 steps: too little to decide
    assert len(outcome.tables) == 3


# ---------------------------------------------------------------- the verdict flips where the criterion says


def decided(metrics, gaps: dict, tol: float = 0.01, key: str = "lm") -> dict:
    m = copy.deepcopy(metrics)
    m["settings"]["lm_steps"] = m["settings"]["digits_steps"] = 400
    for k in ("lm", "digits"):
        m[k]["seeds"] = 3
        m[k]["tolerance"] = tol
        m[k]["gaps"] = {c: 0.0 for c in experiment.CONFIGS} | {"bf16 params, nearest": 2 * tol}
    m[key]["gaps"].update(gaps)
    return m


def test_the_claim_holds_when_formats_reproduce_and_nearest_stalls(metrics):
    assert verdict.judge(decided(metrics, {})) is True


@pytest.mark.parametrize("key", ["lm", "digits"])
@pytest.mark.parametrize("way", ["bf16 state", "8-bit state", "bf16 params, stochastic", "bf16 params, Kahan"])
def test_a_way_outside_the_tolerance_does_not_reproduce(metrics, key, way):
    assert verdict.task(decided(metrics, {way: 0.0099}, key=key), key) is True
    assert verdict.task(decided(metrics, {way: 0.0101}, key=key), key) is False
    assert verdict.task(decided(metrics, {way: -0.0101}, key=key), key) is False
    assert verdict.judge(decided(metrics, {way: 0.0101}, key=key)) is False


def test_nearest_rounding_must_fall_behind(metrics):
    assert verdict.task(decided(metrics, {"bf16 params, nearest": 0.0099}), "lm") is False
    assert verdict.task(decided(metrics, {"bf16 params, nearest": 0.0101}), "lm") is True


def test_a_large_one_step_error_fails_the_check(metrics):
    m = decided(metrics, {})
    m["one_step"]["step_exp_avg"]["median"] = 0.021
    assert verdict.judge(m) is False


def test_too_few_seeds_decide_nothing(metrics):
    m = decided(metrics, {})
    m["digits"]["seeds"] = 2
    assert verdict.task(m, "digits") is None and verdict.judge(m) is None
