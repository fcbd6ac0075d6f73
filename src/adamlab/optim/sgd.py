"""SGD with momentum and RMSprop, the baselines Adam is measured against."""

from __future__ import annotations

from .base import Optimizer, defaults_from


class SGD(Optimizer):
    """SGD with optional (Nesterov) momentum, torch.optim.SGD's arguments and state.

    Note: adamlab's default lr is 1e-3, as torch's. ``decoupled_weight_decay``
    shrinks theta by ``1 - lr*wd`` instead of adding wd*theta to the gradient;
    for plain SGD the two are identical (Loshchilov & Hutter 2019, Prop. 1).
    """

    algorithm = "sgd"
    counts_steps = False

    def __init__(
        self,
        params,
        lr=1e-3,
        momentum=0.0,
        dampening=0.0,
        weight_decay=0.0,
        nesterov=False,
        *,
        maximize=False,
        decoupled_weight_decay=False,
        fused=None,
    ):
        super().__init__(params, defaults_from(locals()))


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012), centred variant (Graves 2013), torch's arguments and state."""

    algorithm = "rmsprop"

    def __init__(
        self,
        params,
        lr=1e-2,
        alpha=0.99,
        eps=1e-8,
        weight_decay=0.0,
        momentum=0.0,
        centered=False,
        *,
        maximize=False,
        fused=None,
    ):
        super().__init__(params, defaults_from(locals()))
