"""Where a monitor's records go: a CSV file, TensorBoard, a figure.

Writers are callbacks: ``Monitor(opt, callback=CSVWriter("run.csv"))``.
Each receives a record (a dict of floats with a ``step`` key) when the
monitor reads it, and is closed by ``Monitor.close()``.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from fnmatch import fnmatchcase


class CSVWriter:
    """Records as rows of ``step,name,value``: long format, so groups and params can come and go.

    ``pandas.read_csv(path).pivot(index="step", columns="name", values="value")`` makes it wide.
    """

    def __init__(self, path):
        self._file = open(path, "w", newline="")
        self._csv = csv.writer(self._file)
        self._csv.writerow(["step", "name", "value"])

    def __call__(self, record: dict) -> None:
        step = int(record["step"])
        self._csv.writerows([step, k, repr(v)] for k, v in record.items() if k != "step")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class TensorBoardWriter:
    """Records as TensorBoard scalars (``torch.utils.tensorboard``, which needs the tensorboard package).

    ``log_dir`` is a directory, or a ``SummaryWriter`` to share with the rest of a training loop.
    """

    def __init__(self, log_dir=None):
        if log_dir is not None and hasattr(log_dir, "add_scalar"):
            self._writer, self._own = log_dir, False
        else:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ImportError("TensorBoardWriter needs the tensorboard package: pip install tensorboard") from e
            self._writer, self._own = SummaryWriter(log_dir), True

    def __call__(self, record: dict) -> None:
        step = int(record["step"])
        for k, v in record.items():
            if k != "step":
                self._writer.add_scalar(k, v, step)

    def close(self) -> None:
        self._writer.flush()
        if self._own:
            self._writer.close()


#: what the default figure shows, one panel each: statistic suffixes, log scale or not
PANELS = (
    (("update_to_param",), True),
    (("effective_step_p*",), True),
    (("eps_dominated", "v_zero", "lost_to_rounding"), False),
    (("grad_norm",), True),
    (("vmax_over_v", "radam_rect"), False),
)


def plot_history(history: list[dict], keys: Iterable[str] | None = None, path=None, title: str | None = None):
    """A figure of the records over steps: one panel per kind of statistic, one line per group (or param).

    ``keys``: glob patterns over record keys (``"*/update_to_param"``,
    ``"group0/*"``), one panel each; by default the panels of :data:`PANELS`
    that have data. Saved to ``path`` when given. Returns the figure.
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    names = [k for r in history[:1] for k in r if k != "step"]
    for r in history[1:]:
        names += [k for k in r if k not in names and k != "step"]
    if keys is not None:
        panels = [([k for k in names if fnmatchcase(k, pat)], _positive(history, pat)) for pat in keys]
    else:
        panels = []
        for suffixes, log in PANELS:
            chosen = [k for k in names if any(fnmatchcase(k.rsplit("/", 1)[-1], s) for s in suffixes)]
            panels.append((chosen, log))
    panels = [(ks, log) for ks, log in panels if ks]
    fig, axes = plt.subplots(len(panels) or 1, 1, figsize=(7, 2.4 * max(1, len(panels))), sharex=True, squeeze=False)
    for ax, (ks, log) in zip(axes[:, 0], panels):
        for k in ks:
            steps = [r["step"] for r in history if k in r and math.isfinite(r[k])]
            values = [r[k] for r in history if k in r and math.isfinite(r[k])]
            ax.plot(steps, values, label=k, lw=1.2)
        if log and all(r[k] > 0 for r in history for k in ks if k in r and math.isfinite(r[k])):
            ax.set_yscale("log")
        ax.legend(fontsize=7, loc="best")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _positive(history, pattern) -> bool:
    """Log scale for a pattern whose values span more than a decade and stay positive."""
    values = [v for r in history for k, v in r.items() if fnmatchcase(k, pattern) and math.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) > 10 * min(values)
