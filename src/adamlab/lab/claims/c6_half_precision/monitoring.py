"""C6 seen through adamlab.Monitor: what a half-precision run loses, even with adamlab's fp32 arithmetic.

One small extra run: adamlab.Adam on the same params and gradients stored in
fp32, fp16 and bf16 (one param group each), with gradients spread over ten
decades so that every regime appears. The monitor reports, per format, the
updates that rounding the param to its format throws away, the coordinates
whose second moment is exactly zero (fp16 gradients below 2^-25 arrive as 0),
and those where eps outweighs sqrt(vhat). Every number and curve here is read
from the monitor's history.
"""

from __future__ import annotations

import torch

import adamlab

from ...framework import figures
from ...framework.claim import Context, FigureRef

FORMATS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
COORDS, STEPS, LR, EPS = 4096, 50, 1e-3, 1e-8
GRAD_DECADES = (-10.0, 0.0)  # log10 of the gradient scales, uniform in between
STATS = ("lost_to_rounding", "v_zero", "eps_dominated")
SETUP = (f"Last, adamlab.Monitor on adamlab.Adam (lr {LR:g}, eps {EPS:g}) for {STEPS} steps over {COORDS} N(0,1) "
         "params held in fp32, fp16 and bf16, whose gradients are N(0,1) times a fixed scale per coordinate, "
         f"log-uniform over 1e{GRAD_DECADES[0]:g} to 1e{GRAD_DECADES[1]:g}.")
TITLES = {"lost_to_rounding": "updates lost to rounding the param", "v_zero": "coordinates with v == 0",
          "eps_dominated": "coordinates with sqrt(vhat) < eps"}


def problem(seed: int, coords: int = COORDS) -> tuple[torch.Tensor, torch.Tensor, torch.Generator]:
    """N(0,1) params, each coordinate's gradient scale (log-uniform over GRAD_DECADES), and the generator
    that draws the gradients: N(0,1) times the scale, one draw per step."""
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(coords, generator=gen)
    scale = 10 ** (GRAD_DECADES[0] + (GRAD_DECADES[1] - GRAD_DECADES[0]) * torch.rand(coords, generator=gen))
    return theta, scale, gen


def monitored_run(seed: int, steps: int = STEPS, coords: int = COORDS) -> list[dict]:
    """The monitor's records of adamlab.Adam (lr 1e-3, eps 1e-8) on the problem's params in each format
    (one param group each, named after the format); every format gets the same values, rounded to it."""
    theta, scale, gen = problem(seed, coords)
    params = {name: theta.to(dtype) for name, dtype in FORMATS.items()}
    opt = adamlab.Adam([{"params": [p], "name": name} for name, p in params.items()], lr=LR, eps=EPS)
    with adamlab.Monitor(opt, every=1, sample=None, read_every=steps) as monitor:
        for _ in range(steps):
            g = torch.randn(coords, generator=gen) * scale
            for p in params.values():
                p.grad = g.to(p.dtype)
            opt.step()
        return monitor.history


def series(history: list[dict], name: str, stat: str) -> list[float]:
    return [r[f"{name}/{stat}"] for r in history if f"{name}/{stat}" in r]


def metrics(history: list[dict]) -> dict:
    """Each format's fractions at step 1 and at the last step (lost_to_rounding only for fp16 and bf16)."""
    out: dict = {"steps": len(history)}
    for stat in STATS:
        out[stat] = {name: {"step1": s[0], "last": s[-1]} for name in FORMATS if (s := series(history, name, stat))}
    return out


def table(m: dict) -> dict:
    rows = [[name, *[m[stat][name][when] if name in m[stat] else "n/a (fp32 param)"
                     for stat in STATS for when in ("step1", "last")]] for name in FORMATS]
    return {
        "caption": f"adamlab.Monitor on adamlab.Adam (lr {LR:g}, eps {EPS:g}), {COORDS} N(0,1) params per format, "
        f"gradient scales log-uniform over 1e{GRAD_DECADES[0]:g} to 1e{GRAD_DECADES[1]:g}: fractions of "
        f"coordinates at step 1 and step {m['steps']}",
        "columns": ["param format", *[f"{TITLES[stat]}, {when}" for stat in STATS
                                      for when in ("step 1", f"step {m['steps']}")]],
        "rows": rows,
    }


def figure(ctx: Context, history: list[dict]) -> FigureRef:
    fig, axes = figures.new(13, 4.2, 1, len(STATS), sharey=True)
    for ax, stat in zip(axes, STATS):
        for i, name in enumerate(FORMATS):
            values = series(history, name, stat)
            if values:
                ax.plot([r["step"] for r in history][:len(values)], values, **figures.style(i), markevery=(i, 6),
                        ms=4, label=f"{name} params")
        ax.set(xlabel="step", title=TITLES[stat], ylim=(-0.03, 1.03))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of coordinates")
    figures.legend_below(fig, axes, ncols=3)
    return figures.save(
        ctx, fig, "c6_monitor.png",
        "adamlab.Monitor on one Adam run (lr 1e-3) over the same params in three formats, gradients spread over "
        "ten decades. Rounding the param discards most bf16 updates and, once updates shrink below the lr, many "
        "fp16 ones (left), fp16 gradients below 2^-25 reach the optimizer as exact zeros (middle), and eps "
        "outweighs sqrt(vhat) for the smallest gradients in every format (right).",
        "Three panels of fractions over 50 steps for fp32, fp16 and bf16 params: updates lost to rounding, high "
        "for bf16 and growing for fp16; the share of exactly-zero second moments, non-zero only for fp16; and "
        "the share where eps dominates, similar in all formats (the fp32 and bf16 lines coincide in the last "
        "two panels).",
    )


def note(m: dict) -> str:
    lost, zero, eps = m["lost_to_rounding"], m["v_zero"], m["eps_dominated"]
    return (
        f"adamlab.Monitor shows what remains even with fp32 arithmetic: at lr {LR:g} rounding the param drops "
        f"{lost['bf16']['last']:.0%} of the bf16 updates and {lost['fp16']['last']:.0%} of the fp16 ones by step "
        f"{m['steps']} ({lost['bf16']['step1']:.0%} and {lost['fp16']['step1']:.0%} at step 1, when every update is "
        f"a full lr); {zero['fp16']['last']:.1%} of the fp16 second moments are exactly zero, against "
        f"{zero['fp32']['last']:.1%} in fp32; eps outweighs sqrt(vhat) on {eps['fp32']['last']:.1%} of the fp32 "
        f"coordinates."
    )
