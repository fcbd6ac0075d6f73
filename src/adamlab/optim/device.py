"""Device steps: counters on the params' device, each step's scalars computed there, AMP read there.

A group takes a device step when the Triton backend runs it and it asks for
``capturable=True``, steps under AMP (``torch.amp.GradScaler`` hands the
optimizer ``grad_scale`` and ``found_inf``) or has a Tensor lr on the
device. Nothing is then read on the host, so the step can be captured in a
CUDA graph: a step with ``found_inf`` set writes nothing (the kernel reads
the flag) and is not counted (the counters advance by ``found_inf == 0``,
on the device).

The scalars come from the record's own plan, called with counters that are
tensors (one element per param, in fp64 as the host computes them), so every
bias correction is the same equation, run by torch on the device; a plan
that branches on a counter (RAdam's rectification) hands the branch to the
kernel as a per-param flag.
"""

from __future__ import annotations

import torch

from ..backends import dispatch
from .counters import Counters


def wanted(group: dict, params: list, found_inf, differentiable: bool) -> bool:
    """Whether this group's step runs with device counters (see the module docstring)."""
    if differentiable:
        return False
    try:
        backend = dispatch.choose(group.get("backend"), group.get("fused"), False, params[0].device)
    except (ValueError, RuntimeError):
        return False  # the host path raises the same refusal, with its message
    lr = group["lr"]
    on_device_lr = isinstance(lr, torch.Tensor) and lr.device.type != "cpu"
    return backend == "triton" and (bool(group.get("capturable")) or found_inf is not None or on_device_lr)


def takes_found_inf(opt, differentiable: bool) -> bool:
    """Whether every group that steps takes a device step, so that AMP's found_inf need not be read on the host."""
    stepping = False
    for group in opt.param_groups:
        params = [p for p in group["params"] if p.grad is not None]
        if not params:
            continue
        if any(p.grad.is_sparse for p in params) or not wanted(group, params, True, differentiable):
            return False
        stepping = True
    return stepping


def add_group(stage, gi: int, group: dict, params: list, grads: list, grad_scale, found_inf) -> None:
    """Stage one group's device step: one bucket per freshness (new params get their state first)."""
    opt, record = stage.opt, stage.opt.algorithm
    states = [stage.state_of(p) for p in params]
    dtype = opt._counter_dtype(group)
    bank = opt._counters.bank(params, states, record.counters, record.counter_start, dtype, params[0].device)
    bank.skip = found_inf
    fresh = [not s for s in states]
    buckets: dict = {}
    for i, is_fresh in enumerate(fresh):
        buckets.setdefault(is_fresh, []).append(i)
    updates = []
    for is_fresh, members in buckets.items():
        counters = _counters(bank, record, members, dtype)
        plan = stage._plan(group, counters, is_fresh, grad_scale)
        chosen = (params, grads, states) if len(members) == len(params) else \
            ([params[i] for i in members], [grads[i] for i in members], [states[i] for i in members])
        stage._add_bucket(gi, group, plan, *chosen[:2], False, chosen[2], True, found_inf)
        updates.append((members, plan.counters))
    if record.counters:
        stage.banks.append((bank, states, updates))


class DeviceCounters(Counters):
    """Counters as fp64 tensors on the device, rounded to the counters' dtype where torch rounds them."""

    def round(self, x):
        return x.to(self.dtype).to(x.dtype)


def _counters(bank, record, members: list[int], dtype) -> Counters:
    """Each param's counters as fp64 tensors on the device, the step already advanced (as on the host)."""
    values = {}
    everyone = len(members) == bank.buffer.shape[1]
    index = None if everyone else bank.index(members)
    for j, name in enumerate(record.counters):
        row = bank.buffer[j] if everyone else bank.buffer[j].index_select(0, index)
        values[name] = row.to(torch.float64) + (1 if name == "step" else 0)
    return DeviceCounters(values, dtype)
