"""C6 (half precision): the run against IEEE constants and closed forms, and the verdict's thresholds."""

from __future__ import annotations

import math

import pytest
import torch
from labcheck import assert_well_formed, part_verdicts

from adamlab.lab.claims.c6_half_precision import claim as c6
from adamlab.lab.framework.claim import Context

LABEL_OURS, LABEL_REF = "adamlab.Adam, fp16, eps 1e-8", "torch.optim.Adam, fp32, eps 1e-8 (reference)"


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return c6.CLAIM.run(Context(tmp_path_factory.mktemp("c6"), quick=True, seed=0))


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
