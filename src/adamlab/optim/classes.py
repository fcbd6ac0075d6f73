"""The optimizer classes: each names its record; signature and ``Args:`` come from the record's options."""

from __future__ import annotations

from ..algorithms import ADAGRAD, ADAM, ADAMAX, NADAM, RADAM, RMSPROP
from ..algorithms import SGD as SGD_RECORD
from .base import Optimizer


class Adam(Optimizer, algorithm=ADAM):
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's arguments, defaults and state.

    Half-precision params do their arithmetic in fp32 and keep fp32 moments.
    """


class AdamW(Optimizer, algorithm=ADAM, defaults={"weight_decay": 1e-2}, fixed={"decoupled_weight_decay": True}):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), torch.optim.AdamW's arguments and state."""


class RAdam(Optimizer, algorithm=RADAM):
    """Rectified Adam (Liu et al. 2020) with torch.optim.RAdam's arguments and state."""


class NAdam(Optimizer, algorithm=NADAM):
    """Adam with Nesterov momentum (Dozat 2016) with torch.optim.NAdam's arguments and state."""


class Adamax(Optimizer, algorithm=ADAMAX):
    """Adamax, Adam's infinity-norm variant (Kingma & Ba 2015, sec. 7.1), torch.optim.Adamax's arguments."""


class Adagrad(Optimizer, algorithm=ADAGRAD):
    """Adagrad (Duchi et al. 2011) with torch.optim.Adagrad's arguments and state (created at construction)."""


class SGD(Optimizer, algorithm=SGD_RECORD):
    """SGD with optional (Nesterov) momentum, torch.optim.SGD's arguments and state.

    ``decoupled_weight_decay`` (beyond torch) shrinks theta by ``1 - lr*wd``
    instead of adding wd*theta to the gradient; for plain SGD the two are
    identical (Loshchilov & Hutter 2019, Prop. 1).
    """


class RMSprop(Optimizer, algorithm=RMSPROP):
    """RMSprop (Tieleman & Hinton 2012), centred variant (Graves 2013), torch.optim.RMSprop's arguments."""
