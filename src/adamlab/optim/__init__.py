from .base import Optimizer
from .classes import SGD, Adagrad, Adam, Adamax, AdamW, NAdam, RAdam, RMSprop

__all__ = ["Adam", "AdamW", "RAdam", "NAdam", "Adamax", "Adagrad", "SGD", "RMSprop", "Optimizer"]
