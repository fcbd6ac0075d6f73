"""The one optimizer base class: arguments, state, the step, checkpoints.

A subclass names its record and any defaults it fixes::

    class AdamW(Optimizer, algorithm=ADAM, defaults={"weight_decay": 1e-2},
                fixed={"decoupled_weight_decay": True}):
        "Adam with decoupled weight decay."

and gets torch's signature (from the record's options, in torch's order)
and an ``Args:`` section. A step is all or nothing:

1. *prepare*: gather params with gradients, read their counters, bucket them
   by counters, plan each bucket, stage the state of new params, check every
   array, and get a backend ready (kernels built and loaded); anything that
   can fail or refuse happens here, and nothing is written;
2. *apply*: install staged state, run each bucket, then advance the counters.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch

from ..algorithms import Algorithm
from . import checkpoint, compiled, device, lowp, lowp_state, skipping
from .counters import CounterBank, Counters, step_dtype
from .slots import Stage

HALF = (torch.float16, torch.bfloat16)


def state_dtype(param: torch.Tensor) -> torch.dtype:
    """Moments of half-precision params are kept in fp32, so eps=1e-8 and small g^2 survive."""
    return torch.float32 if param.dtype in HALF else param.dtype


class Optimizer(torch.optim.Optimizer):
    """Base of every adamlab optimizer; the algorithm lives in its record (:mod:`adamlab.algorithms`).

    A subclass names its record (``algorithm=``), the defaults it changes
    (``defaults=``) and the options it fixes (``fixed=``, e.g. AdamW's
    ``decoupled_weight_decay=True``), and gets torch's constructor signature and
    an ``Args:`` section listing every option with its default; see
    docs/adding-an-optimizer.md. Only subclasses are constructed.

    Args:
        params (iterable): Tensors, (name, Tensor) pairs, or param-group dicts (a ``"params"``
            entry plus options that override the defaults for that group), as torch.optim takes them.
        **options: the record's options by name (each subclass's ``Args:`` lists them); an unknown
            name raises TypeError, a value out of range ValueError naming the option. A subclass's
            fixed options are not in its signature (passing one is a TypeError).
    """

    algorithm: Algorithm
    _class_defaults: dict[str, Any] = {}
    _fixed: dict[str, Any] = {}
    # torch.amp.GradScaler hands fused-style optimizers grad_scale and found_inf (see _amp_inputs)
    _step_supports_amp_scaling = True
    _last_step_skipped = False
    _device_found_inf = None  # a device step's found_inf, read on the device by the kernel

    @property
    def last_step_skipped(self) -> bool:
        """Whether the last step() was skipped (GradScaler's overflow, or skip_nonfinite): nothing was written.

        After a device step under AMP this reads found_inf from the device (it waits for it).
        """
        if self._device_found_inf is not None:
            return bool(self._device_found_inf.sum() != 0)
        return self._last_step_skipped

    def __init_subclass__(cls, algorithm: Algorithm | None = None, defaults=None, fixed=None, **kw):
        super().__init_subclass__(**kw)
        if algorithm is None:
            return
        cls.algorithm = algorithm
        cls._class_defaults = {**algorithm.defaults(), **(defaults or {})}
        cls._fixed = dict(fixed or {})
        _build_signature(cls)

    def __init__(self, params, **options):
        unknown = sorted(set(options) - set(self._class_defaults) - {"params"})
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected keyword arguments {unknown}")
        defaults = {**self._class_defaults, **options, **self._fixed}
        if isinstance(defaults.get("betas"), list):
            defaults["betas"] = tuple(defaults["betas"])
        self.algorithm.check(defaults)
        self._reset_caches()
        super().__init__(params, defaults)
        if self.algorithm.eager_state:
            for group in self.param_groups:
                self._create_eager_state(group)

    def _reset_caches(self) -> None:
        """Derived from the state, rebuilt on demand: never pickled, never in a state dict."""
        self._counters = CounterBank()
        self._memo: dict = {}  # per bucket of params: what was checked last step, and the kernels' layout

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        checkpoint.fill_defaults(self)  # a checkpoint from an older torch lacks keys added since
        if "_counters" not in self.__dict__:  # unpickled: torch's __getstate__ keeps only the state
            self._reset_caches()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        options = {k: v for k, v in param_group.items() if k != "params"}
        self.algorithm.check({**self.defaults, **options})
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
        if group.get("decay_scale") == "schedule":
            group.setdefault("base_lr", group["lr"])  # gamma_0 of the schedule multiplier lr / gamma_0
        if self.algorithm.eager_state and hasattr(self, "_counters"):
            self._create_eager_state(group)

    def _create_eager_state(self, group) -> None:
        """State created at construction, where torch does so (Adagrad)."""
        for p in group["params"]:
            state = self.state[p]
            if not state:
                for name, value in self._new_state(p, group, self.algorithm.plan(group, _FRESH, True)).items():
                    state[name] = value
                for name in self.algorithm.counters:
                    state[name] = torch.tensor(self.algorithm.counter_start[name], dtype=self._counter_dtype(group))

    # ------------------------------------------------------------------ step

    def step(self, closure=None):
        if torch.compiler.is_compiling():
            return compiled.step(self, closure)
        self._opt_called = True  # what an LRScheduler's wrapper records; see _wrapped_by_lr_sched below
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        differentiable = bool(self.defaults.get("differentiable", False))
        with torch.set_grad_enabled(differentiable):
            stage = self._prepare(differentiable)
            if stage is not None:
                stage.apply()
        return loss

    # An LRScheduler leaves a step so marked unwrapped: opt.step stays this method, so
    # torch.compile(opt.step, fullgraph=True) traces it whether the scheduler was built before or after
    step._wrapped_by_lr_sched = True

    def _init_group(self, group, gi, written, grads):
        """torch.compile runs this untraced at trace time (torch.optim's hook): see :mod:`.compiled`."""
        return compiled.init_group(self, group, gi, written, grads)

    def _amp_inputs(self, differentiable: bool = False):
        """(grad_scale or None, whether found_inf says to skip, found_inf for the device); set by GradScaler.

        When every group takes a device step (optim/device.py), found_inf is not read on the host: the
        kernel skips and the device counters stay where they are, with no host sync.
        """
        grad_scale, found_inf = getattr(self, "grad_scale", None), getattr(self, "found_inf", None)
        if found_inf is not None and device.takes_found_inf(self, differentiable):
            return grad_scale, False, found_inf
        skip = found_inf is not None and bool(found_inf.sum() != 0 if torch.is_tensor(found_inf) else found_inf)
        return grad_scale, skip, None

    def _prepare(self, differentiable: bool) -> Stage | None:
        self._last_step_skipped = False
        grad_scale, overflow, found_inf = self._amp_inputs(differentiable)
        self._device_found_inf = found_inf
        if overflow:
            self._last_step_skipped = True
            return None  # GradScaler found an overflow: nothing is written and the step is not counted
        guarded = skipping.enabled(self)
        if guarded and not skipping.gradients_are_finite(self):
            skipping.record_skip(self)
            self._last_step_skipped = True
            return None
        stage = Stage(self, found_inf, priming=self._is_priming())
        for gi, group in enumerate(self.param_groups):
            stage.add_group(gi, group, grad_scale, differentiable)
        if guarded:
            stage.after.append(lambda: skipping.record_applied(self))
        return stage

    def _is_priming(self) -> bool:
        """A fresh optimizer stepped at lr 0 on all-zero gradients: torch.distributed.checkpoint's priming."""
        if self.state or any(g.get("count_priming", False) or _nonzero(g["lr"]) for g in self.param_groups):
            return False
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        return bool(grads) and not any(bool(g.any()) for g in grads)

    def _counter_dtype(self, group) -> torch.dtype:
        return torch.float32 if group.get("fused") or group.get("capturable") else step_dtype()

    def _new_state(self, p: torch.Tensor, group, plan) -> dict[str, torch.Tensor]:
        """Zero state (or torch's fill value) for a param's first step, in torch's layout."""
        out = {}
        for name in plan.config.state_names():
            key = self.algorithm.state_fill.get(name)
            value = group[key] if key else 0
            if key and p.is_complex():
                value = complex(value, value)
            out[name] = torch.full_like(p, value, dtype=lowp.state_dtype(group, p), memory_format=torch.preserve_format)
        return out

    # ------------------------------------------------------------ checkpoints

    def state_dict(self) -> dict[str, Any]:
        return lowp_state.add_format(self, checkpoint.hide_beyond_torch(self, super().state_dict()))

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's loader, after checks torch skips, keeping fp32 moments for half params.

        The state is converted to this optimizer's storage (its groups' state_precision,
        param_update and rounding_seed stay as they are, whatever the checkpoint says).
        """
        lowp_state.read_format(state_dict)
        checkpoint.check_state_dict(self, state_dict)
        storage = [{k: g[k] for k in lowp_state.STORAGE_OPTIONS if k in g} for g in self.param_groups]
        super().load_state_dict(state_dict)
        self._reset_caches()  # they point at the replaced state tensors
        for group, kept in zip(self.param_groups, storage):
            group.update(kept)
        checkpoint.restore_state_dtypes(self, state_dict, state_dtype)
        lowp_state.restore(self, state_dict)

    def memory_report(self) -> dict[str, Any]:
        """Optimizer-state bytes per param, measured from the state tensors (see docs/low_precision.md)."""
        return lowp_state.memory_report(self)


_FRESH = Counters({"step": 1}, torch.float32)


def _nonzero(lr) -> bool:
    return bool(lr != 0)


def _build_signature(cls) -> None:
    """torch's constructor signature and an ``Args:`` section, from the record's options."""
    P = inspect.Parameter
    params = [P("self", P.POSITIONAL_OR_KEYWORD), P("params", P.POSITIONAL_OR_KEYWORD)]
    lines = ["", "Args:", "    params: an iterable of Tensors, of (name, Tensor) pairs, or of param-group dicts."]
    positional = []
    for option in cls.algorithm.options:
        if option.name in cls._fixed:
            continue
        kind = P.POSITIONAL_OR_KEYWORD if option.positional else P.KEYWORD_ONLY
        default = cls._class_defaults[option.name]
        params.append(P(option.name, kind, default=default))
        if option.positional:
            positional.append(option.name)
        lines.append(f"    {option.name} (default {default!r}): {option.doc}")
    signature = inspect.Signature(params)

    def __init__(self, params, *args, **kwargs):
        bound = signature.bind(self, params, *args, **kwargs)
        options = {k: v for k, v in bound.arguments.items() if k not in ("self", "params")}
        Optimizer.__init__(self, params, **options)

    __init__.__signature__ = signature
    __init__.__doc__ = cls.__doc__
    cls.__init__ = __init__
    cls.__signature__ = inspect.Signature(params[1:])
    cls.__doc__ = (cls.__doc__ or "").rstrip() + "\n" + "\n".join(lines) + "\n"
