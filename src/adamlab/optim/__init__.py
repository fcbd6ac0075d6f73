from .base import Optimizer
from .classes import SGD, Adagrad, Adam, Adamax, AdamW, NAdam, RAdam, RMSprop
from .lowp_state import expand_state_dict

__all__ = ["Adam", "AdamW", "RAdam", "NAdam", "Adamax", "Adagrad", "SGD", "RMSprop", "Optimizer", "expand_state_dict"]
