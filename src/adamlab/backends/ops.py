"""The fused step as a ``torch.library`` op, so a compiled graph calls it without a graph break.

``adamlab::step(Tensor(a!)[] written, Tensor[] grads, Tensor scalars, str config) -> ()``

* ``written``: ``[p, *states]`` of every param, end to end; ``grads``: each param's gradient, only read;
* ``scalars``: the plan's per-step scalars, float64, one row per param (or one row shared by all),
  columns in the order the config was registered with;
* ``config``: a key from :func:`register`, naming the record's :class:`~adamlab.algorithms.Config`, the
  scalar names and the backend. The registry is filled outside any traced region (at trace time, by the
  optimizer's ``_init_group``), so the graph holds only the string.

The eager implementation runs the existing backends through :mod:`.dispatch`: the C loop on CPU, the
reference backend (or any other registered there) elsewhere. Params whose scalar rows are equal (the usual
case: one step count) share one launch; the rows are compared bitwise, so NaN scalars group too.

Registered with ``torch.library.define`` and a ``CompositeExplicitAutograd`` kernel rather than
``torch.library.custom_op``: the step runs under no_grad, and the dispatcher then calls it from C++ (5 us)
instead of through custom_op's Python autograd and version-counter layers (about 1 us per tensor more).
Like the eager step's C loop, it leaves version counters alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import torch

from . import dispatch


@dataclass(frozen=True)
class Entry:
    cfg: object
    scalar_names: tuple[str, ...]
    backend: str
    required: bool  # fused=True: a kernel that cannot be built raises instead of falling back


_registry: dict[str, Entry] = {}
_memos: dict = {}  # (config, first array's address, array count) -> the backends' per-bucket memo


def register(cfg, scalar_names: tuple[str, ...], backend: str, required: bool) -> str:
    """The key the op knows this configuration by (stable across processes, so compiled graphs cache)."""
    key = f"{backend}{'!' if required else ''}|{cfg!r}|{','.join(scalar_names)}"
    _registry.setdefault(key, Entry(cfg, tuple(scalar_names), backend, required))
    return key


def entry(key: str) -> Entry:
    try:
        return _registry[key]
    except KeyError:
        raise KeyError(f"adamlab::step: no configuration registered as {key!r}") from None


def runner(arrays: list[torch.Tensor], values, key: str, width: int):
    """A callable that applies the update with these scalar values; raises (before any write) if it cannot."""
    e = entry(key)
    memo_key = (key, arrays[0].data_ptr() if arrays else 0, len(arrays))
    if memo_key not in _memos and len(_memos) > 1024:  # as the eager step: one per bucket of a large model
        _memos.clear()
    memo = _memos.setdefault(memo_key, {})
    bucket = dispatch.Bucket(e.cfg, SimpleNamespace(**dict(zip(e.scalar_names, values))), arrays, width, memo)
    return dispatch.prepare(bucket, e.backend, required=e.required)


def slots(written: list[torch.Tensor], grads: list[torch.Tensor]) -> list[torch.Tensor]:
    """[p, g, *states] of every param, end to end: the backends' layout."""
    w = len(written) // max(len(grads), 1)
    flat = [None] * (len(written) + len(grads))
    flat[0 :: w + 1], flat[1 :: w + 1] = written[0::w], grads
    for j in range(1, w):
        flat[j + 1 :: w + 1] = written[j::w]
    return flat


def split(flat: list[torch.Tensor], width: int) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The op's (written, grads) from [p, g, *states] slots."""
    written = [a for k, a in enumerate(flat) if k % width != 1]
    return written, flat[1::width]


def step(written: list[torch.Tensor], grads: list[torch.Tensor], scalars: torch.Tensor, config: str) -> None:
    """Apply one step of the registered ``config`` in place."""
    if not grads:
        return
    if entry(config).cfg.unscale:
        raise ValueError("adamlab::step reads the gradients only: an update that unscales them runs eagerly")
    arrays = slots(written, grads)
    width = len(arrays) // len(grads)
    rows = scalars.reshape(-1, scalars.shape[-1]) if scalars.dim() else scalars.reshape(1, 1)
    if rows.shape[0] not in (1, len(grads)):
        raise ValueError(f"adamlab::step: {rows.shape[0]} rows of scalars for {len(grads)} params")
    if rows.device.type != "cpu" or not rows.is_contiguous():
        rows = rows.cpu().contiguous()
    bits = rows.view(torch.int64)
    if bits.shape[0] == 1 or torch.equal(bits, bits[:1].expand_as(bits)):
        runner(arrays, rows[0].tolist(), config, width)()
        return
    # params at different step counts (some had no gradient for a while): one launch per distinct row
    _, which = torch.unique(bits, dim=0, return_inverse=True)
    members: dict[int, list[int]] = {}
    for k, group in enumerate(which.tolist()):
        members.setdefault(group, []).append(k)
    runs = []
    for positions in members.values():
        flat = [a for k in positions for a in arrays[k * width : (k + 1) * width]]
        runs.append(runner(flat, rows[positions[0]].tolist(), config, width))
    for run in runs:
        run()


_lib = torch.library.Library("adamlab", "DEF")
_lib.define("step(Tensor(a!)[] written, Tensor[] grads, Tensor scalars, str config) -> ()")
_lib.impl("step", step, "CompositeExplicitAutograd")


@torch.library.register_fake("adamlab::step", lib=_lib)
def _(written, grads, scalars, config) -> None:
    return None
