"""The readable backend: run the update on tensors with torch ops, param by param.

Half-precision params compute in fp32 and round once on the way back, the
same contract as the fused backends. Each param is processed in slices
along its first dimension, so temporaries stay bounded (about one param's
bytes in fp32 at most, however long the update) and any layout, strided or
not, gives the element-wise result. With ``differentiable`` the whole
update is recorded by autograd instead.
"""

from __future__ import annotations

import torch

from ..algorithms import apply_update

MIN_SLICE = 1 << 16  # elements
SLICES = 16  # a large param is cut into this many slices


def compute_dtype(p: torch.Tensor) -> torch.dtype:
    return torch.float32 if p.dtype in (torch.float16, torch.bfloat16) else p.dtype


def _update(cfg, scalars, arrays, names, differentiable=False) -> None:
    p, g, states = arrays[0], arrays[1], dict(zip(names, arrays[2:]))
    dt = compute_dtype(p)
    # a differentiable step must not overwrite the values autograd saved: it computes from copies
    load = (lambda t: t.to(dt).clone()) if differentiable else (lambda t: t.to(dt))
    new_p, new_state, new_grad = apply_update(cfg, load(p), load(g), {k: load(v) for k, v in states.items()}, scalars)
    for k, value in new_state.items():
        states[k].copy_(value)
    if new_grad is not None:
        g.copy_(new_grad)
    p.copy_(new_p)


def _slices(arrays: list[torch.Tensor]):
    p = arrays[0]
    if p.dim() == 0 or p.numel() <= MIN_SLICE:
        yield arrays
        return
    rows = p.shape[0]
    per_row = max(1, p.numel() // rows)
    step = max(1, max(MIN_SLICE, -(-p.numel() // SLICES)) // per_row)
    for start in range(0, rows, step):
        yield [a[start : start + step] for a in arrays]


def run(bucket, differentiable: bool = False) -> None:
    names = bucket.cfg.state_names()
    for slot in bucket.slots:
        if differentiable:
            _update(bucket.cfg, bucket.scalars, slot, names, differentiable=True)
        else:
            for piece in _slices(slot):
                _update(bucket.cfg, bucket.scalars, piece, names)
