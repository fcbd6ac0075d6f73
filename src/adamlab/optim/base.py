"""The one optimizer base class: state, dispatch and checkpoint checks.

Subclasses only name their algorithm, defaults and argument checks. A step:

1. gathers the params that have gradients (refusing sparse ones first),
2. creates missing state with ``zeros_like`` (so DTensor params get DTensor state),
3. buckets params by step count, asks :mod:`adamlab.plan` for the scalars,
4. hands each bucket to the fused kernel, or to the reference kernel.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from .. import kernels
from ..plan import make_plan
from ..validation import check_group

HALF = (torch.float16, torch.bfloat16)


def state_dtype(param: torch.Tensor) -> torch.dtype:
    """Moments of half-precision params are kept in fp32, so eps=1e-8 and small g^2 survive."""
    return torch.float32 if param.dtype in HALF else param.dtype


def step_dtype() -> torch.dtype:
    """torch's dtype for state['step']: float64 under a float64 default dtype, else float32."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


def defaults_from(arguments: dict[str, Any]) -> dict[str, Any]:
    """A constructor's ``locals()`` as torch-style group defaults (betas kept as a tuple)."""
    defaults = {k: v for k, v in arguments.items() if k not in ("self", "params", "__class__")}
    if isinstance(defaults.get("betas"), list):
        defaults["betas"] = tuple(defaults["betas"])
    return defaults


class Optimizer(torch.optim.Optimizer):
    """Base of every adamlab optimizer; the algorithm lives in rules and plan."""

    algorithm: str = ""
    #: whether the algorithm keeps state['step'] (torch's SGD does not)
    counts_steps: bool = True

    def __init__(self, params, defaults: dict[str, Any]):
        check_group(defaults)
        self._reset_caches()
        super().__init__(params, defaults)

    def _reset_caches(self) -> None:
        """Derived from the state, rebuilt on demand: never pickled, never in a state dict."""
        self._step_buffers: dict = {}  # step counters as views of one buffer, see _next_steps
        self._layouts: dict = {}  # the fused kernel's per-bucket pointers, see kernels.cpu.Layout

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "_layouts" not in self.__dict__:  # unpickled: torch's __getstate__ keeps only the state
            self._reset_caches()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        check_group({**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}})
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        # decay_scale="schedule" decays by lr / base_lr; torch's schedulers need
        # initial_lr to resume, and set it to the same value when they start
        group.setdefault("base_lr", group["lr"])
        group.setdefault("initial_lr", group["lr"])

    # ------------------------------------------------------------------ step

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        # plan every group before changing anything, so a refused step changes nothing
        work = []
        for group in self.param_groups:
            params, grads = self._params_with_grad(group)
            if params:
                counters, steps = self._next_steps(params)
                work.append((group, counters, self._plan(group, params, grads, steps)))
        for group, counters, buckets in work:
            if counters is not None:
                counters += 1
            for cfg, scalars, ps, gs in buckets:
                states = [self._ensure_state(p, cfg.state_names) for p in ps]
                kernels.apply(cfg, scalars, ps, gs, states, fused=group.get("fused"), cache=self._layouts)
        return loss

    def _params_with_grad(self, group) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        params, grads = [], []
        for p in group["params"]:
            g = p.grad
            if g is not None:
                if g.is_sparse:
                    raise RuntimeError(
                        f"{type(self).__name__} does not support sparse gradients; "
                        "use torch.optim.SparseAdam or a dense gradient"
                    )
                params.append(p)
                grads.append(g)
        return params, grads

    def _plan(self, group, params, grads, steps) -> list:
        """(config, scalars, params, grads) per distinct step count: usually one bucket."""
        if len(set(steps)) == 1:
            return [(*make_plan(self.algorithm, group, steps[0]), params, grads)]
        buckets: dict[int, tuple[list, list]] = defaultdict(lambda: ([], []))
        for p, g, step in zip(params, grads, steps):
            buckets[step][0].append(p)
            buckets[step][1].append(g)
        return [(*make_plan(self.algorithm, group, step), ps, gs) for step, (ps, gs) in buckets.items()]

    def _next_steps(self, params: list[torch.Tensor]):
        """(the step counters to increment, or None; each param's step count after this step).

        The counters stay one 0-d tensor per param, torch's format, but are kept
        as views into one buffer per group, so a step costs two tensor ops
        instead of two per param. Any outside change (a loaded state dict, a
        new param) is noticed by identity and the buffer is rebuilt.
        """
        if not self.counts_steps:
            # the momentum buffer's absence marks the first step, as in torch
            return None, [1 if "momentum_buffer" not in self.state[p] else 2 for p in params]
        key = tuple(map(id, params))
        cached = self._step_buffers.get(key)
        if cached is None or any(self.state[p].get("step") is not v for p, v in zip(params, cached[1])):
            if len(self._step_buffers) > 8:  # the set of params with grads keeps changing
                self._step_buffers.clear()
            cached = self._step_buffers[key] = self._gather_steps(params)
        buffer = cached[0]
        return buffer, [int(s) + 1 for s in buffer.tolist()]

    def _gather_steps(self, params):
        values = [float(self.state[p].get("step", 0.0)) for p in params]
        buffer = torch.tensor(values, dtype=step_dtype())
        views = list(buffer.unbind())
        for p, view in zip(params, views):
            self.state[p]["step"] = view
        return buffer, views

    def _ensure_state(self, p: torch.Tensor, names) -> dict:
        state = self.state[p]
        for name in names:
            if name not in state:
                state[name] = torch.zeros_like(p, dtype=state_dtype(p), memory_format=torch.preserve_format)
        return state

    # ------------------------------------------------------------ checkpoints

    def load_state_dict(self, state_dict: dict) -> None:
        """torch's loader, after checks torch skips, keeping fp32 moments for half params."""
        check_state_dict(self, state_dict)
        super().load_state_dict(state_dict)
        self._reset_caches()  # they point at the replaced state tensors
        params = [p for g in self.param_groups for p in g["params"]]
        saved_ids = [i for g in state_dict["param_groups"] for i in g["params"]]
        for p, pid in zip(params, saved_ids):
            for key, value in state_dict["state"].get(pid, {}).items():
                if key != "step" and torch.is_tensor(value) and value.is_floating_point():
                    self.state[p][key] = value.to(device=p.device, dtype=state_dtype(p)).clone()


