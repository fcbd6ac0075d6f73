"""One record per optimizer: options, state, rule and plan in one place (see :mod:`.base`)."""

from .adagrad import ADAGRAD
from .adam import ADAM
from .adamax import ADAMAX
from .base import Algorithm, Config, Option, Plan, apply_update
from .nadam import NADAM
from .radam import RADAM
from .rmsprop import RMSPROP
from .sgd import SGD

__all__ = ["ADAM", "RADAM", "NADAM", "ADAMAX", "ADAGRAD", "SGD", "RMSPROP", "Algorithm", "Config", "Option",
           "Plan", "apply_update"]
