"""C6: in half precision, eps = 1e-8 and small squared gradients vanish.

fp16 flushes 1e-8 and (1e-4)^2 to zero, so a step stored and computed in fp16
divides by zero; bf16 keeps the range but so few mantissa bits that an average
with beta2 = 0.999 stops moving. adamlab computes in fp32 for half params.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch

import adamlab

from ..core import Claim, Context, Outcome
from ..workers import one_thread

GRADS = (1e-4, 1e-3, 1e-2, 1.0)
LR, BETA2, EMA_STEPS = 1e-3, 0.999, 5000
FORMATS = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}
MAX_REL_ERR = 0.01


def format_limits() -> list[list]:
    rows = []
    for name, dtype in FORMATS.items():
        fi = torch.finfo(dtype)
        rows.append([name, fi.max, fi.smallest_normal, subnormal_min(dtype), fi.eps])
    return rows


def subnormal_min(dtype: torch.dtype) -> float:
    """The smallest positive value the format holds (a subnormal): the next float after 0."""
    return torch.nextafter(torch.zeros((), dtype=dtype), torch.ones((), dtype=dtype)).item()


def rounding(dtype: torch.dtype) -> dict:
    """What the format does to Adam's small numbers."""
    small = torch.tensor(GRADS[0], dtype=dtype)
    return {
        "eps_1e-8": torch.tensor(1e-8, dtype=dtype).item(),
        "grad_1e-4_squared": (small * small).item(),
        "beta2_0.999": torch.tensor(BETA2, dtype=dtype).item(),
    }


def one_step(make_opt, dtype: torch.dtype, eps: float) -> list[float]:
    """Params after one step from 0 with gradients GRADS (the grad rounded to the param's format)."""
    p = torch.zeros(len(GRADS), dtype=dtype)
    opt = make_opt([p], lr=LR, eps=eps)
    p.grad = torch.tensor(GRADS, dtype=dtype)
    opt.step()
    return p.float().tolist()


STEP_VARIANTS = {  # label -> (optimizer, param dtype, eps)
    "torch.optim.Adam, fp16, eps 1e-8": (torch.optim.Adam, torch.float16, 1e-8),
    "torch.optim.Adam, fp16, eps 1e-4": (torch.optim.Adam, torch.float16, 1e-4),
    "adamlab.Adam, fp16, eps 1e-8": (adamlab.Adam, torch.float16, 1e-8),
    "torch.optim.Adam, bf16, eps 1e-8": (torch.optim.Adam, torch.bfloat16, 1e-8),
    "adamlab.Adam, bf16, eps 1e-8": (adamlab.Adam, torch.bfloat16, 1e-8),
    "torch.optim.Adam, fp32, eps 1e-8 (reference)": (torch.optim.Adam, torch.float32, 1e-8),
}


def ema_curve(dtype: torch.dtype, steps: int = EMA_STEPS) -> list[float]:
    """v_t = b2 v + (1-b2) g^2 with g = 1, written as torch.optim.Adam writes it, state kept in ``dtype``."""
    v, g = torch.zeros((), dtype=dtype), torch.ones((), dtype=dtype)
    out = []
    for _ in range(steps):
        v.mul_(BETA2).addcmul_(g, g, value=1 - BETA2)
        out.append(v.item())
    return out


# ------------------------------------------------------------------- figures


def plot_ema(curves: dict, path) -> None:
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    t = np.arange(1, EMA_STEPS + 1)
    for (name, curve), color in zip(curves.items(), ("tab:red", "tab:orange", "tab:blue")):
        ax.plot(
            t,
            curve,
            color=color,
            label=f"computed in {name} (stalls at {curve[-1]:.4g})" if name != "fp32" else "computed in fp32",
        )
    ax.plot(t, 1 - BETA2**t, "k--", lw=1, label="exact: 1 - 0.999^t", zorder=5)
    ax.set(xlabel="step t", ylabel="v_t", title="Second-moment average of a constant g = 1 (beta2 = 0.999)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_steps(steps: dict, path) -> None:
    """Grouped bars of |update| / lr per coordinate; an infinite update is drawn to the top and labelled."""
    labels = [k for k in steps if "bf16" not in k]
    fig, ax = plt.subplots(figsize=(9, 4.2))
    width = 0.8 / len(labels)
    top = 100.0
    for i, label in enumerate(labels):
        ratios = [abs(x) / LR for x in steps[label]]
        xs = np.arange(len(GRADS)) + (i - (len(labels) - 1) / 2) * width
        shown = [min(r, top) if math.isfinite(r) else top for r in ratios]
        bars = ax.bar(xs, shown, width, label=label)
        for x, r in zip(xs, ratios):
            if not math.isfinite(r):
                ax.text(x, top, "inf", ha="center", va="bottom", fontsize=8, color=bars[0].get_facecolor())
    ax.axhline(1.0, color="k", ls="--", lw=1, label="lr (the correct size)")
    ax.set(yscale="log", ylim=(0.05, top * 3), xticks=range(len(GRADS)), xticklabels=[f"g = {g:g}" for g in GRADS])
    ax.set(ylabel="|first update| / lr", title="First Adam step from 0 (lr 1e-3): fp16 state vs fp32 arithmetic")
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- the claim


def run(ctx: Context) -> Outcome:
    with one_thread():
        advance = ctx.progress("C6 one step in each format", len(STEP_VARIANTS))
        steps = {}
        for label, (cls, dtype, eps) in STEP_VARIANTS.items():
            steps[label] = one_step(cls, dtype, eps)
            advance()
        advance = ctx.progress(f"C6 EMA over {EMA_STEPS} steps in each format", len(FORMATS))
        curves = {}
        for name in ("bf16", "fp16", "fp32"):
            curves[name] = ema_curve(FORMATS[name])
            advance()
    naive, ours = steps["torch.optim.Adam, fp16, eps 1e-8"], steps["adamlab.Adam, fp16, eps 1e-8"]
    rel_err = [abs(abs(x) - LR) / LR if math.isfinite(x) else math.inf for x in ours]
    metrics = {
        "rounding": {name: rounding(FORMATS[name]) for name in ("fp16", "bf16")},
        "first_step": {label: dict(zip(map(str, GRADS), values)) for label, values in steps.items()},
        "naive_fp16_small_grad_finite": math.isfinite(naive[0]),
        "adamlab_fp16_finite": all(math.isfinite(x) for x in ours),
        "adamlab_fp16_max_rel_err": max(rel_err),
        "eps_1e-4_workaround_max_ratio": max(abs(x) / LR for x in steps["torch.optim.Adam, fp16, eps 1e-4"]),
        "ema_end": {name: curve[-1] for name, curve in curves.items()},
        "ema_at_1000": {name: curve[999] for name, curve in curves.items()},
    }
    figures = [ctx.figure_path("c6_ema.png"), ctx.figure_path("c6_steps.png")]
    plot_ema(curves, figures[0])
    plot_steps(steps, figures[1])
    tables = [
        {
            "caption": "Format limits (torch.finfo)",
            "columns": ["format", "max", "smallest normal", "smallest subnormal", "eps at 1"],
            "rows": format_limits(),
        },
        {
            "caption": "What each half format stores for Adam's small numbers",
            "columns": ["format", "1e-8", "(1e-4)^2", "0.999"],
            "rows": [[name, *r.values()] for name, r in metrics["rounding"].items()],
        },
        {
            "caption": f"Params after one step from 0, lr {LR:g}, gradients {GRADS}",
            "columns": ["optimizer, params, eps", *[f"g = {g:g}" for g in GRADS]],
            "rows": [[label, *values] for label, values in steps.items()],
        },
        {
            "caption": "v_t of a constant g = 1 with beta2 = 0.999, state stored in each format (exact: 1 - 0.999^t)",
            "columns": ["format", "v at t = 1000", f"v at t = {EMA_STEPS}"],
            "rows": [[name, curves[name][999], curves[name][-1]] for name in curves]
            + [["exact", 1 - BETA2**1000, 1 - BETA2**EMA_STEPS]],
        },
    ]
    notes = (
        "The fp16 state of torch.optim.Adam holds v = 0 for g = 1e-4 and 1e-3, and eps = 1e-8 is 0 too, so the "
        "step divides by zero. Raising eps to 1e-4 keeps it finite but makes the g = 1e-3 step ten times lr. "
        "adamlab keeps fp32 moments and computes in fp32, then rounds the param once."
    )
    return Outcome(metrics, figures, tables, notes)


def judge(metrics: dict) -> bool:
    return (
        not metrics["naive_fp16_small_grad_finite"]
        and metrics["adamlab_fp16_finite"]
        and metrics["adamlab_fp16_max_rel_err"] <= MAX_REL_ERR
    )


CLAIM = Claim(
    id="C6",
    title="eps = 1e-8 is not negligible in half precision",
    citation="Kingma & Ba 2015 (the eps term of Algorithm 1); IEEE 754 binary16 and bfloat16 formats",
    statement=(
        "eps only guards the division in Adam's step, and in fp32 it barely matters. In fp16, 1e-8 is below the "
        "smallest subnormal and becomes 0, and the squares of small gradients flush to 0 as well, so an optimizer "
        "that keeps its state and arithmetic in fp16 divides by zero. In bf16 the range is fine but 0.999 rounds "
        "to 1 and running averages stop moving. Raising eps hides the symptom and distorts steps; fp32 arithmetic "
        "fixes it."
    ),
    setup=(
        f"One Adam step from 0 with lr {LR:g} and gradients {GRADS}: torch.optim.Adam on fp16 and bf16 params "
        "(its state in the param's format, the labelled comparison), the same with eps = 1e-4, adamlab.Adam on the "
        "same params, and torch.optim.Adam in fp32 as the reference. Then the second-moment average of a constant "
        f"gradient, computed with torch's in-place ops in bf16, fp16 and fp32 for {EMA_STEPS} steps."
    ),
    criterion=(
        "torch.optim.Adam's fp16 step is non-finite for g = 1e-4, and adamlab.Adam's fp16 step is finite and within "
        f"{MAX_REL_ERR:.0%} of lr in every coordinate."
    ),
    run=run,
    judge=judge,
)
