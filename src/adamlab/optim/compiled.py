"""The step under ``torch.compile``: one graph per configuration, no per-step recompiles.

:meth:`Optimizer.step` comes here when ``torch.compiler.is_compiling()``. The work splits in two:

* **at trace time, untraced**: Dynamo's ``OptimizerVariable`` calls an optimizer's ``_init_group``
  eagerly (torch.optim's own trick). :func:`init_group` does there what the eager step's prepare does
  (gather params with gradients, stage and install new state, check every array, build the kernels) and
  decides the configuration, registered under a string key for the ``adamlab::step`` op
  (:mod:`adamlab.backends.ops`). It hands back the flat array list and the key; the group's counter buffer
  (one tensor, :class:`~adamlab.optim.counters.Bank`) is published in ``opt._counters.traced``.
* **in the graph**: the record's own plan, called with the counters as float64 tensors (one entry per
  param) and the group's numbers, so the per-step scalars are tensor ops, never Python floats Dynamo
  would guard on. A float lr that changes every step (a scheduler) becomes a graph input after the first
  recompile (``specialize_float=False``); a Tensor lr never recompiles. Then one op call per group, and
  the counters advance in place.

Steps it does not trace run the eager step behind a graph break (so ``fullgraph=True`` refuses them):
``differentiable=True``, sparse gradients, complex or DTensor params, a param listed twice, GradScaler's
inputs, ``skip_nonfinite``, low-precision state or param updates (``state_precision``, ``param_update``),
device steps (the Triton backend's capturable or device-lr steps), DCP's priming step, and the first step
of a record whose first update differs (SGD with momentum starts its buffer at g). Once that step has run,
the next call traces the graph.
"""

from __future__ import annotations

import torch

from ..backends import dispatch, ops
from ..backends.dispatch import Bucket
from . import device, lowp
from .counters import Counters
from .slots import Stage, _check_arrays

EAGER = "eager"  # the key init_group returns for a step the graph does not take


class TensorCounters(Counters):
    """Counters as float64 tensors; ``round`` keeps torch's rounding to the stored dtype (NAdam's mu_product)."""

    def round(self, x):
        return x.to(self.dtype).to(torch.float64) if torch.is_tensor(x) else super().round(x)


def counters_of(record, buffer: torch.Tensor, dtype) -> TensorCounters:
    """This step's counters (step already advanced by one, as the plan expects) from a bank's buffer."""
    rows = buffer.to(torch.float64)
    return TensorCounters({name: rows[j] + 1 if name == "step" else rows[j]
                           for j, name in enumerate(record.counters)}, dtype)


def scalar_table(scalars: dict, names: tuple[str, ...], like: torch.Tensor) -> torch.Tensor:
    """(rows of ``like``, len(names)) float64: a column per scalar, a row per param (or one shared row)."""
    columns = []
    for name in names:
        value = scalars[name]
        if torch.is_tensor(value):
            columns.append(value.to(torch.float64).expand(like.shape))
        else:  # not full_like: it would specialise a symbolic float (a scheduled lr) to its traced value
            columns.append(torch.ones_like(like) * value)
    return torch.stack(columns, dim=-1)


# ---------------------------------------------------------------- at trace time, untraced


class _TraceStage(Stage):
    """The eager prepare's gathering, staging and checks, without launches: the graph launches."""

    def __init__(self, opt):
        super().__init__(opt, priming=True)  # apply() then installs state and moves nothing
        self.unsupported = False

    def _add_bucket(self, gi, group, plan, params, grads, differentiable, states=None, **_) -> None:
        names = plan.config.state_names()
        states = [self.state_of(p) for p in params] if states is None else states
        flat = self._flat_arrays(group, plan, params, grads, states, names, {})
        _check_arrays(gi, names, Bucket(plan.config, None, flat, 2 + len(names)).slots)

    def _add_sequential(self, *args) -> None:
        self.unsupported = True  # a param listed twice steps each occurrence in turn: eager only

    def _add_sparse(self, group, pairs) -> None:
        self.unsupported = True


def _untraceable(opt, group, params) -> bool:
    grad_scale, found_inf = getattr(opt, "grad_scale", None), getattr(opt, "found_inf", None)
    return (
        bool(group.get("differentiable")) or bool(group.get("skip_nonfinite"))
        or grad_scale is not None or found_inf is not None
        or lowp.active(group) or device.wanted(group, params, None, False)
        or any(p.is_complex() or hasattr(p, "to_local") for p in params)
    )


