"""C6 (half precision): the run against IEEE constants and closed forms, and the verdict's thresholds."""

from __future__ import annotations

import math

import pytest
import torch
from labcheck import assert_well_formed, part_verdicts, quick_outcome

from adamlab.lab.claims.c6_half_precision import claim as c6

LABEL_OURS, LABEL_REF = "adamlab.Adam, fp16, eps 1e-8", "torch.optim.Adam, fp32, eps 1e-8 (reference)"


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return quick_outcome(c6.CLAIM, tmp_path_factory)


def test_quick_run_reproduces(outcome):
    assert_well_formed(outcome, finite=False)  # torch's fp16 step is -inf: that is the finding
    m = outcome.metrics
    assert m["adamlab_fp16_finite"] and math.isfinite(m["adamlab_fp16_max_rel_err"])
    assert part_verdicts(c6.CLAIM, m) == {"fp16_step": "reproduced"}


def test_format_limits_are_the_ieee_values():
    """binary16: 5 exponent bits, 10 fraction bits; bfloat16: 8 and 7."""
    rows = {r[0]: r[1:] for r in c6.format_limits()}
    assert rows["fp16"] == [(2 - 2**-10) * 2**15, 2**-14, 2**-24, 2**-10]
    assert rows["bf16"] == [(2 - 2**-7) * 2**127, 2**-126, 2**-133, 2**-7]


def test_what_fp16_does_to_adams_small_numbers(outcome):
    r = outcome.metrics["rounding"]
    assert r["fp16"]["eps_1e-8"] == 0.0 and r["fp16"]["grad_1e-4_squared"] == 0.0  # both below 2^-24 / 2
    assert r["bf16"]["beta2_0.999"] == 1.0  # 0.999 is within half an ulp (2^-9) of 1


def test_adamlab_fp16_step_is_the_fp32_step_rounded(outcome):
    ours = outcome.metrics["first_step"][LABEL_OURS]
    ref = outcome.metrics["first_step"][LABEL_REF]
    for g in ours:
        ulp = 2.0 ** (math.floor(math.log2(abs(ref[g]))) - 10)
        assert abs(ours[g] - ref[g]) <= ulp / 2 + 1e-12


def test_eps_workaround_overshoots_tenfold(outcome):
    """fp16 v underflows to 0 for g = 1e-3, so the step is lr * g / eps = 10 lr with eps = 1e-4."""
    assert outcome.metrics["eps_1e-4_workaround_max_ratio"] == pytest.approx(1e-3 / 1e-4, rel=0.01)


def test_ema_stalls(outcome):
    m = outcome.metrics
    assert m["ema_end"]["bf16"] == 0.5  # claims.md: stalls at exactly 0.5
    assert m["ema_end"]["fp16"] == pytest.approx(0.732, abs=1e-3)
    assert m["ema_at_1000"]["fp32"] == pytest.approx(1 - 0.999**1000, abs=1e-5)
    assert m["ema_end"]["fp32"] == pytest.approx(1 - 0.999**c6.EMA_STEPS, abs=1e-5)


def test_bf16_stall_is_where_the_increment_drops_below_half_an_ulp(outcome):
    """bf16 keeps 8 significant bits: an ulp is 2^-9 just below 0.5 and 2^-8 from 0.5 on (IEEE-style binades)."""
    below, at = outcome.metrics["bf16_half_ulp_below_and_at_stall"]
    assert (below, at) == (2.0**-10, 2.0**-9)
    assert below < 1 - c6.BETA2 < at  # so each + 0.001 rounds up by an ulp below 0.5 and away at 0.5


def test_ema_uses_torch_state_dtype():
    assert c6.ema_curve(torch.float32, 3) == pytest.approx([1 - 0.999**t for t in (1, 2, 3)], rel=1e-6)


def passing() -> dict:
    return {"naive_fp16_small_grad_finite": False, "adamlab_fp16_finite": True, "adamlab_fp16_max_rel_err": 0.01}


@pytest.mark.parametrize(
    "key, failing",
    [("naive_fp16_small_grad_finite", True), ("adamlab_fp16_finite", False), ("adamlab_fp16_max_rel_err", 0.0101)],
)
def test_judge_flips_at_each_threshold(key, failing):
    assert c6.judge(passing())
    assert not c6.judge({**passing(), key: failing})


# ---------------------------------------------------------------- adamlab.Monitor on half-precision params

from adamlab.lab.claims.c6_half_precision import monitoring as c6_monitoring  # noqa: E402


def direct_first_step(seed: int, coords: int) -> dict:
    """The three fractions after Adam's first step, from closed forms: with bias correction, mhat = g and
    sqrt(vhat) = |g| at t = 1, so the fp32 update is -lr g / (|g| + eps) (Kingma & Ba, Algorithm 1)."""
    theta, scale, gen = c6_monitoring.problem(seed, coords)
    g = torch.randn(coords, generator=gen) * scale
    out = {}
    for name, dtype in c6_monitoring.FORMATS.items():
        p, gf = theta.to(dtype), g.to(dtype).float()
        update = -c6_monitoring.LR * gf / (gf.abs() + c6_monitoring.EPS)
        lost = (update != 0) & ((p.float() + update).to(dtype) == p)  # rounding to the format drops it
        out[name] = {"v_zero": (gf == 0).float().mean().item(),
                     "eps_dominated": (gf.abs() < c6_monitoring.EPS).float().mean().item(),
                     "lost_to_rounding": lost.float().mean().item()}
    return out


def test_monitor_fractions_are_the_closed_form_first_step():
    history = c6_monitoring.monitored_run(seed=3, steps=1, coords=1024)
    m = c6_monitoring.metrics(history)
    direct = direct_first_step(seed=3, coords=1024)
    for name in c6_monitoring.FORMATS:
        for stat in ("v_zero", "eps_dominated"):
            assert m[stat][name]["step1"] == pytest.approx(direct[name][stat], abs=1 / 1024), (name, stat)
        if name != "fp32":
            assert m["lost_to_rounding"][name]["step1"] == pytest.approx(direct[name]["lost_to_rounding"],
                                                                         abs=1 / 1024), name
    assert "fp32" not in m["lost_to_rounding"]  # an fp32 param loses nothing the monitor could count
    # fp16 flushes gradients below 2^-25 to 0; bf16 and fp32 keep them
    assert m["v_zero"]["fp16"]["step1"] > 0.1 and m["v_zero"]["bf16"]["step1"] == 0 == m["v_zero"]["fp32"]["step1"]


def test_monitor_on_the_page(outcome):
    m = outcome.metrics["monitor"]
    assert m["steps"] == c6_monitoring.STEPS
    # bf16's ulp is 8x fp16's: at lr 1e-3 on N(0,1) params it drops most updates, fp16 few at step 1
    assert m["lost_to_rounding"]["bf16"]["step1"] > 0.5 > m["lost_to_rounding"]["fp16"]["step1"]
    assert "c6_monitor.png" in [f.path.name for f in outcome.figures]
    assert any("adamlab.Monitor" in t["caption"] for t in outcome.tables)
