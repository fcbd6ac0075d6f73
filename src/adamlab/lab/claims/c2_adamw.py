"""C2: AdamW is not Adam + L2.

Four measurements: L2 against decoupled decay for SGD (equal without momentum)
and for Adam (no L2 coefficient matches AdamW); the decay rate each coordinate
actually gets under gradient noise of different sizes (proxy A); and the
equilibrium angular update of a scale-invariant layer across learning rates
(proxy B).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator
from scipy.optimize import minimize_scalar

import adamlab

from ..core import Claim, Context, Outcome
from ..models_bn import angular_updates
from ..workers import one_thread

# the toy least-squares problem of the equivalence checks
LSQ_STEPS, SGD_LR, ADAM_LR, WD = 200, 0.05, 1e-2, 0.1
L2_GRID = [0.0] + [float(x) for x in np.geomspace(1e-4, 1e2, 13)]  # then refined around the best
# proxy A
SIGMAS, A_LR, A_STEPS, A_ADAMW_WD, A_L2 = (1e-3, 1e-2, 1e-1, 1.0), 1e-3, 2000, 1.0, 0.01
# proxy B: (steps, averaged window, AdamW's fixed lambda); quick decays faster so it settles sooner
B_LRS, B_L2 = (3e-4, 1e-3, 3e-3), 0.1
B_FULL, B_QUICK = (2500, 1000, 2e-3), (600, 200, 1e-2)
EXACT_TOL, DIFFER_MIN = 1e-12, 1e-3
L2_SPREAD_MIN, ADAMW_SPREAD_MAX, THETA_TOL = 10.0, 1.05, 5e-3
ADAMW_RATIO_MAX, L2_RATIO_MIN = 1.3, 3.0


# ---------------------------------------------------------------- equivalences


def least_squares(seed: int):
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(64, 16, generator=gen, dtype=torch.float64)
    y = X @ torch.randn(16, generator=gen, dtype=torch.float64) + 0.5 * torch.randn(64, generator=gen, dtype=torch.float64)
    w0 = torch.randn(16, generator=gen, dtype=torch.float64)
    return X, y, w0


def final_weights(problem, make_opt, steps: int = LSQ_STEPS) -> torch.Tensor:
    """Full-batch training on 0.5*mean squared error from w0; ``make_opt(params)`` builds the optimizer."""
    X, y, w0 = problem
    w = w0.clone()
    opt = make_opt([w])
    for _ in range(steps):
        w.grad = X.T @ (X @ w - y) / len(y)  # the exact gradient, without autograd's overhead
        opt.step()
    return w


def equivalences(seed: int) -> dict:
    problem = least_squares(seed)
    diff = lambda a, b: (a - b).abs().max().item()
    def sgd(momentum: float, decoupled: bool) -> torch.Tensor:
        return final_weights(problem, lambda p: adamlab.SGD(
            p, lr=SGD_LR, momentum=momentum, weight_decay=WD, decoupled_weight_decay=decoupled))

    adamw = final_weights(problem, lambda p: adamlab.AdamW(p, lr=ADAM_LR, weight_decay=WD))
    paper_form = final_weights(
        problem, lambda p: adamlab.AdamW(p, lr=ADAM_LR, weight_decay=ADAM_LR * WD, decay_scale="schedule")
    )
    torch_adamw = final_weights(problem, lambda p: torch.optim.AdamW(p, lr=ADAM_LR, weight_decay=WD))
    l2_gap = lambda c: diff(adamw, final_weights(problem, lambda p: adamlab.Adam(p, lr=ADAM_LR, weight_decay=c)))
    best_c, best_gap = best_l2_coefficient(l2_gap)
    return {
        "sgd_l2_vs_decoupled_max_diff": diff(sgd(0.0, False), sgd(0.0, True)),
        "sgd_momentum_l2_vs_decoupled_max_diff": diff(sgd(0.9, False), sgd(0.9, True)),
        "adam_l2_best_coefficient": best_c,
        "adam_l2_best_max_diff": best_gap,
        "adam_l2_same_coefficient_max_diff": diff(adamw, final_weights(
            problem, lambda p: adamlab.Adam(p, lr=ADAM_LR, weight_decay=WD))),
        "adamw_paper_form_vs_torch_form_max_diff": diff(adamw, paper_form),
        "adamw_vs_torch_optim_adamw_max_diff": diff(adamw, torch_adamw),
        "adamw_weights_norm": adamw.norm().item(),
    }


def best_l2_coefficient(gap) -> tuple[float, float]:
    """The L2 coefficient closest to AdamW: a log grid, then a bounded search around its best point."""
    values = [gap(c) for c in L2_GRID]
    i = int(np.argmin(values))
    if i == 0:
        return 0.0, values[0]
    lo, hi = math.log10(L2_GRID[max(i - 1, 1)]), math.log10(L2_GRID[min(i + 1, len(L2_GRID) - 1)])
    found = minimize_scalar(lambda e: gap(10**e), bounds=(lo, hi), method="bounded", options={"xatol": 0.02})
    return (10 ** float(found.x), float(found.fun)) if found.fun < values[i] else (L2_GRID[i], values[i])


# ---------------------------------------------------------------- proxy A


def decay_rates(decoupled: bool, coords: int, seed: int) -> tuple[list[float], list[float]]:
    """Pure-noise gradients sigma*N(0,1), theta_0 = 1: per group, mean theta_T and k = -ln(mean theta_T)/T."""
    gen = torch.Generator().manual_seed(seed)
    theta = torch.ones(len(SIGMAS), coords, dtype=torch.float64)
    sigma = torch.tensor(SIGMAS, dtype=torch.float64)[:, None]
    if decoupled:
        opt = adamlab.AdamW([theta], lr=A_LR, weight_decay=A_ADAMW_WD)
    else:
        opt = adamlab.Adam([theta], lr=A_LR, weight_decay=A_L2)
    for _ in range(A_STEPS):
        theta.grad = sigma * torch.randn(theta.shape, generator=gen, dtype=torch.float64)
        opt.step()
    mean = theta.mean(dim=1)
    return mean.tolist(), (-mean.log() / A_STEPS).tolist()


def proxy_a(coords: int, seed: int) -> dict:
    _, l2_k = decay_rates(False, coords, seed)
    w_mean, w_k = decay_rates(True, coords, seed)
    return {
        "a_sigmas": list(SIGMAS),
        "a_adam_l2_k": l2_k,
        "a_adamw_k": w_k,
        "a_adam_l2_spread": max(l2_k) / min(l2_k),
        "a_adamw_spread": max(w_k) / min(w_k),
        "a_adamw_mean_theta": float(np.mean(w_mean)),
        "a_expected_theta": (1 - A_LR * A_ADAMW_WD) ** A_STEPS,
    }


# ---------------------------------------------------------------- proxy B


def proxy_b(steps: int, window: int, lam: float, seed: int) -> tuple[dict, dict]:
    curves = angular_updates(B_LRS, lam, B_L2, steps, seed)
    metrics = {"b_lrs": list(B_LRS), "b_steps": steps, "b_window": window, "b_lambda": lam}
    for name, per_lr in curves.items():
        eq = per_lr[:, -window:].mean(axis=1).tolist()
        metrics[f"b_{name}_angle"] = eq
        metrics[f"b_{name}_ratio"] = max(eq) / min(eq)
    return metrics, curves


# ---------------------------------------------------------------- the claim


def run(ctx: Context) -> Outcome:
    advance = ctx.progress("C2 AdamW vs Adam + L2", 3)
    with one_thread():
        metrics = equivalences(ctx.seed)
        advance()
        metrics.update(proxy_a(500 if ctx.quick else 2000, ctx.seed))
        advance()
        b_metrics, curves = proxy_b(*(B_QUICK if ctx.quick else B_FULL), ctx.seed)
        metrics.update(b_metrics)
        advance()
    figures = [decay_figure(ctx, metrics), equilibrium_figure(ctx, metrics, curves)]
    return Outcome(metrics, figures, tables(metrics), notes(metrics))


def decay_figure(ctx: Context, m: dict):
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.add_subplot()
    sig = np.array(SIGMAS)
    ax.loglog(sig, m["a_adam_l2_k"], "o-", color="tab:red", label=f"Adam + L2 (lambda' = {A_L2})")
    ax.loglog(sig, m["a_adamw_k"], "s-", color="tab:blue", label=f"AdamW (wd = {A_ADAMW_WD})")
    ax.loglog(sig, A_LR * A_L2 / sig, ":", color="tab:red", label="lr * lambda' / sigma (noise-dominated limit)")
    ax.axhline(A_LR * A_ADAMW_WD, ls="--", color="tab:blue", label="lr * wd")
    ax.set(xlabel="gradient noise sigma of the group", ylabel="decay rate k = -ln(mean theta_T) / T",
           title=f"Effective decay per coordinate group (T = {A_STEPS}, lr = {A_LR})")
    ax.set_ylim(m["a_adam_l2_k"][-1] / 3, 3 * max(m["a_adam_l2_k"]))
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    path = ctx.figure_path("c2_decay.png")
    fig.savefig(path, dpi=110)
    return path


def equilibrium_figure(ctx: Context, m: dict, curves: dict):
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    a, b = fig.subplots(1, 2)
    window = 50
    kernel = np.ones(window) / window
    shades = ("tab:cyan", "tab:blue", "navy"), ("salmon", "tab:red", "darkred")
    for (name, label), colors in zip((("adamw", "AdamW"), ("adam_l2", "Adam + L2")), shades):
        for lr, angles, color in zip(B_LRS, curves[name], colors):
            smooth = np.convolve(angles, kernel, mode="valid")
            a.semilogy(np.arange(len(smooth)) + window, smooth, color=color, label=f"{label}, lr {lr:g}")
        b.loglog(B_LRS, m[f"b_{name}_angle"], "o-", color=colors[1],
                 label=f"{label}: max/min = {m[f'b_{name}_ratio']:.2f}")
    a.axvspan(m["b_steps"] - m["b_window"], m["b_steps"], color="gray", alpha=0.15, label="averaged window")
    a.set(xlabel="step", ylabel="angle between consecutive rows (rad)",
          title=f"Angular update of the BatchNorm'd first layer ({window}-step mean)")
    b.set(xlabel="learning rate", ylabel="equilibrium angular update (rad)",
          title=f"Equilibrium angle vs lr (AdamW lambda = {m['b_lambda']:g})")
    b.set_xticks(B_LRS, [f"{lr:g}" for lr in B_LRS])
    b.xaxis.set_minor_locator(NullLocator())
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    path = ctx.figure_path("c2_equilibrium.png")
    fig.savefig(path, dpi=110)
    return path


def tables(m: dict) -> list[dict]:
    eq = [
        ["SGD: L2 vs decoupled decay, max |diff|", f"{m['sgd_l2_vs_decoupled_max_diff']:.2g}"],
        ["SGD momentum 0.9: L2 vs decoupled, max |diff|", f"{m['sgd_momentum_l2_vs_decoupled_max_diff']:.3g}"],
        [f"Adam + L2 vs AdamW, best L2 coefficient ({m['adam_l2_best_coefficient']:.3g})",
         f"{m['adam_l2_best_max_diff']:.3g}"],
        ["Adam + L2 vs AdamW, same coefficient", f"{m['adam_l2_same_coefficient_max_diff']:.3g}"],
        ["AdamW, paper's lambda (decay_scale='schedule') vs torch's wd", f"{m['adamw_paper_form_vs_torch_form_max_diff']:.2g}"],
        ["adamlab.AdamW vs torch.optim.AdamW (comparison)", f"{m['adamw_vs_torch_optim_adamw_max_diff']:.2g}"],
    ]
    decay = [[f"{s:g}", f"{k1:.3g}", f"{k2:.3g}"] for s, k1, k2 in zip(SIGMAS, m["a_adam_l2_k"], m["a_adamw_k"])]
    equil = [[f"{lr:g}", f"{x:.4f}", f"{y:.4f}"] for lr, x, y in zip(B_LRS, m["b_adamw_angle"], m["b_adam_l2_angle"])]
    return [
        {"caption": f"Equivalence checks: least squares, {LSQ_STEPS} steps, float64", "columns": ["check", "value"],
         "rows": eq},
        {"caption": "Proxy A: decay rate k per noise group", "columns": ["sigma", "Adam + L2", "AdamW"],
         "rows": decay},
        {"caption": f"Proxy B: equilibrium angular update (rad), mean of the last {m['b_window']} steps",
         "columns": ["lr", "AdamW", "Adam + L2"], "rows": equil},
    ]


def notes(m: dict) -> str:
    return (
        f"For plain SGD, L2 and decoupled decay agree to {m['sgd_l2_vs_decoupled_max_diff']:.1g}; with momentum "
        f"they differ by {m['sgd_momentum_l2_vs_decoupled_max_diff']:.3f}. The best Adam + L2 coefficient "
        f"({m['adam_l2_best_coefficient']:.3g}) still ends {m['adam_l2_best_max_diff']:.3f} away from AdamW. Under pure gradient noise, "
        f"Adam + L2 decays coordinates at rates {m['a_adam_l2_spread']:.0f}x apart (roughly lr*lambda'/sigma, "
        f"saturating when the decay term dominates the noise), AdamW at one rate (spread "
        f"{m['a_adamw_spread']:.3f}); its mean theta_T = {m['a_adamw_mean_theta']:.4f} against "
        f"(1 - lr*wd)^T = {m['a_expected_theta']:.4f}. In equilibrium, AdamW's angular update varies "
        f"{m['b_adamw_ratio']:.2f}x over a 10x lr range, Adam + L2's {m['b_adam_l2_ratio']:.2f}x."
    )


def judge(m: dict) -> bool:
    return (
        m["sgd_l2_vs_decoupled_max_diff"] <= EXACT_TOL
        and m["sgd_momentum_l2_vs_decoupled_max_diff"] >= DIFFER_MIN
        and m["adam_l2_best_max_diff"] >= DIFFER_MIN
        and m["a_adam_l2_spread"] >= L2_SPREAD_MIN
        and m["a_adamw_spread"] <= ADAMW_SPREAD_MAX
        and abs(m["a_adamw_mean_theta"] - m["a_expected_theta"]) < THETA_TOL
        and m["b_adamw_ratio"] < ADAMW_RATIO_MAX
        and m["b_adam_l2_ratio"] > L2_RATIO_MIN
    )


CLAIM = Claim(
    id="C2",
    title="AdamW is not Adam + L2",
    citation="Loshchilov & Hutter 2019, Decoupled Weight Decay Regularization (ICLR)",
    statement=(
        "For plain SGD, adding lambda*theta to the gradient and shrinking theta by (1 - lr*lambda) are the same "
        "update. Adam breaks the equivalence: the L2 term passes through the division by sqrt(vhat), so a "
        "coordinate with a large gradient history is barely decayed while a quiet one is decayed hard. AdamW "
        "shrinks the weights outside the adaptive step, so every coordinate decays at the same rate, and the "
        "decay no longer interacts with the learning rate in the way L2 does."
    ),
    setup=(
        f"Equivalence: 16-parameter least squares (64 rows), {LSQ_STEPS} full-batch float64 steps; adamlab.SGD "
        f"(lr {SGD_LR}, wd {WD}) with L2 or decoupled decay, with and without momentum 0.9; adamlab.AdamW "
        f"(lr {ADAM_LR}, wd {WD}) against adamlab.Adam with L2 coefficients 0 and 1e-4 to 1e2 "
        f"({len(L2_GRID) - 1} log-spaced, then a bounded search around the closest). Proxy A: {len(SIGMAS)} groups of 2000 coordinates, theta_0 = 1, gradients sigma*N(0,1) "
        f"with sigma in {list(SIGMAS)}, lr {A_LR}, {A_STEPS} steps; Adam + L2 with lambda' = {A_L2} against "
        f"AdamW with wd = {A_ADAMW_WD}. Proxy B: Linear(20,64, no bias) -> BatchNorm1d(affine=False) -> ReLU -> "
        f"Linear(64,4) on fresh N(0, I) batches of 64 labelled by a noisy linear teacher; decay on the first "
        f"layer only; constant lr in {list(B_LRS)} for {B_FULL[0]} steps; AdamW with the paper's fixed "
        f"lambda = {B_FULL[2]} (adamlab.AdamW with decay_scale='schedule', so theta shrinks by (1 - lambda) per "
        f"step at any lr), Adam + L2 with lambda' = {B_L2}; angle between consecutive first-layer rows averaged "
        f"over the last {B_FULL[1]} steps; one network copy per (optimizer, lr), same init and batches. "
        f"Quick mode: 500 coordinates per group; proxy B with lambda = {B_QUICK[2]} so that {B_QUICK[0]} steps "
        f"reach equilibrium (averaged over the last {B_QUICK[1]}); Adam + L2 at the smallest lr is then still "
        f"settling, which inflates its spread."
    ),
    criterion=(
        f"SGD: L2 equals decoupled decay to {EXACT_TOL:g} without momentum and differs by >= {DIFFER_MIN:g} with "
        f"it; no L2 coefficient brings Adam within {DIFFER_MIN:g} of AdamW. Proxy A: decay-rate spread "
        f">= {L2_SPREAD_MIN:g} for Adam + L2 and <= {ADAMW_SPREAD_MAX} for AdamW, AdamW's mean theta_T within "
        f"{THETA_TOL:g} of (1 - lr*wd)^T. Proxy B: equilibrium angle max/min < {ADAMW_RATIO_MAX} for AdamW and "
        f"> {L2_RATIO_MIN:g} for Adam + L2 across the 10x lr range."
    ),
    run=run,
    judge=judge,
)
