"""The one table of optimizer configurations that drives the test suite.

Each :class:`Case` is an adamlab optimizer class plus hyperparameters. Where
torch.optim has the exact same algorithm (``torch_name`` is set), the tests
compare against it; every case is also compared against the independent
NumPy transcription in ``tests/oracle.py``. Like torch's OptimizerInfo and
optax's test table, tests iterate over this table instead of repeating
themselves per optimizer.
"""

from __future__ import annotations

import copy
import io
import math
import warnings
from dataclasses import dataclass

import pytest
import torch

import adamlab

# fused=False is the readable reference backend; None is the default (fast path where it applies).
BACKENDS = {"reference": False, "default": None}


@dataclass(frozen=True)
class Info:
    """What one optimizer class can do, recorded once (torch's OptimizerInfo, in our words)."""

    name: str  # the adamlab class, and torch.optim's class of the same name
    decay_modes: tuple[str, ...]  # weight-decay modes it can be asked for: "l2", "decoupled"
    decoupled_flag: bool  # it takes decoupled_weight_decay= (AdamW fixes it; Adamax, Adagrad, RMSprop lack it)
    sparse: bool  # torch lets it take sparse gradients
    tuning: tuple[float, float, int]  # trajectory lr, convergence lr, convergence steps

    def decay_kwargs(self, mode: str, weight_decay: float) -> dict:
        kw = {"weight_decay": weight_decay}
        if self.decoupled_flag:
            kw["decoupled_weight_decay"] = mode == "decoupled"
        return kw


# Trajectory lrs are moderate, so that a float32 rounding difference is not amplified
# chaotically (sign-like steps near a minimum). Plain gradient descent needs many
# steps on Rosenbrock (condition number ~2500 at the minimum).
INFOS = {
    i.name: i
    for i in (
        Info("Adam", ("l2", "decoupled"), True, False, (3e-3, 5e-2, 1500)),
        Info("AdamW", ("decoupled",), False, False, (3e-3, 5e-2, 1500)),
        Info("RAdam", ("l2", "decoupled"), True, False, (3e-3, 3e-2, 1500)),
        Info("NAdam", ("l2", "decoupled"), True, False, (1e-3, 1e-2, 3000)),
        Info("Adamax", ("l2",), False, False, (3e-3, 2e-2, 1500)),
        Info("Adagrad", ("l2",), False, True, (3e-2, 3e-1, 10000)),
        Info("SGD", ("l2", "decoupled"), True, True, (1e-2, 2e-3, 1500)),
        Info("RMSprop", ("l2",), False, False, (1e-3, 3e-3, 1500)),
    )
}


@dataclass(frozen=True)
class Case:
    name: str
    optimizer: str  # adamlab class name
    kwargs: dict  # hyperparameters other than lr
    torch_name: str | None  # torch.optim class with the same algorithm and arguments
    lr: float  # lr of the trajectory comparisons
    converge_lr: float  # a sensible lr for the convergence problems
    converge_steps: int

    @property
    def info(self) -> Info:
        return INFOS[self.optimizer]

    @property
    def sign(self) -> float:
        """-1 for maximize=True: tests hand these the negated loss, so every run descends."""
        return -1.0 if self.kwargs.get("maximize", False) else 1.0

    @property
    def algorithm(self) -> str:
        return getattr(adamlab, self.optimizer).algorithm.name

    def make(self, params, **overrides) -> adamlab.Optimizer:
        kw = {"lr": self.lr, **self.kwargs, **overrides}
        return getattr(adamlab, self.optimizer)(params, **kw)

    def make_torch(self, params, **overrides) -> torch.optim.Optimizer:
        assert self.torch_name, f"torch.optim has no counterpart for {self.name}"
        kw = {"lr": self.lr, **self.kwargs, **overrides}
        for key in ("fused", "backend"):
            kw.pop(key, None)
        return getattr(torch.optim, self.torch_name)(params, **kw)

    def hyper(self, **overrides) -> dict:
        """The full hyperparameters (adamlab defaults filled in), for the NumPy oracle."""
        group = dict(self.make([torch.zeros(1)], **overrides).param_groups[0])
        group.pop("params")
        return group

    def weight_decay_modes(self) -> list[str]:
        return list(self.info.decay_modes)

    def decay_kwargs(self, mode: str, weight_decay: float) -> dict:
        return self.info.decay_kwargs(mode, weight_decay)


def _case(name, optimizer, torch_name=None, tuning=(), **kwargs):
    lr, converge_lr, steps = tuning or INFOS[optimizer].tuning
    return Case(name, optimizer, kwargs, torch_name, lr, converge_lr, steps)


def _torch(name, optimizer, tuning=(), **kwargs):
    return _case(name, optimizer, optimizer, tuning, **kwargs)


PLAIN_SGD = (1e-2, 1.9e-3, 10000)
PLAIN_RMSPROP = (1e-3, 3e-3, 5000)

