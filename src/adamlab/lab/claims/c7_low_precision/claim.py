"""C7: low-precision optimizer state trains as well as fp32 state; bf16 params need stochastic or Kahan updates.

Three parts, judged apart: the transformer, the digits MLP, and the one-step
check. Per task (claims.md): a way of keeping the numbers reproduces fp32
state when its mean final validation loss is within max(one seed sd of fp32
state, 1% of its mean) of fp32 state's. A task's part holds when bf16 state,
8-bit state and bf16 params with stochastic or Kahan updates all reproduce,
and bf16 params rounded to nearest fall behind by more than that (the stall).
Runs with fewer than three seeds, or too short to leave the warmup, decide
nothing. One-step check: the 8-bit step's new moments are within the codes'
resolution of the fp32 step's.
"""

from __future__ import annotations

from ...framework.claim import Claim, Context, Outcome, Part
from ...framework.workers import Workers, one_thread
from . import one_step, page
from .page import STALLING
from .training import Settings, jobs, summarise, train

FULL = Settings(lm_steps=400, lm_lr=1e-3, lm_seeds=3, lm_batch=8, lm_context=32, lm_width=64, val_windows=256,
                digits_steps=400, digits_lr=1e-3, digits_seeds=5, digits_batch=32, digits_hidden=128,
                digits_train=1000, one_step_after=100, workers=2)
QUICK = Settings(lm_steps=30, lm_lr=1e-3, lm_seeds=1, lm_batch=8, lm_context=32, lm_width=64, val_windows=64,
                 digits_steps=40, digits_lr=1e-3, digits_seeds=1, digits_batch=32, digits_hidden=128,
                 digits_train=1000, one_step_after=10, workers=1)

REPRODUCING = ("bf16 state", "8-bit state", "bf16 params, stochastic", "bf16 params, Kahan")
MIN_SEEDS, MIN_STEPS = 3, 200
STEP_MEDIAN_MAX = {"exp_avg": 0.02, "exp_avg_sq": 0.01}
STEPS_KEY = {"lm": "lm_steps", "digits": "digits_steps"}


def run(ctx: Context) -> Outcome:
    settings = ctx.pick(FULL, QUICK)
    todo = jobs(settings, ctx.seed)
    advance = ctx.progress(f"C7 low-precision state, {len(todo)} runs", len(todo))
    with Workers(settings.workers) as workers:
        results = workers.map(train, todo, advance)
    advance = ctx.progress("C7 one 8-bit step against one fp32 step", 1)
    with one_thread():
        check = one_step.check(settings, ctx.seed)
    advance()
    metrics = {"settings": {k: getattr(settings, k) for k in STEPS_KEY.values()}, "seed": ctx.seed,
               "lm": summarise(results, "lm"), "digits": summarise(results, "digits"), "one_step": check}
    return Outcome(metrics, [page.figure(ctx, metrics)], page.tables(metrics), page.notes(metrics))


# ---------------------------------------------------------------- the verdict


def judge_task(m: dict, key: str) -> bool | None:
    """A task's part (``key``: "lm" or "digits")."""
    s = m[key]
    if s["seeds"] < MIN_SEEDS or m["settings"][STEPS_KEY[key]] < MIN_STEPS:
        return None
    tol, gaps = s["tolerance"], s["gaps"]
    return all(abs(gaps[w]) <= tol for w in REPRODUCING) and gaps[STALLING] > tol


def judge_one_step(m: dict) -> bool:
    c = m["one_step"]
    return all(c[f"step_{name}"]["median"] < limit for name, limit in STEP_MEDIAN_MAX.items())


def headline_task(m: dict, key: str) -> str:
    s = m[key]
    pct = {w: 100 * g / s["baseline_mean"] for w, g in s["gaps"].items()}
    inside = [w for w in REPRODUCING if abs(s["gaps"][w]) <= s["tolerance"]]
    stalled = s["gaps"][STALLING] > s["tolerance"]
    return (f"fp32 state ends at {s['baseline_mean']:.4f} +- {s['baseline_std']:.4f} over {s['seeds']} seeds "
            f"(tolerance {s['tolerance']:.4f}); bf16 state {pct['bf16 state']:+.2f}%, 8-bit state "
            f"{pct['8-bit state']:+.2f}%, bf16 params stochastic {pct['bf16 params, stochastic']:+.2f}%, Kahan "
            f"{pct['bf16 params, Kahan']:+.2f}% ({len(inside)} of {len(REPRODUCING)} within it); bf16 params "
            f"rounded to nearest {pct[STALLING]:+.2f}%, {'behind: it stalls' if stalled else 'not behind'}.")


