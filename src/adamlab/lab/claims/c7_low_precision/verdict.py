"""C7's verdicts, from the metrics alone: one part per task, and the one-step check.

Per task (claims.md): a way of keeping the numbers reproduces fp32 state when
its mean final validation loss is within max(one seed std of fp32 state, 1%
of its mean) of fp32 state's. The part holds when bf16 state, 8-bit state and
bf16 params with stochastic or Kahan updates all reproduce, and bf16 params
rounded to nearest fall behind by more than that (the stall). Runs with fewer
than three seeds, or too short to leave the warmup, decide nothing.

One-step check: from the same state, the 8-bit step's new moments are within
the codes' resolution of the fp32 step's: median relative error per block
below 2% for the first moment and 1% for the second.
"""

from __future__ import annotations

from .experiment import BASELINE

REPRODUCING = ("bf16 state", "8-bit state", "bf16 params, stochastic", "bf16 params, Kahan")
STALLING = "bf16 params, nearest"
MIN_SEEDS, MIN_STEPS = 3, 200
STEP_MEDIAN_MAX = {"exp_avg": 0.02, "exp_avg_sq": 0.01}


def task(metrics: dict, key: str) -> bool | None:
    """The part of one task (``key``: "lm" or "digits")."""
    summary = metrics[key]
    steps = metrics["settings"]["lm_steps" if key == "lm" else "digits_steps"]
    if summary["seeds"] < MIN_SEEDS or steps < MIN_STEPS:
        return None
    tol, gaps = summary["tolerance"], summary["gaps"]
    return all(abs(gaps[c]) <= tol for c in REPRODUCING) and gaps[STALLING] > tol


def one_step(metrics: dict) -> bool:
    check = metrics["one_step"]
    return all(check[f"step_{name}"]["median"] < limit for name, limit in STEP_MEDIAN_MAX.items())


def judge(metrics: dict) -> bool | None:
    """The claim: True (reproduced), False, or None where a part could not decide."""
    parts = [task(metrics, "lm"), task(metrics, "digits"), one_step(metrics)]
    if any(p is False for p in parts):
        return False
    return None if any(p is None for p in parts) else True


def headline(metrics: dict, key: str) -> str:
    """One sentence of what a task measured."""
    s = metrics[key]
    gaps = s["gaps"]
    pct = {c: 100 * g / s["baseline_mean"] for c, g in gaps.items()}
    return (f"fp32 state {s['baseline_mean']:.3f} (tolerance {s['tolerance']:.3f}); gaps: bf16 state "
            f"{pct['bf16 state']:+.2f}%, 8-bit {pct['8-bit state']:+.2f}%, bf16 params nearest "
            f"{pct[STALLING]:+.2f}%, stochastic {pct['bf16 params, stochastic']:+.2f}%, Kahan "
            f"{pct['bf16 params, Kahan']:+.2f}%")


__all__ = ["BASELINE", "headline", "judge", "one_step", "task"]
