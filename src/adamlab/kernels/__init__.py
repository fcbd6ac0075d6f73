"""Backends that apply a rule to a bucket of params: fused C, or the reference loop."""

from __future__ import annotations

from . import reference


def apply(cfg, scalars, params, grads, states, fused=None, cache=None) -> None:
    """Run one bucket; ``fused`` is None (fast where possible), True (required) or False.

    ``cache`` is a dict owned by the optimizer, where the fused path keeps what
    does not change between steps.
    """
    if fused is not False:
        from . import cpu

        rest = cpu.step(cfg, scalars, params, grads, states, required=fused is True, cache=cache)
        if not rest:
            return
        params, grads, states = zip(*rest)
    reference.step(cfg, scalars, params, grads, states)