def check_state_dict(opt: torch.optim.Optimizer, state_dict: dict) -> None:
    """Refuse a state dict that does not fit, before anything is changed."""
    saved_groups = state_dict.get("param_groups")
    if not isinstance(saved_groups, list) or not isinstance(state_dict.get("state"), dict):
        raise ValueError("state_dict must have 'state' (dict) and 'param_groups' (list)")
    if len(saved_groups) != len(opt.param_groups):
        raise ValueError(
            f"state_dict has {len(saved_groups)} param groups, the optimizer has {len(opt.param_groups)}"
        )
    for gi, (group, saved) in enumerate(zip(opt.param_groups, saved_groups)):
        if len(group["params"]) != len(saved["params"]):
            raise ValueError(
                f"param group {gi}: state_dict has {len(saved['params'])} params, "
                f"the optimizer has {len(group['params'])}"
            )
        for pi, (p, pid) in enumerate(zip(group["params"], saved["params"])):
            for key, value in state_dict["state"].get(pid, {}).items():
                if key == "step":
                    if torch.is_tensor(value) and value.numel() != 1:
                        raise ValueError(f"param group {gi}, param {pi}: 'step' must be a scalar")
                elif torch.is_tensor(value) and value.shape != p.shape:
                    raise ValueError(
                        f"param group {gi}, param {pi}: state '{key}' has shape "
                        f"{tuple(value.shape)}, the param has shape {tuple(p.shape)}"
                    )
