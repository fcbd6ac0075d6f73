"""C7 on the page: the figure, the tables and the notes, from the metrics."""

from __future__ import annotations

import numpy as np

from ...framework import figures
from ...framework.claim import Context
from .training import CURVE_EVERY, WAYS

TASKS = {"lm": "transformer LM (C3's), characters", "digits": "MLP on digits"}
STALLING = "bf16 params, nearest"
SOURCES = (("step", "8-bit step vs fp32 step"), ("ours", "adamlab's codes, round trip"),
           ("map", "dynamic map (paper), round trip"))


def _finals(ax, s: dict, title: str) -> None:
    """Final validation loss per seed and way, the mean as a bar, fp32 state's tolerance band."""
    names = list(WAYS)
    ax.axhspan(s["baseline_mean"] - s["tolerance"], s["baseline_mean"] + s["tolerance"], color="gray", alpha=0.2,
               lw=0, label="fp32 state +- tolerance")
    for i, name in enumerate(names):
        losses = s["ways"][name]["final_val_loss"]
        jitter = np.linspace(-0.12, 0.12, len(losses)) if len(losses) > 1 else np.zeros(1)
        ax.scatter(i + jitter, losses, color=figures.COLORS[i], marker=figures.MARKERS[i], s=18)
        ax.hlines(np.mean(losses), i - 0.25, i + 0.25, color=figures.COLORS[i])
    ax.set_xticks(range(len(names)), [n.replace(" ", "\n") for n in names], fontsize=7)
    ax.set(ylabel="final validation loss", title=f"{title}: dot = seed, bar = mean")
    ax.grid(alpha=0.3)


def _curves(ax, lm: dict) -> None:
    curves = {name: np.asarray(v["curve"]) for name, v in lm["ways"].items()}
    for i, (name, curve) in enumerate(curves.items()):
        ax.plot(np.arange(len(curve)) * CURVE_EVERY + CURVE_EVERY, curve, **figures.line_style(i), label=name)
    late = np.concatenate([curve[len(curve) // 2 :] for curve in curves.values()])  # past the steep start
    ax.set_ylim(late.min() - 0.03, late.max() + 0.03)
    ax.set_xlim(len(next(iter(curves.values()))) * CURVE_EVERY / 2, None)
    ax.set(xlabel="step", ylabel=f"training loss ({CURVE_EVERY}-step mean over seeds)",
           title="Transformer LM, second half of training")
    ax.grid(alpha=0.3)


def _one_step(ax, check: dict) -> None:
    keys, labels = ("exp_avg", "exp_avg_sq", "update"), ("first moment", "second moment", "update m/(sqrt(v)+eps)")
    x = np.arange(3)
    for j, (prefix, name) in enumerate(SOURCES):
        # the step's own update used the moments before they were rounded: no bar for it
        med = [np.nan if (prefix, k) == ("step", "update") else check[f"{prefix}_{k}"]["median"] for k in keys]
        p95 = [np.nan if (prefix, k) == ("step", "update") else check[f"{prefix}_{k}"]["p95"] for k in keys]
        ax.bar(x + (j - 1) * 0.27, med, width=0.25, color=figures.COLORS[j], hatch=(None, "//", "..")[j],
               edgecolor="black", lw=0.5, label=f"{name}: median")
        ax.scatter(x + (j - 1) * 0.27, p95, color="black", marker="_", s=200)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set(ylabel="relative error per block of 256", yscale="log",
           title="One step from the same state (bar: median, tick: 95th percentile)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncols=1, fontsize=8)  # below: off the data


def figure(ctx: Context, m: dict) -> figures.FigureRef:
    fig, ((a, b), (c, d)) = figures.new(13, 9, 2, 2)
    _finals(a, m["lm"], TASKS["lm"])
    _finals(b, m["digits"], TASKS["digits"])
    _curves(c, m["lm"])
    figures.legend_right(b)
    figures.legend_right(c)
    _one_step(d, m["one_step"])
    return figures.save(
        ctx, fig, "c7_low_precision.png",
        "Top: final validation loss of each way of keeping the numbers, one dot per paired seed, against fp32 "
        "state's tolerance band; bf16 params rounded to nearest should sit above the band and every other way "
        "inside it. Bottom: the transformer's training loss late in training, where the nearest-rounded bf16 run "
        "stalls, and the one-step error of the 8-bit moments against fp32.",
        "Two dot plots of final loss for six ways on two tasks with a grey band around fp32 state, the "
        "nearest-rounding column above the band; a line plot of late training loss with one curve above the "
        "others; a bar chart of per-block relative errors on a log axis.",
    )


def tables(m: dict) -> list[dict]:
    out = []
    for key in ("lm", "digits"):
        s = m[key]
        rows = []
        for name, v in s["ways"].items():
            total = v["state_bytes_per_param"] + v["param_bytes_per_param"]
            rows.append([name, ", ".join(f"{x:.4f}" for x in v["final_val_loss"]),
                         f"{v['mean']:.4f} +- {v['std']:.4f}", f"{s['gaps'][name]:+.4f}",
                         f"{100 * s['gaps'][name] / s['baseline_mean']:+.2f}%", f"{v['state_bytes_per_param']:.2f}",
                         f"{total:.2f}"])
        out.append({"caption": f"{TASKS[key]}: final validation loss over {s['seeds']} paired seeds (tolerance "
                               f"{s['tolerance']:.4f})",
                    "columns": ["way", "per seed", "mean +- sd", "gap to fp32 state", "gap %", "state B/param",
                                "param + state B/param"],
                    "rows": rows})
    check = m["one_step"]
    rows = []
    for prefix, name in SOURCES:
        cells = [_percent(check[f"{prefix}_{k}"]) for k in ("exp_avg", "exp_avg_sq")]
        # the step's own update uses the moments before they are rounded; their rounding shows in the next
        # update, which the round trips give
        cells.append("(next step)" if prefix == "step" else _percent(check[f"{prefix}_update"]))
        rows.append([name, *cells])
    out.append({"caption": f"One step from the same state ({check['tensors']} tensors of 4096+ elements, after "
                           f"{check['after_steps']} fp32 steps): relative error per block, median / 95th percentile "
                           "/ max",
                "columns": ["", "first moment", "second moment", "update"], "rows": rows})
    return out


def _percent(stats: dict) -> str:
    return f"{100 * stats['median']:.2f}% / {100 * stats['p95']:.2f}% / {100 * stats['max']:.3g}%"


def notes(m: dict) -> str:
    lm, dg, check = m["lm"], m["digits"], m["one_step"]
    flushed = check["flushed_second_moments"]
    text = (
        f"On the transformer, bf16 params rounded to nearest end {lm['gaps'][STALLING]:+.3f} from fp32 state "
        f"(tolerance {lm['tolerance']:.3f}); on the digits MLP {dg['gaps'][STALLING]:+.4f} "
        f"(tolerance {dg['tolerance']:.4f}). 8-bit state keeps "
        f"{lm['ways']['8-bit state']['state_bytes_per_param']:.2f} bytes of state per param on the transformer "
        "(tensors under 4096 elements keep fp32 state) against 8 for fp32. One step from the same state, the "
        f"median block's update error through adamlab's codes is {100 * check['ours_update']['median']:.2f}% "
        f"against {100 * check['map_update']['median']:.2f}% through the paper's dynamic map."
    )
    if flushed["map"] or flushed["ours"]:
        text += (f" The map rounds {flushed['map']} non-zero second moments to zero under a non-zero first moment "
                 f"(adamlab's codes {flushed['ours']}); there the update is m / eps.")
    return text
