"""C6: in half precision, eps = 1e-8 and small squared gradients vanish.

fp16 flushes 1e-8 and (1e-4)^2 to zero, so a step stored and computed in fp16
divides by zero; bf16 keeps the range but so few mantissa bits that an average
with beta2 = 0.999 stops moving once its increments fall below half an ulp.
adamlab computes in fp32 for half params.
"""

from __future__ import annotations

import math

import numpy as np
import torch

import adamlab

from ...framework import figures
from ...framework.claim import Claim, Context, Outcome, Part
from ...framework.workers import one_thread
from . import monitoring

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


def half_ulps_around(value: float, dtype: torch.dtype) -> tuple[float, float]:
    """Half the spacing of ``dtype``'s values just below and just above ``value``."""
    v = torch.tensor(value, dtype=dtype)
    up = torch.nextafter(v, torch.tensor(math.inf, dtype=dtype))
    down = torch.nextafter(v, torch.tensor(-math.inf, dtype=dtype))
    return (v - down).item() / 2, (up - v).item() / 2


# ------------------------------------------------------------------- figures


def ema_figure(ctx: Context, curves: dict) -> figures.FigureRef:
    fig, ax = figures.new(8, 4.6)
    t = np.arange(1, EMA_STEPS + 1)
    for i, (name, curve) in enumerate(curves.items()):
        label = f"computed in {name} (stops at {curve[-1]:.4g})" if name != "fp32" else "computed in fp32"
        ax.plot(t, curve, **figures.line_style(i), label=label)
    ax.plot(t, 1 - BETA2**t, color="black", ls=(0, (1, 2)), lw=1.2, label="exact: 1 - 0.999^t", zorder=5)
    ax.set(xlabel="step t", ylabel="v_t", title="Second-moment average of a constant g = 1 (beta2 = 0.999)")
    ax.grid(alpha=0.3)
    figures.legend_right(ax)
    return figures.save(
        ctx, fig, "c6_ema.png",
        "Adam's second-moment average of a constant gradient g = 1, kept in each format. In bf16 it stops at "
        "0.5, where each increment (1 - beta2) g^2 = 0.001 is less than half a bf16 ulp (2^-9) and rounds away; "
        "fp16 stops later, at 0.732; fp32 follows the exact curve.",
        "Line plot of v against step: the bf16 curve flattens at 0.5, the fp16 curve at about 0.73, and the fp32 "
        "curve rises along the dotted exact curve towards 1.",
    )