# Configurations torch.optim also has: compared step for step against it.
TORCH_CASES = [
    _torch("adam", "Adam"),
    _torch("adam_amsgrad", "Adam", amsgrad=True),
    _torch("adam_maximize", "Adam", maximize=True),
    _torch("adam_l2", "Adam", weight_decay=0.1),
    _torch("adam_l2_amsgrad_maximize", "Adam", weight_decay=0.1, amsgrad=True, maximize=True),
    _torch("adam_decoupled", "Adam", weight_decay=0.1, decoupled_weight_decay=True),
    _torch("adam_betas", "Adam", (3e-3, 1e-2, 1500), betas=(0.8, 0.99), eps=1e-6),
    _torch("adamw", "AdamW"),
    _torch("adamw_wd", "AdamW", weight_decay=0.5),
    _torch("adamw_amsgrad", "AdamW", weight_decay=0.1, amsgrad=True),
    _torch("adamw_maximize", "AdamW", weight_decay=0.1, maximize=True),
    _torch("radam", "RAdam"),
    _torch("radam_l2", "RAdam", weight_decay=0.1),
    _torch("radam_decoupled", "RAdam", weight_decay=0.1, decoupled_weight_decay=True),
    _torch("radam_maximize", "RAdam", maximize=True, betas=(0.8, 0.99)),
    _torch("nadam", "NAdam"),
    _torch("nadam_l2", "NAdam", weight_decay=0.1),
    _torch("nadam_decoupled_maximize", "NAdam", weight_decay=0.1, decoupled_weight_decay=True, maximize=True),
    _torch("nadam_momentum_decay", "NAdam", momentum_decay=0.02, betas=(0.8, 0.99)),
    _torch("adamax", "Adamax"),
    _torch("adamax_l2_maximize", "Adamax", weight_decay=0.1, maximize=True),
    _torch("adamax_betas", "Adamax", betas=(0.8, 0.99), eps=1e-6),
    _torch("adagrad", "Adagrad"),
    _torch("adagrad_lr_decay", "Adagrad", lr_decay=1e-4),
    _torch("adagrad_l2_maximize", "Adagrad", weight_decay=0.1, maximize=True),
    _torch("adagrad_initial_accumulator", "Adagrad", initial_accumulator_value=0.1, eps=1e-8),
    _torch("sgd", "SGD", PLAIN_SGD),
    _torch("sgd_momentum", "SGD", momentum=0.9),
    _torch("sgd_dampening", "SGD", momentum=0.9, dampening=0.5),
    _torch("sgd_nesterov", "SGD", (1e-2, 1.2e-3, 1500), momentum=0.9, nesterov=True),
    _torch("sgd_l2", "SGD", PLAIN_SGD, weight_decay=0.1),
    _torch("sgd_momentum_l2_maximize", "SGD", momentum=0.8, weight_decay=0.1, maximize=True),
    _torch("rmsprop", "RMSprop", PLAIN_RMSPROP),
    _torch("rmsprop_centered", "RMSprop", PLAIN_RMSPROP, centered=True),
    _torch("rmsprop_momentum", "RMSprop", momentum=0.9, alpha=0.95),
    _torch("rmsprop_centered_momentum", "RMSprop", centered=True, momentum=0.9),
    _torch("rmsprop_l2_maximize", "RMSprop", PLAIN_RMSPROP, weight_decay=0.1, maximize=True),
]

# Configurations torch.optim lacks: compared against tests/oracle.py only.
EXTRA_CASES = [
    _case("adam_no_bias_correction", "Adam", bias_correction=False),
    _case("adam_no_bias_correction_amsgrad", "Adam", bias_correction=False, amsgrad=True),
    _case("adamw_schedule_decay", "AdamW", weight_decay=0.05, decay_scale="schedule"),
    _case(
        "adamw_schedule_decay_no_bc_amsgrad",
        "AdamW",
        weight_decay=0.05,
        decay_scale="schedule",
        bias_correction=False,
        amsgrad=True,
    ),
    _case("radam_threshold4", "RAdam", rect_threshold=4.0),
    _case("radam_schedule_decay", "RAdam", weight_decay=0.05, decoupled_weight_decay=True, decay_scale="schedule"),
    _case("nadam_schedule_decay", "NAdam", weight_decay=0.05, decoupled_weight_decay=True, decay_scale="schedule"),
    _case("sgd_decoupled", "SGD", tuning=PLAIN_SGD, weight_decay=0.1, decoupled_weight_decay=True),
    _case("sgd_momentum_decoupled", "SGD", momentum=0.9, weight_decay=0.1, decoupled_weight_decay=True),
]

ALL_CASES = TORCH_CASES + EXTRA_CASES
# plain SGD keeps no state, so its state dict has no tensors to check
STATEFUL = [c for c in ALL_CASES if c.optimizer != "SGD" or c.kwargs.get("momentum")]


def params(cases):
    """pytest parameters named after the cases."""
    return [pytest.param(c, id=c.name) for c in cases]


# The fast tier's cases where a test repeats over the whole table: one per optimizer class, each with as many
# of its options as one case carries, and adamlab's own switches; the slow tier runs every case.
FAST = ("adam_l2_amsgrad_maximize", "adamw", "radam_decoupled", "nadam_decoupled_maximize", "adamax_l2_maximize",
        "adagrad_lr_decay", "sgd_nesterov", "rmsprop_centered_momentum", "adam_no_bias_correction",
        "adamw_schedule_decay")


def tiered(cases, slow=lambda case: False):
    """Like :func:`params`, with every case outside FAST (or for which ``slow`` holds) in the slow tier."""
    return [pytest.param(c, id=c.name, marks=[pytest.mark.slow] if c.name not in FAST or slow(c) else [])
            for c in cases]


def by_name(name: str) -> Case:
    return next(c for c in ALL_CASES if c.name == name)


# ------------------------------------------------------------------ shared helpers


def lr_multiplier(t: int) -> float:
    """A schedule that changes every step, so per-step scalars are recomputed (t >= 1)."""
    return 1.0 + 0.5 * math.sin(0.7 * t)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


def rel_diff(actual, expected) -> float:
    """max |actual - expected| / max |expected| over a list of tensors."""
    actual, expected = [a.detach().double() for a in actual], [e.detach().double() for e in expected]
    num = max(float((a - e).abs().max()) for a, e in zip(actual, expected))
    den = max(float(e.abs().max()) for e in expected)
    return num / max(den, 1e-300)


def small_model(dtype=torch.float64, seed=0) -> torch.nn.Module:
    """Linear-Tanh-Linear: small, but with matrix, bias and curvature."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(dtype)


def fixed_batch(dtype=torch.float64, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 5, generator=gen)
    y = torch.randn(32, 3, generator=gen)
    return x.to(dtype), y.to(dtype)  # the same numbers in every dtype


def loss_fn(model, batch, sign=1.0):
    x, y = batch
    return sign * torch.nn.functional.mse_loss(model(x), y)


def through_bytes(state_dict):
    """A state dict after torch.save and torch.load(weights_only=True): no pickled objects allowed."""
    buf = io.BytesIO()
    torch.save(state_dict, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def snapshot(opt: torch.optim.Optimizer):
    """A deep copy of an optimizer's hyperparameters and state, keyed by param position."""
    groups = [copy.deepcopy({k: v for k, v in g.items() if k != "params"}) for g in opt.param_groups]
    position = {id(p): i for i, p in enumerate(p for g in opt.param_groups for p in g["params"])}
    state = {
        position[id(p)]: {k: v.clone() if torch.is_tensor(v) else copy.deepcopy(v) for k, v in s.items()}
        for p, s in opt.state.items()
    }
    return groups, state


def assert_same_snapshot(after, before) -> None:
    assert after[0] == before[0], "hyperparameters changed"
    assert after[1].keys() == before[1].keys(), "params gained or lost state"
    for i, st in before[1].items():
        assert after[1][i].keys() == st.keys(), f"param {i}: state keys changed"
        for k, v in st.items():
            new = after[1][i][k]
            assert torch.equal(new, v) and new.dtype == v.dtype if torch.is_tensor(v) else new == v, (i, k)


def lrs_seen(make_scheduler, steps, lr=0.1):
    """The lr of each optimizer step under a torch scheduler, in order."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sched = make_scheduler(opt)
        seen = []
        for _ in range(steps):
            seen.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
    return seen


def traced_programs(case: Case, dtype: str):
    """(label, program, codecs) of each kernel a case needs for params of ``dtype`` ("float32", ...):
    the host step and the device step (per-param scalars), each with and without AMP unscaling."""
    import dataclasses

    from adamlab.backends.trace import trace
    from adamlab.optim.counters import Counters

    opt = case.make([torch.zeros(3, requires_grad=True)])
    group, record = opt.param_groups[0], opt.algorithm
    host = Counters({n: record.counter_start[n] + (n == "step") for n in record.counters}, torch.float32)
    device = Counters({n: torch.tensor([v]) for n, v in host.items()}, torch.float32)
    state = "float64" if dtype == "float64" else "float32"
    for step, counters in (("host", host), ("device", device)):
        plan = record.plan(group, counters, False)
        for cfg in (plan.config, dataclasses.replace(plan.config, unscale=True)):
            names = tuple(plan.scalars) + (("grad_scale",) if cfg.unscale else ())
            codecs = {"p": dtype, "g": dtype, **{n: state for n in cfg.state_names()}}
            yield f"{case.name}/{dtype}/{step}/{'unscale' if cfg.unscale else 'plain'}", trace(cfg, names), codecs
