"""C3 seen through adamlab.Monitor: the transformer's update RMS and effective steps with and without warmup.

The first seed's runs carry a monitor on each of their first MONITOR_STEPS
steps (every coordinate read, so the numbers are exact); it is removed after
them, and a monitored run is bit-identical to an unmonitored one. Every
number and curve here is read from the monitor's history.
"""

from __future__ import annotations

import dataclasses

import numpy as np

import adamlab

from ...framework import figures
from ...framework.claim import Context, FigureRef

MONITOR_STEPS = 100  # the steps where the variants differ most (linear warmup ends at 100)
EARLY = 20  # the window the metrics average over, as the claim's update-ratio metric does
PERCENTILES = (1, 50, 99)
GROUP = "group0"


class FirstSteps:
    """A monitor on an optimizer's first ``steps`` steps, closed after them so the rest of the run pays nothing."""

    def __init__(self, optimizer, steps: int):
        self.steps, self.history = steps, []
        self.monitor = adamlab.Monitor(optimizer, every=1, sample=None, percentiles=PERCENTILES,
                                       read_every=steps) if steps > 0 else None

    def stepped(self, done: int) -> None:
        """Call after each step with the number of steps done; keeps the history once the window is over."""
        if self.monitor is not None and done >= self.steps:
            self.history = self.monitor.history
            self.monitor.close()
            self.monitor = None


def watch_first_seed(runs: list) -> list:
    """The same runs, the first seed's with a monitor over its first MONITOR_STEPS steps."""
    first = min(r.seed for r in runs)
    return [dataclasses.replace(r, monitor_steps=min(MONITOR_STEPS, r.steps)) if r.seed == first else r
            for r in runs]


def histories(results: list[dict]) -> dict[str, list[dict]]:
    """variant -> the monitor's records of its monitored run."""
    return {r["run"]["variant"]: r["monitor"] for r in results if r.get("monitor")}


def series(history: list[dict], stat: str) -> np.ndarray:
    return np.array([r[f"{GROUP}/{stat}"] for r in history])


def metrics(results: list[dict]) -> dict:
    watched = histories(results)
    seed = next(r["run"]["seed"] for r in results if r.get("monitor"))
    out: dict = {"seed": seed, "steps": len(next(iter(watched.values())))}
    for variant, history in watched.items():
        rms, early = series(history, "update_rms"), slice(0, EARLY)
        out[variant] = {
            "update_rms_step1": rms[0],
            "update_rms_max": rms.max(),
            "update_rms_max_step": int(rms.argmax()) + 1,
            f"update_to_param_mean_first{EARLY}": series(history, "update_to_param")[early].mean(),
            **{f"effective_step_p{q}_max_first{EARLY}": series(history, f"effective_step_p{q}")[early].max()
               for q in (50, 99)},
            "effective_step_p50_last": series(history, "effective_step_p50")[-1],
        }
    return out


def table(m: dict, names: dict[str, str]) -> dict:
    keys = ("update_rms_step1", "update_rms_max", "update_rms_max_step", f"update_to_param_mean_first{EARLY}",
            f"effective_step_p50_max_first{EARLY}", f"effective_step_p99_max_first{EARLY}", "effective_step_p50_last")
    variants = [v for v in names if v in m]
    return {
        "caption": f"adamlab.Monitor on the transformer, seed {m['seed']}, first {m['steps']} steps (every "
        "coordinate): update RMS, update RMS / param RMS, and the effective step lr_t / (1 - b1^t) / "
        "(sqrt(vhat) + eps) over all coordinates (for RAdam: the step it applies, rectified or not)",
        "columns": ["variant", "update RMS, step 1", "update RMS, max", "max at step",
                    f"mean update/param, steps 1-{EARLY}", f"effective step p50, max over steps 1-{EARLY}",
                    f"p99, max over steps 1-{EARLY}", f"effective step p50, step {m['steps']}"],
        "rows": [[names[v], *[m[v][k] for k in keys]] for v in variants],
    }


def figure(ctx: Context, results: list[dict], names: dict[str, str]) -> FigureRef:
    watched = histories(results)
    fig, (a, b) = figures.new(12, 4.6, 1, 2)
    for k, variant in enumerate(v for v in names if v in watched):
        history, look = watched[variant], figures.line_style(k)
        steps = [r["step"] for r in history]
        a.plot(steps, series(history, "update_rms"), **look, label=names[variant])
        b.plot(steps, series(history, "effective_step_p50"), **look)
        if variant in ("none", "untuned"):  # two bands are readable; four overlap
            b.fill_between(steps, series(history, "effective_step_p1"), series(history, "effective_step_p99"),
                           color=look["color"], alpha=0.15, lw=0)
    a.set(yscale="log", xlabel="step", ylabel="update RMS", title="Size of each update (RMS over coordinates)")
    b.set(yscale="log", xlabel="step", ylabel="effective step (median; band: p1 to p99)",
          title="Per-coordinate step size lr_t / (1 - b1^t) / (sqrt(vhat) + eps)")
    for ax in (a, b):
        ax.grid(alpha=0.3, which="both")
    figures.legend_below(fig, (a,), ncols=4)
    steps = len(next(iter(watched.values())))
    return figures.save(
        ctx, fig, "c3_monitor.png",
        f"adamlab.Monitor's view of the transformer's first {steps} steps, one seed. Without warmup every "
        "coordinate's step is large from step 1 and the updates are largest at the very start (left), while "
        "warmup lets the effective steps grow slowly as the second moments fill in (right, bands for no warmup "
        "and the untuned rule).",
        f"Two log-scale panels over the first {steps} steps: the update RMS of the four variants, highest at the "
        "start for no warmup and rising from small values with warmup; and the median effective step with p1-p99 "
        "bands for no warmup and the untuned rule.",
    )


def note(m: dict) -> str:
    none, untuned = m.get("none"), m.get("untuned")
    if none is None or untuned is None:
        return ""
    return (
        f"adamlab.Monitor (seed {m['seed']}): without warmup the update RMS is {none['update_rms_step1']:.2g} at "
        f"step 1, its largest over the first {m['steps']} steps being {none['update_rms_max']:.2g} (step "
        f"{none['update_rms_max_step']}); with the untuned rule it starts at {untuned['update_rms_step1']:.2g} and "
        f"peaks at {untuned['update_rms_max']:.2g} (step {untuned['update_rms_max_step']}). Over steps 1-{EARLY} "
        "the median effective step "
        f"reaches {none[f'effective_step_p50_max_first{EARLY}']:.3g} without warmup against "
        f"{untuned[f'effective_step_p50_max_first{EARLY}']:.3g} with it."
    )
