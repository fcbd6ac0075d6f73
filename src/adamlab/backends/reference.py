"""The readable backend: run the update on tensors with torch ops, param by param.

Half-precision params compute in fp32 and round once on the way back, the
same contract as the fused backends. Each param is processed in slices
along its first dimension, so temporaries stay bounded (about one param's
bytes in fp32 at most, however long the update) and any layout, strided or
not, gives the element-wise result. With ``differentiable`` the whole
update is recorded by autograd instead.

A bucket with codecs (:mod:`.storage`) runs each codec's torch forms on the
flattened arrays, in slices of whole blocks, so it writes what the fused
loop writes.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from ..algorithms import apply_update
from .storage import CODECS

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


def _flat(t: torch.Tensor) -> torch.Tensor:
    """A 1-d view of ``t`` in element order, or a copy where there is none (written back afterwards)."""
    return t.view(-1) if t.is_contiguous() else t.reshape(-1).clone()


def _run_codecs(cfg, scalars, slot, codecs) -> None:
    names = ("p", "g") + cfg.state_names()
    arrays, at = {}, 0
    for name, codec in zip(names, map(CODECS.get, codecs)):
        roles = [""] + [b.role for b in codec.buffers]
        arrays[name] = (codec, dict(zip(roles, slot[at : at + len(roles)])))
        at += len(roles)
    compute = compute_dtype(slot[0])
    flat = {name: (codec, {r: _flat(b) if b.dim() else b for r, b in bufs.items()}) for name, (codec, bufs) in
            arrays.items()}
    ctx = SimpleNamespace(compute=compute, scalars=scalars)
    n = slot[0].numel()
    block = max([c.block for c, _ in flat.values()] + [1])
    step = max(MIN_SLICE, -(-n // SLICES))
    step += -step % block
    for start in range(0, n, step):
        stop = min(n, start + step)
        values = {name: _load(codec, bufs, start, stop, ctx) for name, (codec, bufs) in flat.items()}
        new_p, new_state, new_grad = apply_update(cfg, values["p"], values["g"],
                                                  {k: values[k] for k in cfg.state_names()}, scalars)
        for name, value in [("p", new_p), *new_state.items()] + ([("g", new_grad)] if new_grad is not None else []):
            codec, bufs = flat[name]
            (codec.torch_store or _store_plain)(value, bufs, start, stop, ctx)
    for name, (_, bufs) in arrays.items():  # buffers that had no flat view get their values back
        for role, b in bufs.items():
            if b.dim() and not b.is_contiguous():
                b.copy_(flat[name][1][role].view(b.shape))


def _load(codec, bufs, start, stop, ctx) -> torch.Tensor:
    if codec.torch_load is not None:
        return codec.torch_load(bufs, start, stop, ctx)
    return bufs[""][start:stop].to(ctx.compute)


def _store_plain(value, bufs, start, stop, ctx) -> None:
    bufs[""][start:stop].copy_(value)


def run(bucket, differentiable: bool = False) -> None:
    names = bucket.cfg.state_names()
    if bucket.codecs is not None:
        for slot in bucket.slots:
            _run_codecs(bucket.cfg, bucket.scalars, slot, bucket.codecs)
        return
    for slot in bucket.slots:
        if differentiable:
            _update(bucket.cfg, bucket.scalars, slot, names, differentiable=True)
        else:
            for piece in _slices(slot):
                _update(bucket.cfg, bucket.scalars, piece, names)
