"""The figure of ``adamlab schedule``: the whole schedule, with the warmup drawn large enough to see."""

from __future__ import annotations

from matplotlib.figure import Figure

from adamlab.schedules import plot


def title(warmup: int, total: int, min_ratio: float) -> str:
    head = f"linear warmup over {warmup:,} steps, then " if warmup else ""
    end = f"{min_ratio:.0%} of the base lr" if min_ratio else "0"
    return f"Learning-rate schedule\n{head}cosine decay to {end} at step {total:,}"


def draw(schedule, warmup: int, total: int, min_ratio: float) -> Figure:
    """The schedule over every step; when the warmup is short next to the run, an inset shows it up close."""
    fig = Figure(figsize=(7, 4), layout="constrained")
    ax = fig.add_subplot()
    plot(schedule, total, ax=ax)
    ax.set(xlabel="step", ylabel="lr / base lr", ylim=(0, 1.05), xlim=(0, total))
    ax.set_title(title(warmup, total, min_ratio), fontsize=10)
    if warmup:
        ax.axvline(warmup, color="gray", ls=":", lw=1)
    if 0 < warmup < total / 10:  # too narrow to see at full scale
        inset = ax.inset_axes([0.08, 0.1, 0.36, 0.42])  # lower left: below the curve, which starts near 1
        shown = min(total, 3 * warmup)
        steps = range(shown)
        inset.plot(steps, [schedule(s) for s in steps], lw=1.5, marker="." if shown <= 150 else None, ms=3)
        inset.axvline(warmup, color="gray", ls=":", lw=1)
        inset.set(xlim=(0, shown), ylim=(0, 1.05), title=f"first {shown:,} steps", xlabel="step")
        inset.title.set_fontsize(8)
        inset.tick_params(labelsize=7)
        inset.xaxis.label.set_fontsize(7)
        inset.grid(alpha=0.3)
    return fig
