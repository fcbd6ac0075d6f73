"""The one figure helper every claim uses: a figure, distinct method styles, legends off the data, saving.

Figures are matplotlib ``Figure`` objects (no pyplot, so nothing is registered
globally and any backend works), laid out by the constrained-layout engine.
"""

from __future__ import annotations

from matplotlib.figure import Figure

from .claim import Context, FigureRef

DPI = 110

# colour and line style both differ from one method to the next, so lines stay apart in greyscale too
COLORS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:orange", "tab:brown", "tab:cyan", "tab:olive")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2, 2, 2)))
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def style(i: int) -> dict:
    """Plot keywords for the i-th method: its own colour, line style and marker."""
    return {"color": COLORS[i % len(COLORS)], "linestyle": LINESTYLES[i % len(LINESTYLES)],
            "marker": MARKERS[i % len(MARKERS)]}


def line_style(i: int) -> dict:
    """As :func:`style`, without the marker (for dense curves)."""
    return {k: v for k, v in style(i).items() if k != "marker"}


def new(width: float, height: float, rows: int = 1, cols: int = 1, **subplots):
    """A constrained-layout figure and its axes (a single Axes when rows = cols = 1)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=True, **subplots)


def legend_below(fig: Figure, axes=None, ncols: int = 3, **kw) -> None:
    """One legend under the axes, outside every plotting area, from the labelled artists of ``axes``."""
    axes = fig.axes if axes is None else list(axes)
    handles, labels = [], []
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            if label not in labels:
                handles.append(h)
                labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncols=min(ncols, max(len(labels), 1)), fontsize=8, **kw)


def legend_right(ax, **kw) -> None:
    """A legend to the right of one Axes, outside its plotting area."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=8, **kw)


def mark_diverged(ax, xs, y, color, label: str | None = "diverged") -> None:
    """Diverged runs as crosses at height ``y`` (an axis edge), never at a made-up value."""
    ax.scatter(xs, [y] * len(xs), marker="x", s=60, color=color, clip_on=False, zorder=5, label=label)


def save(ctx: Context, fig: Figure, name: str, caption: str, alt: str | None = None) -> FigureRef:
    """Write ``fig`` to out_dir/figures/name and return it with its caption and alt text."""
    path = ctx.figure_path(name)
    fig.savefig(path, dpi=DPI)
    return FigureRef(path, caption, alt or caption)
