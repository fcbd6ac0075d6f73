"""Adam, AdamW and RAdam: thin classes over :mod:`adamlab.rules`."""

from __future__ import annotations

from .base import Optimizer, defaults_from


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with torch.optim.Adam's arguments, defaults and state.

    Beyond torch:

    * ``bias_correction=False`` drops both 1 - beta^t corrections (the paper's
      section 3 explains what they fix).
    * ``decay_scale`` chooses how decoupled decay is scaled: ``"lr"`` shrinks
      theta by ``1 - lr*wd`` as torch does; ``"schedule"`` shrinks it by
      ``1 - (lr/base_lr)*wd``, with ``base_lr`` the group's lr at
      construction (kept in the group), the schedule multiplier of Loshchilov &
      Hutter's Algorithm 2, so ``wd`` is their lambda.
    * ``fused``: None (default) runs the fused kernel wherever it applies,
      False the readable reference path, True insists on the fused kernel.

    Half-precision params do their arithmetic in fp32 and keep fp32 moments.
    """

    algorithm = "adam"

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        amsgrad=False,
        *,
        maximize=False,
        decoupled_weight_decay=False,
        bias_correction=True,
        decay_scale="lr",
        fused=None,
    ):
        super().__init__(params, defaults_from(locals()))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019), torch's default wd=1e-2."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, **kw):
        kw.setdefault("decoupled_weight_decay", True)
        if not kw["decoupled_weight_decay"]:
            raise ValueError("AdamW always decouples weight decay; use Adam for L2")
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, **kw)


class RAdam(Optimizer):
    """Rectified Adam (Liu et al. 2020) with torch.optim.RAdam's arguments and state.

    ``rect_threshold`` is the rho_t above which the adaptive step is used:
    torch and the official code use 5 (the default); the paper writes 4.
    """

    algorithm = "radam"

    def __init__(
        self,
        params,
        lr=1e-3,
        betas=(0.9, 0.999),
        eps=1e-8,
        weight_decay=0.0,
        *,
        decoupled_weight_decay=False,
        maximize=False,
        rect_threshold=5.0,
        decay_scale="lr",
        fused=None,
    ):
        super().__init__(params, defaults_from(locals()))
