"""C4: Adam can converge to the worst point of a convex problem; AMSGrad does not.

Online linear losses f_t(x) = g_t x on F = [-1, 1], where a rare large gradient
(C) points one way and frequent small ones (-1) the other. With b2 small,
Adam's v forgets the large gradient within a step, so the many small steps win
and x drifts to +1, the worst point. AMSGrad keeps the largest v seen, so the
small gradients take small steps and x goes to -1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import adamlab

from ...framework import figures
from ...framework.claim import Claim, Context, Outcome, Part
from ...framework.workers import Workers

DTYPE = torch.float64
LR = 0.5  # a, in a_t = a / sqrt(t)
DET_C = 3.0
STOCH_C, STOCH_DELTA, STOCH_SEEDS = 10.0, 0.1, 3
LAST = 0.1  # "the end" is the last 10% of the steps
ADAM_MIN_X, AMSGRAD_MAX_X, AMSGRAD_MAX_REGRET, ASYMPTOTE_TOL = 0.99, -0.99, 0.02, 0.02


@dataclass(frozen=True)
class Settings:
    deterministic_steps: int
    stochastic_steps: int
    extras: bool  # the bias-corrected and torch-default Adam rows of the deterministic instance
    workers: int  # 1: in this process (sparing the workers' start-up)


FULL = Settings(deterministic_steps=30_000, stochastic_steps=300_000, extras=True, workers=2)
QUICK = Settings(deterministic_steps=3_000, stochastic_steps=10_000, extras=False, workers=1)


def paper_betas(c: float) -> tuple[float, float]:
    """Theorem 1's setting: no momentum, b2 = 1/(1+C^2)."""
    return (0.0, 1.0 / (1.0 + c * c))


def variants(c: float, extras: bool) -> dict[str, dict]:
    """Param-group options per variant: the paper's Adam (no eps, no correction) and AMSGrad."""
    paper = dict(betas=paper_betas(c), eps=0.0, bias_correction=False)
    out = {"Adam": dict(paper), "AMSGrad": dict(paper, amsgrad=True)}
    if extras:
        out["Adam, bias-corrected"] = dict(paper, bias_correction=True)
        out["Adam, torch defaults (0.9, 0.999), eps 1e-8"] = dict(betas=(0.9, 0.999), eps=1e-8)
    return out


def deterministic_grads(c: float, steps: int) -> torch.Tensor:
    """g_t = C when t mod 3 == 1, else -1 (t from 1), as a (steps, 1) column."""
    t = torch.arange(1, steps + 1)
    return torch.where(t % 3 == 1, c, -1.0).to(DTYPE)[:, None]


def stochastic_grads(c: float, delta: float, steps: int, seeds: list[int]) -> torch.Tensor:
    """g_t = C with probability (1+delta)/(C+1), else -1; one column per seed."""
    p = (1 + delta) / (c + 1)
    cols = []
    for seed in seeds:
        gen = torch.Generator().manual_seed(seed)
        cols.append(torch.where(torch.rand(steps, generator=gen, dtype=DTYPE) < p, c, -1.0))
    return torch.stack(cols, dim=1).to(DTYPE)


