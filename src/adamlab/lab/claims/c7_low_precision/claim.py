"""C7 as a claim of the lab's current framework (:mod:`adamlab.lab.core`): run, figure, tables, verdict."""

from __future__ import annotations

from ...core import Claim, Context, Outcome
from . import experiment, report, verdict


def run(ctx: Context) -> Outcome:
    settings = experiment.QUICK if ctx.quick else experiment.FULL
    metrics = experiment.run(settings, ctx.seed, ctx.progress)
    figure = report.figure(metrics, ctx.figure_path("c7_low_precision.png"))
    return Outcome(metrics, [figure], report.tables(metrics), notes=report.notes(metrics, ctx.quick))


CLAIM = Claim(
    id="C7",
    title="Low-precision optimizer state trains as well as fp32 state; bf16 params need stochastic or Kahan updates",
    citation="Dettmers et al. 2022 (8-bit optimizers, ICLR); Zamirai et al. 2021 (bf16 training)",
    statement=(
        "Adam's moments can be kept in bf16, or in 8 bits per value with one scale per block of 256 values, and "
        "training reaches the same loss as with fp32 moments, in a quarter of the memory. bf16 weights are another "
        "matter: an update smaller than half a bf16 step rounds away, so training with small updates stalls unless "
        "the update is rounded stochastically or its remainder kept in a compensation buffer."
    ),
    setup=report.setup(experiment.FULL),
    criterion=(
        "Per task: a way reproduces when its mean final validation loss is within max(one seed std, 1%) of fp32 "
        "state's; bf16 state, 8-bit state, and bf16 params with stochastic or Kahan updates must reproduce, and "
        "bf16 params rounded to nearest must fall behind by more than that. One step from the same state: the "
        "8-bit moments' median relative error per block below 2% (first) and 1% (second)."
    ),
    run=run,
    judge=verdict.judge,
)
