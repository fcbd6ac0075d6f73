"""Draw a schedule with matplotlib, imported only when a plot is asked for."""

from __future__ import annotations

from .pieces import check_steps

#: plots of longer schedules evaluate this many evenly spaced steps
MAX_POINTS = 10_000


def plot(schedule, total_steps, path=None, ax=None):
    """Draw ``schedule(s)`` for s = 0 .. total_steps-1 and return the figure.

    No pyplot: the figure is not registered globally, and saving uses Agg.
    Needs matplotlib (the ``lab`` extra).

    Args:
        schedule (callable): step -> lr multiplier, such as any schedule here.
        total_steps (int): how many steps to draw, in [1, inf); past 10,000, that many evenly spaced steps.
        path (str or os.PathLike, default None): where to save the figure (any format matplotlib knows).
        ax (matplotlib.axes.Axes, default None): an existing Axes to draw into (a new figure otherwise).

    Returns:
        matplotlib.figure.Figure: the figure drawn into (``ax.figure`` when ``ax`` is given).
    """
    total = check_steps("total_steps", total_steps, low=1)
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plot needs matplotlib: pip install 'adamlab[lab]'") from None

    if total <= MAX_POINTS:
        steps = list(range(total))
    else:
        steps = sorted({round(i * (total - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)})
    values = [schedule(s) for s in steps]

    if ax is None:
        fig = Figure(figsize=(6, 3.5), layout="constrained")
        ax = fig.add_subplot()
    else:
        fig = ax.figure
    ax.plot(steps, values, lw=1.5)
    ax.set_xlabel("optimizer steps taken (s)")
    ax.set_ylabel("lr / base lr")
    ax.set_ylim(bottom=0)
    ax.set_title(repr(schedule), fontsize=7)
    ax.grid(alpha=0.3)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig
