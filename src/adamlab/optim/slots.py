"""One step, staged: everything is decided and checked first, then applied at once.

:class:`Stage` gathers each group's params with gradients, buckets them by
their counters, plans every bucket, stages the state of new params, checks
every array and gets a backend ready. Only :meth:`Stage.apply` writes.
"""

from __future__ import annotations

import functools
import operator
from types import SimpleNamespace

import torch

from .. import backends
from ..backends.dispatch import Bucket
from . import device, lowp, lowp_state, lowp_step
from .counters import CACHED, Counters


def real_local(t: torch.Tensor) -> torch.Tensor:
    """What a kernel sees: the local shard of a DTensor, a complex tensor as pairs of reals (torch's rule)."""
    if hasattr(t, "to_local"):
        t = t.to_local()
    return torch.view_as_real(t) if t.is_complex() else t


class Stage:
    """The writes of one step, ready to apply."""

    def __init__(self, opt, found_inf=None, priming: bool = False):
        self.opt = opt
        self.found_inf = found_inf  # AMP's flag when device steps read it on the device; else None
        self.priming = priming  # create the state only: no update runs, no counter moves
        self.runs: list = []  # callables that write, in order
        self.installs: list = []  # (state dict, {name: staged tensor})
        self.replacements: list = []  # (state dict, its whole new content): state converted to another format
        self.banks: list = []  # (bank, states, per-bucket counter updates)
        self.adopt: list = []  # (param, new state dict): entered into the state only if it holds something
        self.after: list = []  # callables run once the step is applied

    def state_of(self, p) -> dict:
        """p's state, or a new dict that becomes its state when the step is applied (torch keeps none for SGD)."""
        state = self.opt.state.get(p)
        if state is None:
            state = {}
            self.adopt.append((p, state))
        return state

    def apply(self) -> None:
        for state, content in self.replacements:
            state.clear()
            state.update(content)
        for state, staged in self.installs:
            state.update(staged)
        for bank, states, _ in self.banks:
            bank.install(states)
        if not self.priming:
            for run in self.runs:
                run()
            for bank, _, updates in self.banks:
                bank.advance(updates)
        for p, state in self.adopt:
            if state:
                self.opt.state[p] = state
        for done in self.after:
            done()

    # ------------------------------------------------------------------ prepare

    def add_group(self, gi: int, group: dict, grad_scale, differentiable: bool) -> None:
        opt, record = self.opt, self.opt.algorithm
        params = group["params"]
        grads = list(map(_GRAD, params))
        if not all(map(_IS_NOT_NONE, grads)):  # `None in grads` would compare tensors elementwise
            params, grads = [p for p, g in zip(params, grads) if g is not None], [g for g in grads if g is not None]
        sparse = []
        if any(map(_IS_SPARSE, grads)):
            if record.sparse_step is None:
                raise RuntimeError(
                    f"{type(opt).__name__} does not support sparse gradients; "
                    "use torch.optim.SparseAdam or a dense gradient"
                )
            sparse = [(p, g) for p, g in zip(params, grads) if g.is_sparse]
            params, grads = [p for p, g in zip(params, grads) if not g.is_sparse], [g for g in grads if not g.is_sparse]
        if sparse:
            self._add_sparse(group, sparse)
        if not params:
            return
        if not differentiable and len(set(map(id, params))) == len(params) and device.wanted(
                group, params, self.found_inf, differentiable):
            device.add_group(self, gi, group, params, grads, grad_scale, self.found_inf)
            return
        if group.get("capturable"):
            _check_capturable_devices(params)
        if differentiable or len(set(map(id, params))) != len(params):
            self._add_sequential(gi, group, params, grads, grad_scale, differentiable)
            return
        states = list(map(opt.state.get, params))  # a plain lookup: a defaultdict would create entries
        if not all(map(_IS_NOT_NONE, states)):
            states = [self.state_of(p) for p in params]
        fresh = [not s for s in states]
        dtype = opt._counter_dtype(group)
        bank = opt._counters.bank(params, states, record.counters, record.counter_start, dtype)
        rows = bank.rows() or [()] * len(params)
        if rows.count(rows[0]) == len(rows) and fresh.count(fresh[0]) == len(fresh):
            buckets = {(rows[0], fresh[0]): list(range(len(params)))}  # the usual case: one bucket
        else:
            buckets = {}
            for i, key in enumerate(zip(rows, fresh)):
                buckets.setdefault(key, []).append(i)
        updates = []
        for (row, is_fresh), members in buckets.items():
            counters = Counters(dict(zip(record.counters, row)), dtype)
            if "step" in counters:
                counters["step"] = counters["step"] + 1
            plan = self._plan(group, counters, is_fresh, grad_scale)
            if len(members) == len(params):
                self._add_bucket(gi, group, plan, params, grads, differentiable, states)
            else:
                self._add_bucket(gi, group, plan, [params[i] for i in members], [grads[i] for i in members],
                                 differentiable, [states[i] for i in members])
            updates.append((members, plan.counters))
        if record.counters:
            self.banks.append((bank, states, updates))

    def _plan(self, group, counters, fresh, grad_scale):
        plan = self.opt.algorithm.plan(group, counters, fresh)
        if grad_scale is not None:
            from dataclasses import replace

            plan = replace(plan, config=replace(plan.config, unscale=True),
                           scalars={**plan.scalars, "grad_scale": grad_scale})
        return lowp.with_rounding_step(group, counters, plan)

    def _add_bucket(self, gi, group, plan, params, grads, differentiable, states=None, device_step=False,
                    found_inf=None) -> None:
        """One bucket's arrays checked and its backend readied (a device step keeps its scalars as tensors)."""
        opt, cfg = self.opt, plan.config
        names = cfg.state_names()
        if len(opt._memo) > CACHED:
            opt._memo.clear()
        states = [self.state_of(p) for p in params] if states is None else states
        if lowp.active(group):
            lowp_step.add(self, gi, group, plan, params, grads, differentiable, states, device_step, found_inf)
            return
        memo = opt._memo.setdefault((tuple(map(id, params)), names, group.get("state_precision")), {})
        flat = self._flat_arrays(group, plan, params, grads, states, names, memo)
        bucket = Bucket(cfg, None, flat, 2 + len(names), memo, found_inf)
        self._ready(gi, group, plan, bucket, differentiable, params[0].device, device_step=device_step)

    def _ready(self, gi, group, plan, bucket, differentiable, device, lay=None, device_step=False) -> None:
        memo, names = bucket.memo, plan.config.state_names()
        if memo.get("signature") != bucket.signature():
            if lay is None:  # only when an array changed since it was last checked
                _check_arrays(gi, names, bucket.slots, lambda p: lowp.state_dtype(group, p))
            else:
                for slot in bucket.slots:
                    lowp.check_slot(gi, lay, slot)
            memo["signature"] = bucket.signature()
        backend = backends.dispatch.choose(group.get("backend"), group.get("fused"), differentiable, device)
        scalars = plan.scalars if differentiable or device_step else {k: _float(v) for k, v in plan.scalars.items()}
        bucket.scalars = SimpleNamespace(**scalars)
        self.runs.append(backends.prepare(bucket, backend, required=bool(group.get("fused")),
                                          differentiable=differentiable))

    def _flat_arrays(self, group, plan, params, grads, states, names, memo) -> list[torch.Tensor]:
        """[p, g, *states] of every param, end to end, as real local arrays; new state staged."""
        opt = self.opt
        try:
            arrays = [st[n] for st in states for n in names]
        except KeyError:
            arrays = None
        if arrays is not None and memo.get("plain") and len(arrays) == len(memo["arrays"]) and all(
            map(operator.is_, arrays, memo["arrays"])
        ):
            width, count = 2 + len(names), len(params)
            flat = [None] * (width * count)
            flat[0::width], flat[1::width] = params, grads
            for j in range(len(names)):
                flat[2 + j :: width] = arrays[j :: len(names)]
            return flat
        flat, arrays = [], []
        for p, g, state in zip(params, grads, states):
            missing = [n for n in names if n not in state]
            if state and lowp_state.needs_conversion(opt, group, p, state, names) and (
                    any(lowp_state.present(state, n) for n in missing) or not missing):
                state = lowp_step.replace(self, state, lowp_state.convert(opt, group, p, state, 0))  # format changed
                missing = []
            if missing:
                if state:  # a started state lacking a key: torch raises KeyError rather than restart it
                    raise KeyError(f"a param's state has {sorted(state)} but lacks {missing}")
                staged = opt._new_state(p, group, plan)
                self.installs.append((state, staged))
                own = [staged[n] for n in names]
            else:
                own = [state[n] for n in names]
            arrays.extend(own)
            flat.extend([real_local(p), real_local(g), *map(real_local, own)])
        plain = not any(p.is_complex() or hasattr(p, "to_local") for p in params)
        memo.clear()
        memo.update(plain=plain, arrays=arrays)
        return flat

    def _add_sequential(self, gi, group, params, grads, grad_scale, differentiable) -> None:
        """A group that lists a param twice steps each occurrence in turn, as torch's for-loop does."""
        opt, record = self.opt, self.opt.algorithm
        dtype = opt._counter_dtype(group)
        states, views, running, fresh_before = {}, {}, {}, {}
        for p, g in zip(params, grads):
            key = id(p)
            if key not in states:
                states[key] = views[key] = self.state_of(p)
                fresh_before[key] = not states[key]
            # torch's SGD starts a momentum buffer for each occurrence of a param that had none (the
            # last one is kept); the others create state once and later occurrences share it
            fresh = fresh_before[key] and (key not in running or not record.counters)
            current = running.get(key) or {n: _counter(states[key], n, record.counter_start[n], differentiable)
                                           for n in record.counters}
            counters = Counters(dict(current), dtype)
            if "step" in counters:
                counters["step"] += 1
            plan = self._plan(group, counters, fresh, grad_scale)
            if fresh:  # stage the state once: later occurrences update the same tensors
                staged = opt._new_state(p, group, plan)
                self.installs.append((states[key], staged))
                views[key] = {**states[key], **staged}
            self._add_bucket(gi, group, plan, [p], [g], differentiable, [views[key]])
            running[key] = {**counters, **plan.counters}
        for key, final in running.items():
            self.runs.append(lambda state=states[key], final=final: _set_counters(state, final, dtype))

    def _add_sparse(self, group, pairs) -> None:
        opt, record = self.opt, self.opt.algorithm
        lowp.check_sparse(group)
        if record.sparse_check is not None:
            record.sparse_check(group)
        dtype = opt._counter_dtype(group)
        states = [self.state_of(p) for p, _ in pairs]

        def run() -> None:
            for (p, g), state in zip(pairs, states):
                counters = Counters({n: float(state.get(n, record.counter_start[n])) + (n == "step")
                                     for n in record.counters}, dtype)
                record.sparse_step(p, g, state, group, counters)
                _set_counters(state, counters, dtype)

        self.runs.append(run)


