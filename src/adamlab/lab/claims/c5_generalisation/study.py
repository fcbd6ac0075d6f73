"""The CNN comparison on digits, with Wilson et al.'s recipe: tune each optimizer, then compare on paired seeds.

Tuning: for each optimizer a log grid of learning rates (extended until its
best lies inside) times a few weight decays, scored by mean validation
accuracy over the tuning seeds; then, at the chosen lr, the weight decays are
extended the same way until the best lies inside. Testing: the tuned settings on fresh seeds,
paired (same init, batches and shifts for every optimizer of a seed), scored
on the test split, which tuning never reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from ...framework.sweep import bracket
from ...framework.verdicts import UNDECIDED
from ...framework.workers import Workers
from .cnn import KINDS, CNNRun, train_cnn

TUNE_SEED_OFFSET = 1000  # tuning seeds never coincide with test seeds
EQUIVALENCE_MARGIN = 0.005  # a gap whose whole 95% interval lies within +-0.5 points is "no gap"


@dataclass(frozen=True)
class Grid:
    """One optimizer's tuning grid: learning rates (log-spaced, extended as needed) and weight decays."""

    kind: str
    lrs: tuple[float, ...]
    wds: tuple[float, ...]


@dataclass(frozen=True)
class Recipe:
    grids: tuple[Grid, ...]
    epochs: int
    batch: int
    shift: int
    train_size: int
    val_size: int
    tune_seeds: int
    test_seeds: int
    max_extensions: int

    def run(self, kind: str, lr: float, wd: float, seed: int) -> CNNRun:
        return CNNRun(kind, lr, wd, seed, self.epochs, self.batch, self.shift, self.train_size, self.val_size)


def diverged(result: dict) -> bool:
    """A run that blew up (non-finite loss) or ended no better than chance on its own training images."""
    return not result["finite"] or result["train"] < 0.2


def tune(recipe: Recipe, seed: int, workers: Workers, progress) -> dict:
    """Bracketed lr sweeps (each lr scored by its best wd), then a bracketed wd sweep at the chosen lr.

    Returns each optimizer's choice and the mean validation accuracy of every cell run ([lr][wd], None where a
    cell was not run: extra wds are tried at the chosen lr only).
    """
    tune_seeds = [seed + TUNE_SEED_OFFSET + i for i in range(recipe.tune_seeds)]
    grids = {g.kind: g for g in recipe.grids}
    results: dict[CNNRun, dict] = {}

    def ensure(cells) -> None:
        runs = [recipe.run(kind, lr, wd, s) for kind, lr, wd in cells for s in tune_seeds]
        runs = [r for r in dict.fromkeys(runs) if r not in results]
        if runs:
            advance = progress(f"C5 CNN tuning, {len(runs)} runs", len(runs))
            results.update(zip(runs, workers.map(train_cnn, runs, advance)))

    def mean_val(kind, lr, wd) -> float:
        return float(np.mean([results[recipe.run(kind, lr, wd, s)]["val"] for s in tune_seeds]))

    def by_lr(ask):
        ensure([(kind, lr, wd) for kind, lrs in ask.items() for lr in lrs for wd in grids[kind].wds])
        return {kind: {lr: max(mean_val(kind, lr, wd) for wd in grids[kind].wds) for lr in lrs}
                for kind, lrs in ask.items()}

    lr_sweeps = bracket({kind: list(g.lrs) for kind, g in grids.items()}, by_lr, recipe.max_extensions)
    chosen_lr = {kind: sweep.best for kind, sweep in lr_sweeps.items()}

    def by_wd(ask):
        ensure([(kind, chosen_lr[kind], wd) for kind, wds in ask.items() for wd in wds])
        return {kind: {wd: mean_val(kind, chosen_lr[kind], wd) for wd in wds} for kind, wds in ask.items()}

    wd_sweeps = bracket({kind: list(g.wds) for kind, g in grids.items()}, by_wd, recipe.max_extensions)
    out = {}
    for kind in grids:
        lrs, wds = lr_sweeps[kind].values, wd_sweeps[kind].values
        lr, wd = chosen_lr[kind], wd_sweeps[kind].best

        def cell(v, w, kind=kind):
            runs = [results.get(recipe.run(kind, v, w, s)) for s in tune_seeds]
            return runs if all(runs) else None

        out[kind] = {
            "lrs": lrs, "wds": wds, "extended_lrs": lr_sweeps[kind].extended, "extended_wds": wd_sweeps[kind].extended,
            "interior": lr_sweeps[kind].interior, "wd_interior": wd_sweeps[kind].interior,
            "chosen_lr": lr, "chosen_wd": wd, "val_best": mean_val(kind, lr, wd),
            # [lr][wd]: mean validation accuracy, and how many tuning seeds diverged (None: not run)
            "val": [[None if cell(v, w) is None else mean_val(kind, v, w) for w in wds] for v in lrs],
            "diverged": [[None if cell(v, w) is None else sum(map(diverged, cell(v, w))) for w in wds] for v in lrs],
        }
    return out


