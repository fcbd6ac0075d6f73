"""C4: Adam can converge to the worst point of a convex problem; AMSGrad does not.

Online linear losses f_t(x) = g_t x on F = [-1, 1], where a rare large gradient
(C) points one way and frequent small ones (-1) the other. With b2 small,
Adam's v forgets the large gradient within a step, so the many small steps win
and x drifts to +1, the worst point. AMSGrad keeps the largest v seen, so the
small gradients take small steps and x goes to -1.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import adamlab

from ..core import Claim, Context, Outcome
from ..workers import one_thread

DTYPE = torch.float64
LR = 0.5  # a, in a_t = a / sqrt(t)
DET_C = 3.0
STOCH_C, STOCH_DELTA, STOCH_SEEDS = 10.0, 0.1, 3
STEPS = {False: (30_000, 300_000), True: (3_000, 10_000)}  # quick -> (deterministic, stochastic)
LAST = 0.1  # "the end" is the last 10% of the steps
ADAM_MIN_X, AMSGRAD_MAX_X, AMSGRAD_MAX_REGRET, ASYMPTOTE_TOL = 0.99, -0.99, 0.02, 0.02


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

#: (color, line style) per variant; the bias-corrected run lies on top of Adam's, hence dashed
STYLES = {"Adam": ("tab:red", "-"), "AMSGrad": ("tab:blue", "-"), "Adam, bias-corrected": ("tab:orange", "--")}


def thin(steps: int, points: int = 1500) -> np.ndarray:
    """Log-spaced step indices (0-based), so long runs plot quickly on a log axis."""
    return np.unique(np.geomspace(1, steps, points).astype(int)) - 1


def plot_runs(det, stoch, path, value, ylabel, title, hlines) -> None:
    """One panel per experiment; ``value(grads, x)`` gives the (steps, n) curve to draw."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, (label, grads, history), hline in zip(axes, (det, stoch), hlines):
        idx = thin(len(grads))
        for name, x in history.items():
            y = value(grads, x)[idx].numpy()
            color, ls = STYLES.get(name, ("tab:gray", "-"))
            for col in range(y.shape[1]):
                ax.plot(
                    idx + 1,
                    y[:, col],
                    color=color,
                    ls=ls,
                    lw=1.2 if y.shape[1] == 1 else 0.8,
                    label=name if col == 0 else None,
                )
        if hline is not None:
            ax.axhline(hline[0], color="k", ls="--", lw=1, label=hline[1])
        ax.set(xscale="log", xlabel="step t", ylabel=ylabel, title=label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- the claim


def run(ctx: Context) -> Outcome:
    det_steps, stoch_steps = STEPS[ctx.quick]
    seeds = [ctx.seed + i for i in range(STOCH_SEEDS)]
    with one_thread():
        det_g = deterministic_grads(DET_C, det_steps)
        det_opts = variants(DET_C, extras=not ctx.quick)
        det_h = play(det_g, det_opts, ctx.progress(f"C4 deterministic, C={DET_C:g}, {len(det_opts)} variants", 100))
        sto_g = stochastic_grads(STOCH_C, STOCH_DELTA, stoch_steps, seeds)
        sto_h = play(
            sto_g,
            variants(STOCH_C, extras=False),
            ctx.progress(f"C4 stochastic, C={STOCH_C:g}, {len(seeds)} seeds", 100),
        )
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
    figures = [ctx.figure_path("c4_trajectories.png"), ctx.figure_path("c4_regret.png")]
    det_panel = (f"deterministic: C={DET_C:g}, b2={paper_betas(DET_C)[1]:.3g}", det_g, det_h)
    sto_panel = (
        f"stochastic: C={STOCH_C:g}, delta={STOCH_DELTA:g}, b2={paper_betas(STOCH_C)[1]:.3g}, seeds {seeds}",
        sto_g,
        sto_h,
    )
    plot_runs(
        det_panel,
        sto_panel,
        figures[0],
        lambda g, x: x,
        "x_t",
        "Where each optimizer plays (optimum: x = -1)",
        (None, None),
    )
    plot_runs(
        det_panel,
        sto_panel,
        figures[1],
        regret_over_t,
        "R_t / t",
        "Average regret: Adam's stays put, AMSGrad's goes to 0",
        ((asymptote, "x = +1 forever: 2(C-2)/3"), (2 * STOCH_DELTA, "x = +1 forever: 2 delta (expected)")),
    )
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
    notes = (
        "Iterates start at x = 0. The stochastic runs are reported, not judged: AMSGrad's regret there shrinks only "
        "like 1/sqrt(T), so short runs leave it far from -1."
    )
    if len(det_opts) > 2:
        notes += (
            " The extra deterministic rows show that bias correction does not rescue Adam, while torch's default "
            "b2 = 0.999 (large compared with 1/(1+C^2)) avoids the failure."
        )
    return Outcome(metrics, figures, tables, notes)


def judge(metrics: dict) -> bool:
    return (
        metrics["adam_mean_x_end"] > ADAM_MIN_X
        and metrics["adam_regret_gap"] < ASYMPTOTE_TOL * DET_C
        and metrics["amsgrad_final_x"] < AMSGRAD_MAX_X
        and metrics["amsgrad_regret_over_T"] < AMSGRAD_MAX_REGRET
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
        f"adamlab.Adam with b1 = 0, b2 = 1/(1+C^2), eps = 0, no bias correction, lr a/sqrt(t) with a = {LR}, "
        "against the same with amsgrad=True. Also the stochastic form: f_t = C x with probability (1+delta)/(C+1), "
        f"else -x, C = {STOCH_C:g}, delta = {STOCH_DELTA:g}, {STOCH_SEEDS} seeds run as coordinates of one tensor. "
        "Regret is measured against the best fixed point in hindsight."
    ),
    criterion=(
        f"Deterministic instance: Adam's mean x over the last 10% of steps exceeds {ADAM_MIN_X} and its R_T/T is "
        f"within {ASYMPTOTE_TOL * DET_C:g} ({ASYMPTOTE_TOL} C) of 2(C-2)/3; "
        f"AMSGrad ends below {AMSGRAD_MAX_X} with R_T/T < {AMSGRAD_MAX_REGRET}."
    ),
    run=run,
    judge=judge,
)
