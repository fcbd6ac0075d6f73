"""The readable path: run a rule on tensors, one param at a time.

Half-precision params are upcast to fp32 for the arithmetic and rounded once
on the way back, the same contract as the fused path. Out-of-place ops follow
elements, not memory order, so any gradient layout gives the same update.
"""

from __future__ import annotations

import torch

from ..rules import RULES, Config


def compute_dtype(p: torch.Tensor) -> torch.dtype:
    return torch.float32 if p.dtype in (torch.float16, torch.bfloat16) else p.dtype


def step(cfg: Config, scalars, params, grads, states) -> None:
    rule = RULES[cfg.algorithm]
    for p, g, state in zip(params, grads, states):
        dt = compute_dtype(p)
        old = {k: state[k].to(dt) for k in cfg.state_names}
        new_p, new = rule(cfg, p.to(dt), g.to(dt), old, scalars)
        for k, value in new.items():
            state[k].copy_(value)
        p.copy_(new_p)