def paired_gap(sgd: list[float], other: list[float], test_size: int) -> dict:
    """Mean and 95% t-interval of the per-seed differences SGD - other, and what they decide.

    ``decision``: "sgd" (SGD better: the interval excludes 0 and the gap
    exceeds one test image), "other" (the other way), "equivalent" (the whole
    interval within +-EQUIVALENCE_MARGIN), or "undecided"; "single seed"
    when there is no spread.
    """
    diffs = np.asarray(sgd) - np.asarray(other)
    gap = float(diffs.mean())
    out = {"gap": gap, "test_size": test_size, "seeds": len(diffs)}
    if len(diffs) < 2:
        return {**out, "sd": 0.0, "ci95": None, "decision": "single seed"}
    sd = float(diffs.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(diffs) - 1)) * sd / np.sqrt(len(diffs))
    lo, hi = gap - half, gap + half
    if lo > 0 and gap > 1 / test_size:
        decision = "sgd"
    elif hi < 0 and -gap > 1 / test_size:
        decision = "other"
    elif -EQUIVALENCE_MARGIN <= lo and hi <= EQUIVALENCE_MARGIN:
        decision = "equivalent"
    else:
        decision = "undecided"
    return {**out, "sd": sd, "ci95": [lo, hi], "decision": decision}


def verdict(decision: str):
    """The CNN part's verdict: the claim is that SGD generalises better."""
    return {"sgd": True, "other": False, "equivalent": False, "undecided": UNDECIDED, "single seed": None}[decision]


def cnn_study(recipe: Recipe, seed: int, progress, workers: int) -> dict:
    with Workers(workers) as pool:
        tuned = tune(recipe, seed, pool, progress)
        seeds = [seed + i for i in range(recipe.test_seeds)]
        runs = [recipe.run(k, tuned[k]["chosen_lr"], tuned[k]["chosen_wd"], s) for k in KINDS for s in seeds]
        advance = progress(f"C5 CNN test, {len(runs)} runs on {recipe.test_seeds} paired seeds", len(runs))
        final = dict(zip(runs, pool.map(train_cnn, runs, advance)))
    per_kind = {k: [final[recipe.run(k, tuned[k]["chosen_lr"], tuned[k]["chosen_wd"], s)] for s in seeds]
                for k in KINDS}
    test_size = 1797 - recipe.train_size - recipe.val_size
    # the adaptive contender is the Adam variant that did better on validation: chosen before the test is read
    adaptive = max(("adam_l2", "adamw"), key=lambda k: tuned[k]["val_best"])
    test = {k: [r["test"] for r in v] for k, v in per_kind.items()}
    return {
        "tuning": tuned,
        "seeds": seeds,
        "test_size": test_size,
        "test_accuracy": test,
        "train_accuracy": {k: [r["train"] for r in v] for k, v in per_kind.items()},
        "adaptive": adaptive,
        "gap": paired_gap(test["sgd"], test[adaptive], test_size),
        "gap_other": paired_gap(test["sgd"], test["adamw" if adaptive == "adam_l2" else "adam_l2"], test_size),
    }
