"""adamlab: the Adam family of optimizers, exact to the math and drop-in for PyTorch."""

from . import math, schedules
from .groups import param_groups
from .monitor import Monitor
from .optim import SGD, Adagrad, Adam, Adamax, AdamW, NAdam, Optimizer, RAdam, RMSprop, expand_state_dict

__all__ = ["Adam", "AdamW", "RAdam", "NAdam", "Adamax", "Adagrad", "SGD", "RMSprop", "Optimizer", "param_groups",
           "Monitor", "expand_state_dict", "schedules", "math"]
__version__ = "0.1.0"
