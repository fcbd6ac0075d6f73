"""``Monitor``: what an optimizer's steps are doing, read from the state they produce.

The monitor is two torch step hooks. On a monitored step the pre-hook keeps
what the step will overwrite and the statistics need: each param's norm and
a bounded sample of its coordinates (and, for fp16/bf16 params, of its
state, to replay the fp32 result the step rounds); everything else waits
for the post-hook, which reads the new state at the same coordinates. Every
statistic stays a device tensor until the record is read (``read()``,
``history``, ``latest``, or every ``read_every`` monitored steps), which
moves all pending numbers to the host at once. An optimizer without a
monitor has no hooks: it costs nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import torch

from ..algorithms import apply_update
from ..optim.base import HALF
from ..optim.counters import Counters, step_dtype
from ..optim.lowp_state import state_array
from .sampling import Sampler, gather, real_local
from .stats import Histogram, Sums, accumulate_dtype, finish, sum_of_squares

#: skip_nonfinite's counters, in every param group (adamlab.optim.skipping)
SKIP_COUNTERS = ("nonfinite_skips", "nonfinite_streak", "last_good_step")


@dataclass
class _ParamSnap:
    param: torch.Tensor
    name: str
    local: torch.Tensor  # the param's real local view (DTensor shard; complex as pairs of reals)
    positions: torch.Tensor | None  # sampled flat positions; None: all
    weight: float  # coordinates each sampled one stands for
    old: torch.Tensor  # theta_{t-1} at the positions, fp32
    norm: torch.Tensor  # |theta_{t-1}| over the whole param
    before: tuple | None  # the counters before the step
    plan: Any  # the record's plan of this step (None without a record)
    pre_state: dict | None  # fp32 state at the positions before the step (half params: replayed)


def _check_int(name, value, low, allow_none=False):
    if allow_none and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}{' or None' if allow_none else ''}, got {value!r}")


class Monitor:
    """Statistics of an optimizer's steps, every ``every`` steps, per param group (and per param).

    Args:
        optimizer: an adamlab optimizer (a torch.optim one gets the statistics that need no preconditioner).
        every: monitor steps 1, 1 + every, 1 + 2 every, ... (counted from attachment).
        per_param: also report each param's statistics, under ``group/param/stat``.
        sample: coordinates read per param at most (the copy kept across a step is bounded by it);
            a larger param is sampled at fixed random positions. None reads every coordinate.
        percentiles: of the effective step size, in [0, 100].
        bins_per_octave: resolution of the percentiles' log2 histogram, in [1, 1024].
        read_every: move pending numbers to the host every this many monitored steps (one sync).
        callback: a callable (or several) receiving each record, a dict of floats, when it is read;
            :class:`CSVWriter` and :class:`TensorBoardWriter` are such callables.
        model: names params after ``model.named_parameters()`` in per-param keys.
        keep_history: keep every record in ``history``.
        seed: of the sampled positions.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, every: int = 1, *, per_param: bool = False,
                 sample: int | None = 4096, percentiles: Iterable[float] = (1, 50, 99), bins_per_octave: int = 32,
                 read_every: int = 1, callback: Callable | Iterable[Callable] | None = None,
                 model: torch.nn.Module | None = None, keep_history: bool = True, seed: int = 0):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise ValueError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        _check_int("every", every, 1)
        _check_int("sample", sample, 1, allow_none=True)
        _check_int("bins_per_octave", bins_per_octave, 1)
        if bins_per_octave > 1024:
            raise ValueError(f"bins_per_octave must be in [1, 1024], got {bins_per_octave}")
        _check_int("read_every", read_every, 1)
        percentiles = tuple(percentiles)
        if not percentiles or not all(isinstance(q, (int, float)) and 0 <= q <= 100 for q in percentiles):
            raise ValueError(f"percentiles must be numbers in [0, 100], got {percentiles!r}")
        callbacks = [] if callback is None else [callback] if callable(callback) else callback
        if not isinstance(callbacks, (list, tuple)) or not all(map(callable, callbacks)):
            raise ValueError("callback must be a callable or an iterable of callables")
        self.optimizer, self.every, self.per_param = optimizer, every, per_param
        self.percentiles, self.bins_per_octave, self.read_every = percentiles, bins_per_octave, read_every
        self.callbacks, self.keep_history = list(callbacks), keep_history
        self._names = {id(p): n for n, p in model.named_parameters()} if model is not None else {}
        self._record = getattr(optimizer, "algorithm", None)
        self._sampler = Sampler(sample, seed)
        self._calls = 0
        self._snapshot = None
        self._pending: list[dict] = []
        self._history: list[dict] = []
        self._latest: dict | None = None
        self._weight_cache: dict = {}
        self._handles = [optimizer.register_step_pre_hook(self._before),
                         optimizer.register_step_post_hook(self._after)]

    # ---------------------------------------------------------------- reading

    def read(self) -> list[dict[str, float]]:
        """Move pending records to the host (one transfer per device), hand them to the callbacks."""
        pending, self._pending = self._pending, []
        if not pending:
            return []
        tensors = [v for r in pending for v in r.values() if torch.is_tensor(v)]
        values = iter(_to_floats(tensors))
        records = [{k: next(values) if torch.is_tensor(v) else float(v) for k, v in r.items()} for r in pending]
        self._latest = records[-1]
        if self.keep_history:
            self._history.extend(records)
        for record in records:
            for callback in self.callbacks:
                callback(record)
        return records

    @property
    def history(self) -> list[dict[str, float]]:
        """Every record so far (reads the pending ones)."""
        self.read()
        return list(self._history)

    @property
    def latest(self) -> dict[str, float] | None:
        """The newest record, or None before the first monitored step."""
        self.read()
        return self._latest

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """(steps, values) of one key over the history, for plotting."""
        rows = [(r["step"], r[key]) for r in self.history if key in r]
        return [s for s, _ in rows], [v for _, v in rows]

    def plot(self, keys: Iterable[str] | None = None, path=None, **kwargs):
        """Draw the history with matplotlib (see :func:`adamlab.monitor.output.plot_history`)."""
        from .output import plot_history

        return plot_history(self.history, keys=keys, path=path, **kwargs)

    def close(self) -> None:
        """Read what is pending, remove the hooks, close the callbacks that can be closed."""
        if not self._handles:
            return  # closed already
        self.read()
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self._snapshot = None
        for callback in self.callbacks:
            if hasattr(callback, "close"):
                callback.close()

    remove = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---------------------------------------------------------------- hooks

    def _before(self, optimizer, args, kwargs) -> None:
        self._calls += 1
        self._snapshot = None
        if (self._calls - 1) % self.every:
            return
        # a closure computes the grads inside step(): then every param may step
        closure = (args[0] if args else kwargs.get("closure")) is not None
        with torch.no_grad(), _one_thread():
            self._snapshot = [self._snap_group(gi, g, closure) for gi, g in enumerate(optimizer.param_groups)]

    def _after(self, optimizer, args, kwargs) -> None:
        snapshot, self._snapshot = self._snapshot, None
        if snapshot is None:
            return
        with torch.no_grad(), _one_thread():
            record = self._measure(snapshot)
        self._pending.append(record)
        if len(self._pending) >= self.read_every:
            self.read()

    # ---------------------------------------------------------------- before the step

    def _snap_group(self, gi: int, group: dict, closure: bool) -> list[_ParamSnap]:
        opt, record = self.optimizer, self._record
        params = [(j, p) for j, p in enumerate(group["params"]) if closure or p.grad is not None]
        locals_ = [real_local(p.detach()) for _, p in params]
        norms = _norms(locals_)
        names = group.get("param_names")
        plans: dict = {}
        snaps = []
        for (j, p), local, norm in zip(params, locals_, norms):
            positions = self._sampler.positions((gi, j), p, local)
            old = gather(local, positions, copy=True).float()
            state = opt.state.get(p) or {}  # .get: never create an entry in torch's defaultdict
            before = plan = None
            if record is not None:
                before = tuple(_number(state.get(n, record.counter_start[n])) for n in record.counters)
                plan = plans.get((before, not state))
                if plan is None:
                    plan = plans[(before, not state)] = self._plan(group, before, not state)
            pre_state = None
            if plan is not None and p.dtype in HALF:
                pre_state = {n: self._state_sample(state, n, group, local, positions, copy=True)
                             for n in plan.config.state_names()}
            name = self._names.get(id(p)) or (names[j] if names else f"param{j}")
            snaps.append(_ParamSnap(p, name, local, positions, local.numel() / old.numel(), old, norm, before,
                                    plan, pre_state))
        return snaps

    def _plan(self, group, before, fresh):
        """The record's plan for this step, as the optimizer will compute it (counters advanced by one)."""
        record = self._record
        dtype = self.optimizer._counter_dtype(group) if hasattr(self.optimizer, "_counter_dtype") else step_dtype()
        counters = Counters(dict(zip(record.counters, before)), dtype)
        if "step" in counters:
            counters["step"] += 1
        try:
            return record.plan(group, counters, fresh)
        except (ValueError, RuntimeError):
            return None  # the step refuses the group with the same error: let it say so

    def _state_sample(self, state, name, group, local, positions, copy=False) -> torch.Tensor:
        value = state_array(self.optimizer, state, name)  # 8-bit state: its decoded values
        if value is not None:
            return gather(real_local(value), positions, copy=copy).float()
        fill = self._record.state_fill.get(name)  # a param's first step: its state as the step creates it
        n = local.numel() if positions is None else positions.numel()
        return torch.full((n,), float(group[fill]) if fill else 0.0, device=local.device)

    # ---------------------------------------------------------------- after the step

    def _measure(self, snapshot) -> dict:
        opt = self.optimizer
        skipped = self._skipped()
        record: dict[str, Any] = {"step": self._calls}
        if skipped is not None:
            record["step_skipped"] = float(skipped)
        for gi, (group, snaps) in enumerate(zip(opt.param_groups, snapshot)):
            gname = group["name"] if isinstance(group.get("name"), str) else f"group{gi}"
            record[f"{gname}/lr"] = _keep(group["lr"])
            for key, value in self._group_stats(group, snaps, skipped).items():
                record[f"{gname}/{key}"] = value
        for name, value in skip_counters(opt).items():
            record[f"skip/{name}"] = _keep(value)
        return record

    def _skipped(self) -> bool | None:
        """Whether the step was skipped (GradScaler's overflow, skip_nonfinite); None where it cannot be told."""
        skipped = getattr(self.optimizer, "last_step_skipped", None)
        return None if skipped is None else bool(skipped)

    def _config(self, group):
        """The shape of this group's update (its record's config at a first step); None for torch.optim."""
        if self._record is None:
            return None
        return self._record.plan(group, Counters({n: 1.0 for n in self._record.counters}, torch.float32), True).config

    def _applies(self, group) -> set:
        """The optional statistics of this group: fixed by the optimizer and the group, not by the step."""
        out = set()
        cfg = self._config(group)
        if cfg is not None and cfg.preconditioner_state():
            out |= {"preconditioner"} | ({"eps"} if cfg.eps_added_to_root() else set())
        name = getattr(self._record, "name", None)
        if name == "adam" and group.get("amsgrad"):
            out.add("amsgrad")
        if name == "radam":
            out.add("radam")
        if self._record is not None and "step" in self._record.counters:
            out.add("t")
        if self._record is not None and any(p.dtype in HALF for p in group["params"]):
            out.add("half")
        return out

    def _group_stats(self, group, snaps, skipped) -> dict:
        applies = self._applies(group)
        stepped = [s for s in snaps if s.param.grad is not None and not s.param.grad.is_sparse]
        device = snaps[0].local.device if snaps else torch.device("cpu")
        dtype = accumulate_dtype(device)
        new_sums = lambda: Sums(Histogram(self.bins_per_octave, device, torch.float32)
                                if "preconditioner" in applies else None, dtype)
        group_sums, out = new_sums(), {}
        grad_norms = _norms([real_local(s.param.grad) for s in stepped])
        if self.per_param:
            for s, gnorm in zip(stepped, grad_norms):
                sums = new_sums()
                sums.terms["grad_sq"].append(sum_of_squares([gnorm], dtype))
                if not skipped:
                    sums.numel += s.local.numel()
                    sums.terms["param_sq"].append(sum_of_squares([s.norm], dtype))
                    self._host_terms(sums, s)
                    self._add_bucket(sums, [s])
                # finished at once: one param's histogram alive at a time
                out.update({f"{s.name}/{k}": v for k, v in finish(sums, self.percentiles, applies).items()})
                group_sums.merge(sums)
        elif stepped:
            group_sums.terms["grad_sq"].append(sum_of_squares(grad_norms, dtype))
            if not skipped:
                group_sums.numel += sum(s.local.numel() for s in stepped)
                group_sums.terms["param_sq"].append(sum_of_squares([s.norm for s in stepped], dtype))
                for s in stepped:
                    self._host_terms(group_sums, s)
                for bucket in _buckets(stepped):
                    self._add_bucket(group_sums, bucket)
        out.update(finish(group_sums, self.percentiles, applies))
        return out

    def _host_terms(self, sums: Sums, s: _ParamSnap) -> None:
        n = s.local.numel()
        if s.plan is not None and "step" in self._record.counters:
            sums.host["t"].append((n, s.before[0] + 1))
        if s.plan is not None and self._record.name == "radam":
            sums.host["rect"].append((n, float(s.plan.scalars.get("rect", float("nan")))))
            sums.host["rectified"].append((n, float(s.plan.config.rectified)))

    def _add_bucket(self, sums: Sums, bucket: list[_ParamSnap]) -> None:
        """Coordinates of params that share one plan and one precision class, concatenated."""
        first = bucket[0]
        cat = lambda xs: xs[0] if len(xs) == 1 else torch.cat(xs)
        w = self._weights(bucket)
        old = cat([s.old for s in bucket])
        new = cat([gather(s.local, s.positions).float() for s in bucket])
        pre = intended = None
        if first.plan is not None and first.plan.config.preconditioner_state():
            cfg, scalars = first.plan.config, SimpleNamespace(**first.plan.scalars)
            state = {n: cat([self._post_state(s, n) for s in bucket]) for n in cfg.preconditioner_state()}
            pre = cfg.preconditioner(state, scalars)
        if first.pre_state is not None:
            cfg, scalars = first.plan.config, SimpleNamespace(**first.plan.scalars)
            grad = cat([gather(real_local(s.param.grad), s.positions).float() for s in bucket])
            state = {n: cat([s.pre_state[n] for s in bucket]) for n in first.pre_state}
            # the grad is read after the step, so unscaled by it where AMP scaled it: no unscale here
            intended, _, _ = apply_update(cfg, old, grad, state, scalars)
        sums.add_coordinates(w, old, new, pre, intended, first.param.dtype)

    def _weights(self, bucket: list[_ParamSnap]) -> torch.Tensor:
        """Each sampled coordinate's weight, built on the device once per bucket layout."""
        key = tuple((id(s.param), s.old.numel(), s.weight) for s in bucket)
        w = self._weight_cache.get(key)
        if w is None:
            if len(self._weight_cache) > 64:  # the set of params with grads keeps changing
                self._weight_cache.clear()
            parts = [torch.full((s.old.numel(),), s.weight, device=s.old.device) for s in bucket]
            w = self._weight_cache[key] = torch.cat(parts)
        return w

    def _post_state(self, s: _ParamSnap, name: str) -> torch.Tensor:
        value = state_array(self.optimizer, self.optimizer.state[s.param], name)
        return gather(real_local(value), s.positions).float()