def _first_step_differs(record, group, dtype) -> bool:
    """Whether the record's plan treats a param's first step apart (SGD's buffer starts at g)."""
    counters = Counters({n: record.counter_start[n] + (n == "step") for n in record.counters}, dtype)
    fresh, later = record.plan(group, counters, True), record.plan(group, counters, False)
    return fresh.config != later.config or fresh.scalars != later.scalars


def init_group(opt, group: dict, gi: int, written: list, grads: list) -> tuple:
    """Prepare group ``gi`` for a traced step; fills the op's ``written`` and ``grads`` lists and returns
    (key, scalar names).

    The key is "" when no param has a gradient and :data:`EAGER` when this step must run eagerly (the
    group is then left untouched).
    """
    record = opt.algorithm
    if gi == 0:  # Dynamo drops attribute stores on an optimizer in traced code: they are made here
        opt._opt_called, opt._last_step_skipped, opt._device_found_inf = True, False, None
    params = [p for p in group["params"] if p.grad is not None]
    if not params:
        return "", ()
    if _untraceable(opt, group, params) or (gi == 0 and opt._is_priming()):
        return EAGER, ()
    dtype = opt._counter_dtype(group)
    if any(not opt.state.get(p) for p in params) and _first_step_differs(record, group, dtype):
        return EAGER, ()
    stage = _TraceStage(opt)
    stage.add_group(gi, group, None, False)
    if stage.unsupported:
        return EAGER, ()
    stage.apply()  # new state and counter views enter the state now, as the eager step would at its end
    if stage.banks:
        bank = stage.banks[0][0]
        opt._counters.trace(gi, bank, params)
        counters = counters_of(record, bank.buffer, dtype)
    else:
        counters = TensorCounters({}, dtype)
    plan = record.plan(group, counters, False)
    cfg, names = plan.config, tuple(plan.scalars)
    backend = dispatch.choose(group.get("backend"), group.get("fused"), False, params[0].device)
    key = ops.register(cfg, names, backend, required=bool(group.get("fused")))
    flat = []
    for p in params:
        state = opt.state[p]
        flat.extend([p, p.grad, *(state[n] for n in cfg.state_names())])
    ops.runner(flat, [0.0] * len(names), key, 2 + len(cfg.state_names()))  # kernels built now, not mid-graph
    for into, arrays in zip((written, grads), ops.split(flat, 2 + len(cfg.state_names()))):
        into.extend(arrays)  # lists Dynamo gave: it wraps each tensor with its source as a graph input
    return key, names


# ---------------------------------------------------------------- traced


@torch._dynamo.disable
def _eager_step(opt, loss):
    from .base import Optimizer

    Optimizer.__dict__["step"](opt)  # the undecorated eager step: hooks already ran around this call
    return loss


def step(opt, closure=None):
    """The body of ``opt.step(closure)`` that Dynamo traces."""
    loss = None
    if closure is not None:
        with torch.enable_grad():
            loss = closure()
    launches = []
    for gi, group in enumerate(opt.param_groups):
        written, grads = [], []
        key, names = opt._init_group(group, gi, written, grads)
        if key == EAGER:
            return _eager_step(opt, loss)
        if key:
            launches.append((gi, group, written, grads, key, names))
    record = opt.algorithm
    with torch.no_grad():
        for gi, group, written, grads, key, names in launches:
            bank = opt._counters.traced.get(gi)
            if bank is None:
                counters, like = TensorCounters({}, torch.float64), torch.zeros(1, dtype=torch.float64)
            else:
                counters = counters_of(record, bank.buffer, bank.buffer.dtype)
                like = counters[record.counters[0]]
            plan = record.plan(group, counters, False)
            torch.ops.adamlab.step(written, grads, scalar_table(plan.scalars, names, like), key)
            if bank is not None:
                _advance(record, bank.buffer, plan.counters)
    return loss


def _advance(record, buffer: torch.Tensor, values: dict) -> None:
    """step += 1 for every param; other counters take the plan's new values (NAdam's mu_product)."""
    for j, name in enumerate(record.counters):
        if name == "step":
            buffer[j].add_(1)
        elif name in values:
            buffer[j].copy_(values[name])
