"""Loshchilov & Hutter's figure 2 in small: final validation loss over a learning-rate x weight-decay grid.

Every cell of a panel, for every seed, is its own MLP (64-hidden-10, ReLU) on
300 training digits; all of them train at once as one batched network, so a
panel costs about one run of a network as wide as all its cells together.
Each (lr, wd) cell is one param group holding that cell's copies for every
seed; a seed fixes the init and the batches, so cells of a seed are paired.

Separability is measured by a number: for each lr the wd with the lowest mean
validation loss, and the slope of log10(best wd) against log10(lr). A slope
near 0 is a separable basin (the best wd does not move with the lr), near -1
a diagonal. Cells within two standard errors of a row's best are ties, so the
slope comes with a range over every choice among the ties.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

import adamlab

from ...framework import digits

PANELS = ("adam_l2", "adamw")
INPUTS, CLASSES = 64, 10


@dataclass(frozen=True)
class PanelJob:
    """Some rows (lrs) of one panel, for every seed; ``panel`` is "adam_l2" or "adamw" (the paper's decay)."""

    panel: str
    lrs: tuple[float, ...]
    wds: tuple[float, ...]
    seeds: tuple[int, ...]
    steps: int
    hidden: int
    batch: int
    train_size: int


class MLPStack:
    """``copies`` independent MLPs as stacked tensors: W1 (copies, 64, hidden), b1, W2, b2."""

    def __init__(self, seeds_of_copies: list[int], hidden: int):
        shapes = ((INPUTS, hidden), (1, hidden), (hidden, CLASSES), (1, CLASSES))
        self.tensors = [torch.empty(len(seeds_of_copies), *s) for s in shapes]
        with torch.no_grad():
            for i, seed in enumerate(seeds_of_copies):
                torch.manual_seed(seed)  # the same init for every cell of a seed
                first, second = torch.nn.Linear(INPUTS, hidden), torch.nn.Linear(hidden, CLASSES)
                for t, value in zip(self.tensors, (first.weight.T, first.bias, second.weight.T, second.bias)):
                    t[i] = value.reshape(t.shape[1:])
        for t in self.tensors:
            t.requires_grad_()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """x: (copies, batch, 64) -> logits (copies, batch, 10)."""
        w1, b1, w2, b2 = self.tensors
        return torch.baddbmm(b2, torch.relu(torch.baddbmm(b1, x, w1)), w2)


def train_panel(job: PanelJob) -> dict:
    """Final validation loss and accuracy of every cell, as nested lists indexed [seed][lr][wd].

    Each (lr, wd) cell is one param group holding views of its copies (one per
    seed) into the stacked tensors; weight decay applies to every parameter.
    AdamW uses the paper's lambda: theta *= 1 - (lr_t / lr_0) lambda.
    """
    x, y = digits.load(images=False)
    parts = digits.stratified_parts(y, {"train": job.train_size, "val": -1})
    xt, yt, xv, yv = x[parts["train"]], y[parts["train"]], x[parts["val"]], y[parts["val"]]
    cells = [(s, i, j) for s in range(len(job.seeds)) for i in range(len(job.lrs)) for j in range(len(job.wds))]
    net = MLPStack([job.seeds[s] for s, _, _ in cells], job.hidden)
    members = [[c for c, (_, ci, cj) in enumerate(cells) if (ci, cj) == (i, j)]
               for i in range(len(job.lrs)) for j in range(len(job.wds))]
    groups = [{"params": [t.detach()[c] for c in copies for t in net.tensors], "lr": job.lrs[i // len(job.wds)],
               "weight_decay": job.wds[i % len(job.wds)]} for i, copies in enumerate(members)]
    opt = adamlab.AdamW(groups, decay_scale="schedule") if job.panel == "adamw" else adamlab.Adam(groups)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, adamlab.schedules.cosine_decay(job.steps))
    gens = [torch.Generator().manual_seed(seed) for seed in job.seeds]
    seed_of_copy = torch.tensor([s for s, _, _ in cells])
    for _ in range(job.steps):
        rows = torch.stack([torch.randint(0, len(yt), (job.batch,), generator=g) for g in gens])[seed_of_copy]
        logits = net(xt[rows])
        # summed over copies, each copy's gradient is that of its own batch-mean loss
        loss = F.cross_entropy(logits.reshape(-1, CLASSES), yt[rows].reshape(-1), reduction="sum") / job.batch
        for t in net.tensors:
            t.grad = None
        loss.backward()
        for group, copies in zip(groups, members):
            for view, grad in zip(group["params"], (t.grad[c] for c in copies for t in net.tensors)):
                view.grad = grad
        opt.step()
        sched.step()
    with torch.no_grad():
        logits = net(xv.expand(len(cells), -1, -1))
        losses = F.cross_entropy(logits.transpose(1, 2), yv.expand(len(cells), -1), reduction="none").mean(dim=1)
        accuracy = (logits.argmax(dim=-1) == yv).double().mean(dim=1)
    shape = (len(job.seeds), len(job.lrs), len(job.wds))
    return {"loss": losses.reshape(shape).tolist(), "accuracy": accuracy.reshape(shape).tolist()}


# ---------------------------------------------------------------- separability

MIN_ROWS = 3  # a slope needs at least three learning rates whose best wd the grid pins down
MAX_TIE_SPAN = 1.0  # decades of wd a row's ties may span and still pin its best wd


def ties(loss: np.ndarray) -> tuple[np.ndarray, list[list[int]]]:
    """Per lr, the index of the best wd and of every wd tied with it.

    ``loss`` is (seeds, lrs, wds). A cell ties with its row's best when their
    means differ by at most two standard errors of the difference (from the
    two cells' seed spreads). With one seed there is no spread and nothing ties.
    """
    mean, seeds = loss.mean(axis=0), loss.shape[0]
    var = loss.var(axis=0, ddof=1) / seeds if seeds > 1 else np.zeros_like(mean)
    best = mean.argmin(axis=1)
    tied = [[j for j in range(mean.shape[1]) if mean[i, j] - mean[i, b] <= 2 * math.sqrt(var[i, j] + var[i, b])]
            for i, b in enumerate(best)]
    return best, tied


def slope(xs, ys) -> float:
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    dx = xs - xs.mean()
    return float((dx * (ys - ys.mean())).sum() / (dx * dx).sum())


def slope_range(xs, low_ys, high_ys) -> tuple[float, float]:
    """The least and greatest least-squares slope when each y may lie anywhere in [low_y, high_y].

    The slope is linear in each y with weight (x - mean x), so each extreme
    takes every y at one end of its interval.
    """
    xs = np.asarray(xs, float)
    w = xs - xs.mean()
    w = w / (w * w).sum()
    lo = sum(wi * (hi if wi < 0 else low) for wi, low, hi in zip(w, low_ys, high_ys))
    hi = sum(wi * (hi if wi > 0 else low) for wi, low, hi in zip(w, low_ys, high_ys))
    return float(lo), float(hi)


def abs_range(lo: float, hi: float) -> tuple[float, float]:
    """The range of |s| for s in [lo, hi]."""
    if lo >= 0:
        return lo, hi
    if hi <= 0:
        return -hi, -lo
    return 0.0, max(-lo, hi)


def separability(loss, lrs, wds) -> dict:
    """The best wd per lr, its slope against lr (point value and tie range), and the per-cell seed spread.

    Only rows that pin their best wd enter the slope: their ties stay inside
    the wd grid and span at most MAX_TIE_SPAN decades. Where a tie reaches an
    edge the best wd could lie beyond the grid; where the ties spread wider the
    loss is flat in wd (decay barely matters at that lr). Either way the row
    says little about where the optimum is. Fewer than MIN_ROWS pinned rows
    leave the slope undetermined (range -inf to inf).
    """
    loss = np.asarray(loss, float)
    best, tied = ties(loss)
    log_lrs, log_wds = np.log10(lrs), np.log10(wds)
    inside = [i for i, t in enumerate(tied) if min(t) > 0 and max(t) < len(wds) - 1
              and log_wds[max(t)] - log_wds[min(t)] <= MAX_TIE_SPAN + 1e-9]
    if len(inside) >= MIN_ROWS:
        xs = log_lrs[inside]
        point = slope(xs, log_wds[best[inside]])
        lo, hi = slope_range(xs, [log_wds[min(tied[i])] for i in inside], [log_wds[max(tied[i])] for i in inside])
    else:
        point, lo, hi = math.nan, -math.inf, math.inf
    return {
        "mean_loss": loss.mean(axis=0).tolist(),
        "seed_sd": (loss.std(axis=0, ddof=1) if loss.shape[0] > 1 else np.zeros(loss.shape[1:])).tolist(),
        "best_wd": [wds[b] for b in best],
        "tied_wds": [[wds[j] for j in t] for t in tied],
        "rows_in_slope": [lrs[i] for i in inside],
        "slope": point,
        "slope_range": [lo, hi],
    }