def play(grads: torch.Tensor, options: dict[str, dict], advance) -> dict[str, torch.Tensor]:
    """x_t (before step t) for each variant; every variant is a param group, columns are independent runs."""
    steps, n = grads.shape
    xs = {name: torch.zeros(n, dtype=DTYPE) for name in options}
    opt = adamlab.Adam([{"params": [x], **opts} for x, opts in zip(xs.values(), options.values())], lr=LR)
    history = {name: torch.empty(steps, n, dtype=DTYPE) for name in options}
    tick = max(1, steps // 100)
    for t in range(1, steps + 1):
        for group in opt.param_groups:
            group["lr"] = LR / t**0.5
        for name, x in xs.items():
            history[name][t - 1] = x
            x.grad = grads[t - 1]
        opt.step()
        for x in xs.values():
            x.clamp_(-1.0, 1.0)  # projection onto F = [-1, 1]
        if t % tick == 0:
            advance()
    return history


@dataclass(frozen=True)
class Play:
    """One call of :func:`play` for a worker process: the instance, its length and the variants to play."""

    stochastic: bool
    steps: int
    seeds: tuple[int, ...]  # the stochastic instance's columns
    names: tuple[str, ...]
    extras: bool

    def grads(self) -> torch.Tensor:
        if self.stochastic:
            return stochastic_grads(STOCH_C, STOCH_DELTA, self.steps, list(self.seeds))
        return deterministic_grads(DET_C, self.steps)


def play_job(job: Play) -> dict[str, torch.Tensor]:
    """The histories of ``job``'s variants (module level, so worker processes can take it).

    Param groups do not interact, so playing variants apart gives the same iterates, bit for bit, as playing
    them together; apart, the long stochastic runs share the cores.
    """
    options = variants(STOCH_C if job.stochastic else DET_C, job.extras)
    return play(job.grads(), {name: options[name] for name in job.names}, lambda: None)


def regret_over_t(grads: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """R_t / t, with R_t = sum_s f_s(x_s) - min over [-1, 1] of sum_s f_s(x) = sum g x + |sum g|."""
    t = torch.arange(1, len(grads) + 1, dtype=DTYPE)[:, None]
    return ((grads * x).cumsum(0) + grads.cumsum(0).abs()) / t


def summarise(grads, history) -> dict:
    tail = max(1, int(len(grads) * LAST))
    out = {}
    for name, x in history.items():
        r = regret_over_t(grads, x)
        out[name] = {
            "final_x": x[-1].tolist(),
            "mean_x_end": x[-tail:].mean(0).tolist(),
            "regret_over_T": r[-1].tolist(),
        }
    return out


# ------------------------------------------------------------------- figures

ORDER = ("Adam", "AMSGrad", "Adam, bias-corrected", "Adam, torch defaults (0.9, 0.999), eps 1e-8")


def thin(steps: int, points: int = 1500) -> np.ndarray:
    """Log-spaced step indices (0-based), so long runs plot quickly on a log axis."""
    return np.unique(np.geomspace(1, steps, points).astype(int)) - 1


def plot_runs(ctx, name, panels, value, ylabel, hlines, caption, alt) -> figures.FigureRef:
    """One panel per experiment; ``value(grads, x)`` gives the (steps, n) curve to draw."""
    fig, axes = figures.new(12, 4.6, 1, 2)
    for ax, (label, grads, history), hline in zip(axes, panels, hlines):
        idx = thin(len(grads))
        for variant, x in history.items():
            y = value(grads, x)[idx].numpy()
            look = figures.line_style(ORDER.index(variant))
            for col in range(y.shape[1]):
                ax.plot(idx + 1, y[:, col], **look, lw=1.4 if y.shape[1] == 1 else 0.9,
                        label=variant if col == 0 else None)
        if hline is not None:
            ax.axhline(hline[0], color="k", ls=(0, (1, 3)), lw=1, label=hline[1])
        ax.set(xscale="log", xlabel="step t", ylabel=ylabel, title=label)
        ax.grid(alpha=0.3)
    figures.legend_below(fig, ncols=3)
    return figures.save(ctx, fig, name, caption, alt)


# ---------------------------------------------------------------- the claim


def run(ctx: Context) -> Outcome:
    settings = ctx.pick(FULL, QUICK)
    det_steps, stoch_steps = settings.deterministic_steps, settings.stochastic_steps
    seeds = [ctx.seed + i for i in range(STOCH_SEEDS)]
    det_opts = variants(DET_C, extras=settings.extras)
    # the two long stochastic variants first, one per worker; the short deterministic runs follow
    jobs = [Play(True, stoch_steps, tuple(seeds), (name,), False) for name in variants(STOCH_C, extras=False)]
    jobs.append(Play(False, det_steps, (), tuple(det_opts), settings.extras))
    advance = ctx.progress(f"C4 stochastic (C={STOCH_C:g}, {len(seeds)} seeds) and deterministic (C={DET_C:g}) runs",
                           len(jobs))
    with Workers(settings.workers) as pool:
        *stochastic, det_h = pool.map(play_job, jobs, advance)
    sto_h = {name: x for h in stochastic for name, x in h.items()}
    det_g, sto_g = jobs[-1].grads(), jobs[0].grads()
    det, sto = summarise(det_g, det_h), summarise(sto_g, sto_h)
    asymptote = 2 * (DET_C - 2) / 3
    metrics = {
        "deterministic": det,
        "stochastic": sto,
        "deterministic_steps": det_steps,
        "stochastic_steps": stoch_steps,
        "adam_mean_x_end": det["Adam"]["mean_x_end"][0],
        "adam_regret_gap": abs(det["Adam"]["regret_over_T"][0] - asymptote),
        "amsgrad_final_x": det["AMSGrad"]["final_x"][0],
        "amsgrad_regret_over_T": det["AMSGrad"]["regret_over_T"][0],
    }
    panels = (
        (f"deterministic: C={DET_C:g}, b2={paper_betas(DET_C)[1]:.3g}", det_g, det_h),
        (f"stochastic: C={STOCH_C:g}, delta={STOCH_DELTA:g}, b2={paper_betas(STOCH_C)[1]:.3g}, seeds {seeds}",
         sto_g, sto_h),
    )
    figs = [
        plot_runs(ctx, "c4_trajectories.png", panels, lambda g, x: x, "x_t", (None, None),
                  "Where each optimizer plays on [-1, 1]; the optimum is x = -1. Adam (blue) climbs to the worst "
                  "point +1 and stays there in both problems; AMSGrad (red) goes to -1.",
                  "Two panels of x against step on a log axis: the Adam curves rise to +1, the AMSGrad curves "
                  "fall to -1."),
        plot_runs(ctx, "c4_regret.png", panels, regret_over_t, "R_t / t",
                  ((asymptote, "x = +1 forever: 2(C-2)/3"), (2 * STOCH_DELTA, "x = +1 forever: 2 delta (expected)")),
                  "Average regret against the best fixed point. Adam's settles on the dotted level of playing +1 "
                  "forever; AMSGrad's keeps falling towards 0, as a converging method's must.",
                  "Two panels of average regret against step on log axes: Adam's curves flatten at the dotted "
                  "line, AMSGrad's fall steadily."),
    ]
    tables = [
        {
            "caption": f"Deterministic instance, T = {det_steps}, a_t = {LR}/sqrt(t); "
            f"asymptote for x = +1 is 2(C-2)/3 = {asymptote:.4g}",
            "columns": ["variant", "final x", "mean x, last 10%", "R_T / T"],
            "rows": [[name, s["final_x"][0], s["mean_x_end"][0], s["regret_over_T"][0]] for name, s in det.items()],
        },
        {
            "caption": f"Stochastic instance, T = {stoch_steps}, one column per seed {seeds}",
            "columns": ["variant", "final x", "mean x, last 10%", "R_T / T"],
            "rows": [[name, s["final_x"], s["mean_x_end"], s["regret_over_T"]] for name, s in sto.items()],
        },
    ]
    notes = "Iterates start at x = 0. AMSGrad's stochastic regret shrinks only like 1/sqrt(T)."
    if len(det_opts) > 2:
        notes += (
            " The extra deterministic rows show that bias correction does not rescue Adam, while torch's default "
            "b2 = 0.999 (large compared with 1/(1+C^2)) avoids the failure."
        )
    return Outcome(metrics, figs, tables, notes)


def judge_deterministic(m: dict) -> bool:
    return (
        m["adam_mean_x_end"] > ADAM_MIN_X
        and m["adam_regret_gap"] < ASYMPTOTE_TOL * DET_C
        and m["amsgrad_final_x"] < AMSGRAD_MAX_X
        and m["amsgrad_regret_over_T"] < AMSGRAD_MAX_REGRET
    )


def judge_stochastic(m: dict):
    if m["stochastic_steps"] < FULL.stochastic_steps:  # AMSGrad needs the long run to settle
        return None
    s = m["stochastic"]
    return (
        min(s["Adam"]["mean_x_end"]) > ADAM_MIN_X
        and max(s["AMSGrad"]["mean_x_end"]) < AMSGRAD_MAX_X
        and max(s["AMSGrad"]["regret_over_T"]) < AMSGRAD_MAX_REGRET
    )


def headline_deterministic(m: dict) -> str:
    d = m["deterministic"]
    return (f"Adam ends at x = {d['Adam']['final_x'][0]:+.3f} with R_T/T {d['Adam']['regret_over_T'][0]:.3f} "
            f"(playing +1 forever gives {2 * (DET_C - 2) / 3:.3f}); AMSGrad at {d['AMSGrad']['final_x'][0]:+.3f} "
            f"with {d['AMSGrad']['regret_over_T'][0]:.4f}.")


def headline_stochastic(m: dict) -> str:
    s = m["stochastic"]
    text = (f"Over {len(s['Adam']['final_x'])} seeds Adam's mean x at the end is at least "
            f"{min(s['Adam']['mean_x_end']):+.3f}; AMSGrad's at most {max(s['AMSGrad']['mean_x_end']):+.3f}, "
            f"R_T/T at most {max(s['AMSGrad']['regret_over_T']):.4f}.")
    if m["stochastic_steps"] < FULL.stochastic_steps:
        text += f" {m['stochastic_steps']} steps are too few for AMSGrad to settle."
    return text


PARTS = (
    Part("deterministic", "Theorem 1: the deterministic counterexample",
         f"Adam's mean x over the last 10% of steps exceeds {ADAM_MIN_X} and its R_T/T is within "
         f"{ASYMPTOTE_TOL * DET_C:g} ({ASYMPTOTE_TOL} C) of 2(C-2)/3; AMSGrad ends below {AMSGRAD_MAX_X} with "
         f"R_T/T < {AMSGRAD_MAX_REGRET}.", judge_deterministic, headline_deterministic),
    Part("stochastic", "Theorem 3: the stochastic counterexample",
         f"In every seed Adam's mean x over the last 10% exceeds {ADAM_MIN_X}, AMSGrad's is below "
         f"{AMSGRAD_MAX_X} and its R_T/T below {AMSGRAD_MAX_REGRET}. Needs the full {FULL.stochastic_steps:,} steps.",
         judge_stochastic, headline_stochastic),
)

CLAIM = Claim(
    id="C4",
    title="Adam can fail on a simple convex problem; AMSGrad converges",
    citation="Reddi, Kale & Kumar, On the Convergence of Adam and Beyond, ICLR 2018, Theorems 1 and 3",
    statement=(
        "Adam's step divides by a short average of squared gradients. On a one-dimensional online problem where a "
        "large gradient arrives every third step and small opposite ones in between, that average forgets the large "
        "gradient so fast that the small gradients win: Adam settles on the worst feasible point and its average "
        "regret does not vanish. AMSGrad divides by the largest second moment seen so far instead, which keeps "
        "the effective step from growing, and it converges to the optimum."
    ),
    setup=(
        f"f_t(x) = C x when t mod 3 == 1 and -x otherwise, on [-1, 1] (projection by clipping), C = {DET_C:g}, "
        f"{FULL.deterministic_steps:,} steps: adamlab.Adam with b1 = 0, b2 = 1/(1+C^2), eps = 0, no bias "
        f"correction, lr a/sqrt(t) with a = {LR}, against the same with amsgrad=True (and, for comparison, Adam "
        "with bias correction and with torch's defaults). The stochastic form: f_t = C x with probability "
        f"(1+delta)/(C+1), else -x, C = {STOCH_C:g}, delta = {STOCH_DELTA:g}, {FULL.stochastic_steps:,} steps, "
        f"{STOCH_SEEDS} seeds run as coordinates of one tensor. Regret is against the best fixed point in hindsight."
    ),
    quick_setup=(f"{QUICK.deterministic_steps:,} deterministic and {QUICK.stochastic_steps:,} stochastic steps, "
                 "no comparison rows."),
    parts=PARTS,
    run=run,
)