def headline_one_step(m: dict) -> str:
    c = {k: 100 * v["median"] for k, v in m["one_step"].items() if isinstance(v, dict) and "median" in v}
    return (f"Median relative error per block after one 8-bit step: first moment {c['step_exp_avg']:.2f}%, second "
            f"moment {c['step_exp_avg_sq']:.2f}%; the next update through adamlab's codes {c['ours_update']:.2f}% "
            f"(dynamic map {c['map_update']:.2f}%).")


TASK_RULE = (
    "Every one of bf16 state, 8-bit state and bf16 params with stochastic or Kahan updates ends with a mean final "
    "validation loss within max(one seed sd of fp32 state, 1% of its mean) of fp32 state's, and bf16 params "
    f"rounded to nearest end more than that above it; needs {MIN_SEEDS}+ paired seeds and {MIN_STEPS}+ steps."
)
PARTS = (
    Part("lm", "Transformer language model (C3's)", TASK_RULE, lambda m: judge_task(m, "lm"),
         lambda m: headline_task(m, "lm")),
    Part("digits", "MLP on digits", TASK_RULE, lambda m: judge_task(m, "digits"),
         lambda m: headline_task(m, "digits")),
    Part("one_step", "One 8-bit step against one fp32 step",
         f"From the same state, the 8-bit step's moments have a median relative error per block of 256 below "
         f"{STEP_MEDIAN_MAX['exp_avg']:.0%} (first moment) and {STEP_MEDIAN_MAX['exp_avg_sq']:.0%} (second) "
         "against torch.optim.AdamW's fp32 step.", judge_one_step, headline_one_step),
)

F = FULL
CLAIM = Claim(
    id="C7",
    title="Low-precision optimizer state trains as well as fp32 state; bf16 params need stochastic or Kahan updates",
    citation="Dettmers, Lewis, Shleifer & Zettlemoyer 2022, 8-bit Optimizers via Block-wise Quantization (ICLR); "
             "Zamirai, Zhang, Aberger & De Sa 2021, Revisiting BFloat16 Training",
    statement=(
        "Adam's moments can be kept in bf16, or in 8 bits per value with one scale per block of 256 values, and "
        "training reaches the same loss as with fp32 moments, in a half or a quarter of the memory. bf16 weights "
        "are another matter: an update smaller than half a bf16 step rounds away, so training with small updates "
        "stalls unless the update is rounded stochastically or its remainder kept in a compensation buffer."
    ),
    setup=(
        "Six ways, all adamlab.AdamW (wd 0.01): fp32 state, bf16 state and 8-bit state with fp32 params, and the "
        "whole model in bf16 with updates rounded to nearest, stochastically or with a Kahan buffer (fp32 state). "
        f"Transformer: C3's 2-layer pre-LN decoder (d_model {F.lm_width}, context {F.lm_context}) on the character "
        f"corpus, batch {F.lm_batch}, {F.lm_steps} steps, lr {F.lm_lr:g}, 10% linear warmup then cosine decay to "
        f"0, {F.lm_seeds} seeds; validation loss on {F.val_windows} fixed windows. MLP 64-{F.digits_hidden}-"
        f"{F.digits_hidden}-10 on scikit-learn's digits ({F.digits_train} stratified training images, the other "
        f"{1797 - F.digits_train} validate), batch {F.digits_batch}, {F.digits_steps} steps, lr {F.digits_lr:g}, "
        f"same schedule, {F.digits_seeds} seeds. Each seed fixes the initialisation and data order for all six "
        f"ways. One-step check: the transformer's fp32 state after {F.one_step_after} steps, on the 8-bit codes' "
        "levels, one 8-bit step against one torch.optim.AdamW step with the same gradient; and the new fp32 "
        "moments through adamlab's codes and through the paper's dynamic map."
    ),
    quick_setup=(f"{QUICK.lm_steps} transformer and {QUICK.digits_steps} MLP steps on one seed: too few to judge "
                 f"the tasks; the one-step check after {QUICK.one_step_after} steps is judged as in the full run."),
    parts=PARTS,
    run=run,
)
