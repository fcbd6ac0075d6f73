from .adam import Adam, AdamW, RAdam
from .base import Optimizer
from .sgd import SGD, RMSprop

__all__ = ["Adam", "AdamW", "RAdam", "SGD", "RMSprop", "Optimizer"]
