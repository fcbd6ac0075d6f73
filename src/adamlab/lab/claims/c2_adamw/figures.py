"""C2's figures: decay per noise group, the equilibrium angle, and the lr x wd heatmaps."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.patches import Rectangle
from matplotlib.ticker import NullLocator

from ...framework import figures
from ...framework.claim import Context, FigureRef

PANEL_TITLES = {"adam_l2": "Adam + L2 (coefficient on the gradient)",
                "adamw": "AdamW, paper's decay lambda (decay_scale='schedule')",
                "torch": "the same AdamW runs on torch's axis, wd = lambda / lr"}


def decay_figure(ctx: Context, m: dict, sigmas, lr, l2, wd, steps) -> FigureRef:
    fig, ax = figures.new(7, 4.6)
    sig = np.array(sigmas)
    ax.loglog(sig, m["a_adam_l2_k"], **figures.style(1), label=f"Adam + L2 (lambda' = {l2})")
    ax.loglog(sig, m["a_adamw_k"], **figures.style(0), label=f"AdamW (wd = {wd})")
    ax.loglog(sig, lr * l2 / sig, ":", color="tab:red", label="lr * lambda' / sigma (noise-dominated limit)")
    ax.axhline(lr * wd, ls="--", color="tab:blue", label="lr * wd")
    ax.set(xlabel="gradient noise sigma of the group", ylabel="decay rate k = -ln(mean theta_T) / T",
           title=f"Effective decay per coordinate group (T = {steps}, lr = {lr})")
    ax.set_ylim(m["a_adam_l2_k"][-1] / 3, 3 * max(m["a_adam_l2_k"]))
    ax.grid(alpha=0.3, which="both")
    figures.legend_below(fig, ncols=2)
    return figures.save(
        ctx, fig, "c2_decay.png",
        "How fast each group of coordinates decays when its gradients are pure noise of size sigma. Under "
        "Adam + L2 (red) quiet coordinates decay far faster than noisy ones; AdamW (blue) decays every group "
        "at the same rate lr * wd.",
        "Log-log plot of decay rate against gradient noise: the Adam + L2 line falls steeply with sigma, the "
        "AdamW line is flat on the dashed lr * wd level.",
    )


def equilibrium_figure(ctx: Context, m: dict, curves: dict, lrs) -> FigureRef:
    fig, (a, b) = figures.new(12, 4.8, 1, 2)
    window = 50
    kernel = np.ones(window) / window
    for k, (name, label) in enumerate((("adamw", "AdamW"), ("adam_l2", "Adam + L2"))):
        for i, (lr, angles) in enumerate(zip(lrs, curves[name])):
            smooth = np.convolve(angles, kernel, mode="valid")
            look = figures.line_style(3 * k + i)
            a.semilogy(np.arange(len(smooth)) + window, smooth, **look, label=f"{label}, lr {lr:g}")
        b.loglog(lrs, m[f"b_{name}_angle"], **figures.style(3 * k + 1),
                 label=f"{label}: max/min = {m[f'b_{name}_ratio']:.2f}")
    a.axvspan(m["b_steps"] - m["b_window"], m["b_steps"], color="gray", alpha=0.15, label="averaged window")
    a.set(xlabel="step", ylabel="angle between consecutive rows (rad)",
          title=f"Angular update of the BatchNorm'd first layer ({window}-step mean)")
    b.set(xlabel="learning rate", ylabel="equilibrium angular update (rad)",
          title=f"Equilibrium angle vs lr (AdamW lambda = {m['b_lambda']:g})")
    b.set_xticks(lrs, [f"{lr:g}" for lr in lrs])
    b.xaxis.set_minor_locator(NullLocator())
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
    figures.legend_below(fig, (a,), ncols=4)
    figures.legend_right(b)
    return figures.save(
        ctx, fig, "c2_equilibrium.png",
        "How far the rows of a scale-invariant layer turn per step, at three constant learning rates. With "
        "AdamW's fixed lambda the equilibrium angle (right) barely changes with the lr; under Adam + L2 it grows "
        "roughly in proportion to it.",
        "Left: smoothed angle per step for six runs settling to plateaus. Right: the plateau against lr on log "
        "axes, nearly flat for AdamW and rising for Adam + L2.",
    )


def _edges(values) -> np.ndarray:
    """Cell edges on a log axis: geometric midpoints, extended half a step past each end."""
    logs = np.log10(values)
    mids = (logs[1:] + logs[:-1]) / 2
    return 10 ** np.concatenate([[logs[0] - (mids[0] - logs[0])], mids, [logs[-1] + (logs[-1] - mids[-1])]])


def _heatmap(ax, panel: dict, lrs, norm, shift_by_lr: bool):
    mean, sd = np.array(panel["mean_loss"]), np.array(panel["seed_sd"])
    wds, lr_edges = np.array(panel["wds"]), _edges(lrs)
    mesh = None
    for i, lr in enumerate(lrs):
        scale = lr if shift_by_lr else 1.0
        x = _edges(wds) / scale
        mesh = ax.pcolormesh(x, lr_edges[i:i + 2], mean[i:i + 1], norm=norm, cmap="viridis_r", shading="flat")
        tied = set(panel["tied_wds"][i])
        for j, wd in enumerate(wds):
            best = wd == panel["best_wd"][i]
            text = f"{mean[i, j]:.3f}" + (f"\n±{sd[i, j]:.3f}" if sd.any() else "")
            ax.text(wd / scale, lr, text, ha="center", va="center", fontsize=5.5,
                    color="white" if norm(mean[i, j]) > 0.6 else "black", fontweight="bold" if best else None)
            if best or wd in tied:
                ax.add_patch(Rectangle((x[j], lr_edges[i]), x[j + 1] - x[j], lr_edges[i + 1] - lr_edges[i],
                                       fill=False, lw=2.0 if best else 0.8, ls="-" if best else "--", ec="red"))
    scales = np.array(lrs) if shift_by_lr else np.ones(len(lrs))
    ax.set(xscale="log", yscale="log", ylabel="learning rate",
           xlim=(_edges(wds)[0] / scales.max(), _edges(wds)[-1] / scales.min()))
    ax.set_yticks(lrs, [f"{lr:g}" for lr in lrs])
    ax.yaxis.set_minor_locator(NullLocator())
    return mesh


def grid_figure(ctx: Context, g: dict) -> FigureRef:
    fig, axes = figures.new(16, 5.4, 1, 3)
    lrs = g["lrs"]
    every = np.concatenate([np.ravel(g[p]["mean_loss"]) for p in ("adam_l2", "adamw")])
    norm = LogNorm(vmin=every.min(), vmax=min(every.max(), 4 * every.min()), clip=True)
    mesh = None
    for ax, key in zip(axes, ("adam_l2", "adamw", "torch")):
        panel = g["adamw" if key == "torch" else key]
        mesh = _heatmap(ax, panel, lrs, norm, shift_by_lr=key == "torch")
        slope = g["torch_convention_slope"] if key == "torch" else panel["slope"]
        ax.set_title(f"{PANEL_TITLES[key]}\nslope of log best wd vs log lr: {slope:+.2f}", fontsize=9)
        if key != "torch":
            ax.set_xticks(panel["wds"], [f"{w:g}" for w in panel["wds"]], rotation=45)
            ax.xaxis.set_minor_locator(NullLocator())
    axes[0].set_xlabel("L2 coefficient")
    axes[1].set_xlabel("lambda (per-step decay times the schedule multiplier)")
    axes[2].set_xlabel("torch weight_decay = lambda / lr")
    fig.colorbar(mesh, ax=list(axes), label="final validation loss (mean over seeds)", shrink=0.9)
    return figures.save(
        ctx, fig, "c2_grid.png",
        f"Final validation loss over learning rate x weight decay, mean ± sd over {g['seeds']} seeds; the red box "
        "marks each lr's best decay, dashed boxes the cells tied with it. Look at how the boxes move from row to "
        "row: straight down is a separable basin, a diagonal means the best decay depends on the lr.",
        "Three heatmaps of validation loss with lr on the vertical axis and weight decay on the horizontal; a "
        "red box in each row marks its lowest loss.",
    )