def steps_figure(ctx: Context, steps: dict) -> figures.FigureRef:
    """Grouped bars of |update| / lr per coordinate; an infinite update is drawn as a hatched bar marked inf."""
    labels = [k for k in steps if "bf16" not in k]
    fig, ax = figures.new(10, 4.8)
    width = 0.8 / len(labels)
    top = 100.0
    for i, label in enumerate(labels):
        ratios = [abs(x) / LR for x in steps[label]]
        xs = np.arange(len(GRADS)) + (i - (len(labels) - 1) / 2) * width
        color = figures.COLORS[i]
        finite = [math.isfinite(r) for r in ratios]
        ax.bar(xs[finite], np.array(ratios)[finite], width, color=color, label=label)
        for x, r in zip(xs, ratios):
            if not math.isfinite(r):  # drawn to the axis top, hatched, and labelled: never a made-up height
                ax.bar([x], [top * 3], width, color="white", edgecolor=color, hatch="//")
                ax.text(x, top * 1.1, "inf", ha="center", va="bottom", fontsize=8, color=color,
                        bbox={"fc": "white", "ec": "none", "pad": 1})
    ax.axhline(1.0, color="k", ls="--", lw=1, label="lr (the correct size)")
    ax.set(yscale="log", ylim=(0.05, top * 3), xticks=range(len(GRADS)), xticklabels=[f"g = {g:g}" for g in GRADS])
    ax.set(ylabel="|first update| / lr", title="First Adam step from 0 (lr 1e-3): fp16 state vs fp32 arithmetic")
    ax.grid(alpha=0.3, axis="y")
    figures.legend_right(ax)
    return figures.save(
        ctx, fig, "c6_steps.png",
        "Size of Adam's first step per coordinate, in units of the lr (1 is right). torch.optim.Adam with fp16 "
        "state steps by infinity (hatched, 'inf') for the small gradients; eps = 1e-4 makes the g = 1e-3 step ten "
        "lrs; adamlab's fp32 arithmetic steps one lr everywhere.",
        "Grouped bar chart on a log axis over four gradient sizes; the naive fp16 bars for g = 1e-4 and 1e-3 are "
        "hatched and marked inf, adamlab's bars sit on the dashed line at 1.",
    )


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
        advance = ctx.progress(f"C6 monitored Adam run in each format ({monitoring.STEPS} steps)", 1)
        watched = monitoring.monitored_run(ctx.seed)
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
        # in bf16 the average stops where the increment (1 - b2) g^2 drops below half an ulp of v
        "bf16_half_ulp_below_and_at_stall": half_ulps_around(curves["bf16"][-1], torch.bfloat16),
        "monitor": monitoring.metrics(watched),
    }
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
        monitoring.table(metrics["monitor"]),
    ]
    notes = (
        "The fp16 state of torch.optim.Adam holds v = 0 for g = 1e-4 and 1e-3, and eps = 1e-8 is 0 too, so the "
        "step divides by zero. Raising eps to 1e-4 keeps it finite but makes the g = 1e-3 step ten times lr. "
        f"In bf16 the average grows one ulp per step while the increment (1 - beta2) g^2 = {1 - BETA2:g} exceeds "
        f"half an ulp ({metrics['bf16_half_ulp_below_and_at_stall'][0]:.3g} below {curves['bf16'][-1]:g}) and stops "
        f"at {curves['bf16'][-1]:g}, where half an ulp is {metrics['bf16_half_ulp_below_and_at_stall'][1]:.3g}. "
        "adamlab keeps fp32 moments and computes in fp32, then rounds the param once. "
        + monitoring.note(metrics["monitor"])
    )
    figs = [ema_figure(ctx, curves), steps_figure(ctx, steps), monitoring.figure(ctx, watched)]
    return Outcome(metrics, figs, tables, notes)


def judge(metrics: dict) -> bool:
    return (
        not metrics["naive_fp16_small_grad_finite"]
        and metrics["adamlab_fp16_finite"]
        and metrics["adamlab_fp16_max_rel_err"] <= MAX_REL_ERR
    )


def headline(m: dict) -> str:
    naive = m["first_step"]["torch.optim.Adam, fp16, eps 1e-8"]
    return (f"torch.optim.Adam on fp16 params moves the g = 1e-4 coordinate to {naive['0.0001']:g}; adamlab.Adam "
            f"stays within {m['adamlab_fp16_max_rel_err']:.2%} of the lr on every coordinate; eps = 1e-4 instead "
            f"makes a {m['eps_1e-4_workaround_max_ratio']:.0f}x step.")


PARTS = (
    Part("fp16_step", "One Adam step on fp16 params",
         "torch.optim.Adam's fp16 step is non-finite for g = 1e-4, and adamlab.Adam's fp16 step is finite and "
         f"within {MAX_REL_ERR:.0%} of lr in every coordinate.", judge, headline),
)

CLAIM = Claim(
    id="C6",
    title="eps = 1e-8 is not negligible in half precision",
    citation="Kingma & Ba 2015 (the eps term of Algorithm 1); IEEE 754 binary16 and bfloat16 formats",
    statement=(
        "eps only guards the division in Adam's step, and in fp32 it barely matters. In fp16, 1e-8 is below the "
        "smallest subnormal and becomes 0, and the squares of small gradients flush to 0 as well, so an optimizer "
        "that keeps its state and arithmetic in fp16 divides by zero. bf16 has the range but only 8 bits of "
        "precision: a running average with beta2 = 0.999 stops growing once its increments are below half an ulp. "
        "Raising eps hides the symptom and distorts steps; fp32 arithmetic fixes it."
    ),
    setup=(
        f"One Adam step from 0 with lr {LR:g} and gradients {GRADS}: torch.optim.Adam on fp16 and bf16 params "
        "(its state in the param's format, the labelled comparison), the same with eps = 1e-4, adamlab.Adam on the "
        "same params, and torch.optim.Adam in fp32 as the reference. Then the second-moment average of a constant "
        f"gradient, computed with torch's in-place ops in bf16, fp16 and fp32 for {EMA_STEPS} steps. "
        + monitoring.SETUP
    ),
    quick_setup="the same as the full run (it takes a second).",
    parts=PARTS,
    run=run,
)
