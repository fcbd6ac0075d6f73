"""C7 on the page: the figure, the tables and the notes, from the metrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .experiment import CONFIGS, CURVE_EVERY, Settings
from .verdict import STALLING

COLORS = dict(zip(CONFIGS, ("black", "tab:blue", "tab:green", "tab:red", "tab:orange", "tab:purple")))
TASKS = {"lm": "transformer LM (C3's), characters", "digits": "MLP on digits"}


def figure(metrics: dict, path: Path) -> Path:
    fig = Figure(figsize=(13, 8), layout="constrained")
    (a, b), (c, d) = fig.subplots(2, 2)
    for ax, key in ((a, "lm"), (b, "digits")):
        s = metrics[key]
        names = list(CONFIGS)
        for i, name in enumerate(names):
            losses = s["configs"][name]["final_val_loss"]
            jitter = np.linspace(-0.1, 0.1, len(losses)) if len(losses) > 1 else [0.0]
            ax.scatter(i + np.asarray(jitter), losses, color=COLORS[name], s=18)
            ax.hlines(np.mean(losses), i - 0.25, i + 0.25, color=COLORS[name])
        ax.axhspan(s["baseline_mean"] - s["tolerance"], s["baseline_mean"] + s["tolerance"], color="gray", alpha=0.2,
                   label="fp32 state +- tolerance")
        ax.set_xticks(range(len(names)), [n.replace(", ", ",\n") for n in names], fontsize=8)
        ax.set(ylabel="final validation loss", title=f"{TASKS[key]}: one dot per seed, bar = mean")
        ax.legend(fontsize=8)
    curves = {name: np.asarray(v["curve"]) for name, v in metrics["lm"]["configs"].items()}
    for name, curve in curves.items():
        c.plot(np.arange(len(curve)) * CURVE_EVERY + CURVE_EVERY, curve, color=COLORS[name], label=name)
    late = np.concatenate([curve[len(curve) // 4 :] for curve in curves.values()])  # past the steep start
    c.set_ylim(late.min() - 0.02, late.max() + 0.02)
    c.set(xlabel="step", ylabel=f"training loss ({CURVE_EVERY}-step mean, over seeds)",
          title="Transformer LM, after the first quarter of training")
    c.legend(fontsize=8)
    check = metrics["one_step"]
    labels = ["first moment", "second moment", "update m/(sqrt(v)+eps)"]
    keys = ["exp_avg", "exp_avg_sq", "update"]
    x = np.arange(3)
    for offset, (prefix, name, color) in zip((-0.27, 0.0, 0.27), (("step", "8-bit step vs fp32 step", "tab:green"),
                                                                  ("ours", "adamlab's root codes", "tab:blue"),
                                                                  ("map", "dynamic map (paper)", "tab:gray"))):
        # the step's own update used the unrounded moments: no bar for it
        med = [check[f"{prefix}_{k}"]["median"] if prefix != "step" or k != "update" else np.nan for k in keys]
        p95 = [check[f"{prefix}_{k}"]["p95"] if prefix != "step" or k != "update" else np.nan for k in keys]
        d.bar(x + offset, med, width=0.25, color=color, label=f"{name}: median")
        d.scatter(x + offset, p95, color=color, marker="_", s=200)
    d.set_xticks(x, labels)
    d.set(ylabel="relative error per block of 256", yscale="log",
          title="One step from the same state (bar: median, tick: 95th percentile)")
    d.legend(fontsize=8)
    for ax in (a, b, c, d):
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110)
    return path


def tables(metrics: dict) -> list[dict]:
    out = []
    for key in ("lm", "digits"):
        s = metrics[key]
        rows = []
        for name, v in s["configs"].items():
            total = v["state_bytes_per_param"] + v["param_bytes_per_param"]
            rows.append([name, ", ".join(f"{x:.4f}" for x in v["final_val_loss"]), f"{v['mean']:.4f}",
                         f"{100 * s['gaps'][name] / s['baseline_mean']:+.2f}%", f"{v['state_bytes_per_param']:.2f}",
                         f"{total:.2f}"])
        out.append({"caption": f"{TASKS[key]}: final validation loss (tolerance {s['tolerance']:.4f})",
                    "columns": ["way", "per seed", "mean", "vs fp32 state", "state B/param", "param + state B/param"],
                    "rows": rows})
    check = metrics["one_step"]
    rows = []
    for prefix, name in (("step", "8-bit step vs fp32 step"), ("ours", "adamlab codes, round trip"),
                         ("map", "dynamic map, round trip")):
        cells = [_percent(check[f"{prefix}_{k}"]) for k in ("exp_avg", "exp_avg_sq")]
        # the step's own update uses the moments before they are rounded: their rounding shows in the next
        # update, which the round trips give
        cells.append("(next step)" if prefix == "step" else _percent(check[f"{prefix}_update"]))
        rows.append([name, *cells])
    out.append({"caption": f"One step from the same state ({check['tensors']} tensors >= 4096 elements, after "
                           f"{check['after_steps']} fp32 steps): relative error per block, "
                           "median / 95th percentile / max",
                "columns": ["", "first moment", "second moment", "update"], "rows": rows})
    return out


def _percent(stats: dict) -> str:
    return f"{100 * stats['median']:.2f}% / {100 * stats['p95']:.2f}% / {100 * stats['max']:.3g}%"


def notes(metrics: dict, quick: bool) -> str:
    lm, dg = metrics["lm"], metrics["digits"]
    check = metrics["one_step"]
    flushed = check["flushed_second_moments"]
    text = (
        f"On the transformer, bf16 params rounded to nearest end {lm['gaps'][STALLING]:+.3f} from fp32 state "
        f"(tolerance {lm['tolerance']:.3f}); on the digits MLP {dg['gaps'][STALLING]:+.4f} "
        f"(tolerance {dg['tolerance']:.4f}). 8-bit state keeps "
        f"{lm['configs']['8-bit state']['state_bytes_per_param']:.2f} bytes per param of state on the transformer "
        "(tensors under 4096 elements keep fp32 state) against 8 for fp32. One step from the same state, the "
        f"median block's update error through adamlab's codes is {100 * check['ours_update']['median']:.2f}% "
        f"against {100 * check['map_update']['median']:.2f}% through the paper's dynamic map."
    )
    if flushed["map"] or flushed["ours"]:
        text += (f" The map rounds {flushed['map']} non-zero second moments to zero under a non-zero first moment "
                 f"(adamlab's codes {flushed['ours']}); there the update is m / eps.")
    if quick:
        text += " Quick mode: one seed and a few steps, too few to judge."
    return text


def setup(settings: Settings) -> str:
    s = settings
    return (
        f"Six ways: fp32 state, bf16 state and 8-bit state (adamlab.AdamW, fp32 params), and the whole model in "
        f"bf16 with updates rounded to nearest, stochastically or with a Kahan buffer (fp32 state). Transformer: "
        f"C3's 2-layer decoder (d_model 64, context {s.lm_context}) on the character corpus, batch {s.lm_batch}, "
        f"{s.lm_steps} steps, lr {s.lm_lr}, 10% linear warmup then cosine decay to 0, {s.lm_seeds} seeds; validation "
        f"loss on {s.val_windows} fixed windows. MLP 64-256-256-10 on scikit-learn's digits, batch {s.digits_batch}, "
        f"{s.digits_steps} steps, lr {s.digits_lr}, same schedule, {s.digits_seeds} seeds; validation loss on the "
        f"297 validation images. Each seed fixes the initialisation and data order for all six ways. One-step "
        f"check: the transformer's fp32 state after {s.one_step_after} steps, on the 8-bit codes' levels, one 8-bit "
        "step against one torch.optim.AdamW step with the same gradient; and the new fp32 moments through "
        "adamlab's codes and through the paper's dynamic map."
    )
