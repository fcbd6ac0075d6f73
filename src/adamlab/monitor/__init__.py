"""What the optimizer is doing, computed from the state its steps produce (see docs/monitor.md)."""

from .core import Monitor, skip_counters
from .output import CSVWriter, TensorBoardWriter, plot_history

__all__ = ["Monitor", "CSVWriter", "TensorBoardWriter", "plot_history", "skip_counters"]