def _buckets(snaps: list[_ParamSnap]) -> list[list[_ParamSnap]]:
    """Params with the same plan and precision class, in order."""
    out: dict = {}
    for s in snaps:
        out.setdefault((id(s.plan), s.param.dtype in HALF, s.local.device), []).append(s)
    return list(out.values())


_threads = [1]  # torch's intra-op threads outside the hooks


@contextlib.contextmanager
def _one_thread():
    """The hooks' ops on samples (at most ``sample`` elements) run on one CPU thread: a parallel region
    costs more than it saves there, and on a loaded machine each one can wait a time slice for its
    second thread (15 ms against 0.03 ms for a sqrt of 64k floats, measured on 2 busy cores)."""
    _threads[0] = torch.get_num_threads()
    if _threads[0] > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if _threads[0] > 1:
            torch.set_num_threads(_threads[0])


def _norms(tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each tensor's L2 norm as a 0-d device tensor, in few kernel launches.

    Whole tensors: with all of torch's threads.
    """
    if _threads[0] > 1:
        torch.set_num_threads(_threads[0])
    try:
        return _norms_now(tensors)
    finally:
        if _threads[0] > 1:
            torch.set_num_threads(1)


def _norms_now(tensors):
    out: list = [None] * len(tensors)
    # bf16 in its own dtype (the reduction accumulates in fp32 and rounds the norm once to bf16's
    # 3 digits): converting first costs 50x more on CPU. fp16 in fp32, where a norm over 65504 fits.
    fp16 = [i for i, t in enumerate(tensors) if t.dtype == torch.float16]
    rest = [i for i, t in enumerate(tensors) if t.dtype != torch.float16]
    for indices, kw in ((fp16, {"dtype": torch.float32}), (rest, {})):
        if indices:
            for i, n in zip(indices, torch._foreach_norm([tensors[i] for i in indices], 2, **kw)):
                out[i] = n
    return out


def _number(x) -> float:
    return float(x.item() if torch.is_tensor(x) else x)


def _keep(x):
    """A record's copy of a value the optimizer may change in place later (a Tensor lr, a counter)."""
    return x.detach().clone() if torch.is_tensor(x) else x


def _to_floats(tensors: list[torch.Tensor]) -> list[float]:
    """One transfer per device, in order."""
    out: list = [None] * len(tensors)
    by_device: dict = {}
    for i, t in enumerate(tensors):
        by_device.setdefault(t.device, []).append(i)
    for device, indices in by_device.items():
        dtype = accumulate_dtype(device)
        values = torch.stack([tensors[i].detach().reshape(()).to(dtype) for i in indices]).tolist()
        for i, v in zip(indices, values):
            out[i] = v
    return out


def skip_counters(optimizer) -> dict:
    """skip_nonfinite's counters (nonfinite_skips, nonfinite_streak, last_good_step), where they are on.

    They live in the param groups (the first holds what every group holds);
    read with getattr and .get, so that torch.optim's optimizers, and
    adamlab's without skip_nonfinite, simply have none.
    """
    groups = getattr(optimizer, "param_groups", None) or [{}]
    if not any(g.get("skip_nonfinite") for g in groups):
        return {}
    return {name: groups[0].get(name, 0) for name in SKIP_COUNTERS}