_GRAD = operator.attrgetter("grad")
_IS_NOT_NONE = functools.partial(operator.is_not, None)
_IS_SPARSE = operator.attrgetter("is_sparse")


CAPTURABLE_DEVICES = ("cuda", "xpu", "hpu", "xla", torch._C._get_privateuse1_backend_name())


def _check_capturable_devices(params) -> None:
    """torch's rule: capturable state lives on an accelerator; CPU params cannot be captured."""
    if any(p.device.type not in CAPTURABLE_DEVICES for p in params):
        raise AssertionError(
            f"If capturable=True, params and state_steps must be on supported devices: {list(CAPTURABLE_DEVICES)}."
        )


def _counter(state: dict, name: str, start: float, differentiable: bool):
    """A counter's value before the step: the state tensor itself for differentiable steps (NAdam's mu_product)."""
    value = state.get(name, start)
    if differentiable and name != "step" and torch.is_tensor(value):
        return value.clone()
    return float(value)


def _set_counters(state: dict, values: dict, dtype) -> None:
    for name, value in values.items():
        if name in state and torch.is_tensor(state[name]):
            state[name].copy_(value) if torch.is_tensor(value) else state[name].fill_(value)
        else:
            state[name] = value.clone() if torch.is_tensor(value) else torch.tensor(value, dtype=dtype)


def _float(x) -> float:
    return float(x.detach()) if torch.is_tensor(x) else float(x)


def _check_arrays(gi: int, names, slots, state_dtype=None) -> None:
    """Every array must match its param's element count and the dtypes the update expects."""
    for slot in slots:
        n, dtype = slot[0].numel(), slot[0].dtype
        if slot[1].numel() != n or slot[1].dtype != dtype:
            raise RuntimeError(
                f"param group {gi}: a gradient of shape {tuple(slot[1].shape)} and dtype {slot[1].dtype} "
                f"does not match its param of shape {tuple(slot[0].shape)} and dtype {dtype}"
            )
        want = state_dtype(slot[0]) if state_dtype is not None else (
            torch.float32 if dtype in (torch.float16, torch.bfloat16) else dtype)
        for name, a in zip(names, slot[2:]):
            if a.numel() != n or a.dtype != want:
                raise RuntimeError(
                    f"param group {gi}: state '{name}' has shape {tuple(a.shape)} and dtype {a.dtype}, "
                    f"its param has shape {tuple(slot[0].shape)} and needs {want}"
                )
