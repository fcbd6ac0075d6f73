"""adamlab: the Adam family of optimizers, exact to the math and drop-in for PyTorch."""

from . import math, schedules
from .groups import param_groups
from .monitor import Monitor
from .optim import SGD, Adagrad, Adam, Adamax, AdamW, NAdam, Optimizer, RAdam, RMSprop

__all__ = ["Adam", "AdamW", "RAdam", "NAdam", "Adamax", "Adagrad", "SGD", "RMSprop", "Optimizer", "param_groups",
           "Monitor", "schedules", "math"]
__version__ = "0.1.0"
