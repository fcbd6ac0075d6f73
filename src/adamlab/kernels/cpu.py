"""Placeholder until the fused CPU kernel lands: everything goes to the reference path."""


def step(cfg, scalars, params, grads, states, required=False):
    if required:
        raise RuntimeError("fused=True: the fused kernel is not available")
    return list(zip(params, grads, states))
