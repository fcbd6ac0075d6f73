"""adamlab is a drop-in for torch.optim: defaults, schedulers, closures, groups, hooks, compile.

Where a behaviour is torch's, the oracle is torch.optim doing the same thing.
"""

from __future__ import annotations

import copy
import time

import pytest
import torch
from cases import (
    ALL_CASES,
    by_name,
    fixed_batch,
    loss_fn,
    rel_diff,
    small_model,
    tiered,
)
from torch.optim import lr_scheduler
from torch.optim.optimizer import (
    register_optimizer_step_post_hook,
    register_optimizer_step_pre_hook,
)

import adamlab

TORCH_ONLY_KEYS = {"params", "foreach", "fused", "capturable", "differentiable"}


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RAdam", "SGD", "RMSprop"])
def test_defaults_match_torch(name):
    ours = getattr(adamlab, name)([torch.zeros(2)]).param_groups[0]
    theirs = getattr(torch.optim, name)([torch.zeros(2)]).param_groups[0]
    shared = (theirs.keys() & ours.keys()) - TORCH_ONLY_KEYS
    missing = theirs.keys() - ours.keys() - TORCH_ONLY_KEYS
    assert not missing, f"adamlab lacks torch's hyperparameters {missing}"
    assert {k: ours[k] for k in shared} == {k: theirs[k] for k in shared}


# ------------------------------------------------------------------ schedulers

STEPS = 40
SCHEDULERS = {
    "LambdaLR": lambda opt: lr_scheduler.LambdaLR(opt, lambda t: 1 / (1 + 0.1 * t)),
    "LinearLR": lambda opt: lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=10),
    "CosineAnnealingLR": lambda opt: lr_scheduler.CosineAnnealingLR(opt, T_max=STEPS, eta_min=1e-4),
    "SequentialLR": lambda opt: lr_scheduler.SequentialLR(
        opt,
        [lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=10), lr_scheduler.CosineAnnealingLR(opt, 30)],
        milestones=[10],
    ),
    # cycles betas[0] (Adam family) or momentum (SGD, RMSprop) as well as the lr
    "OneCycleLR": lambda opt: lr_scheduler.OneCycleLR(opt, max_lr=3 * opt.defaults["lr"], total_steps=STEPS),
}
SCHEDULED = ["adamw", "adam_amsgrad", "radam_decoupled", "sgd_nesterov", "rmsprop_centered_momentum"]


def train_scheduled(make_opt, make_sched, sign):
    model, batch = small_model(), fixed_batch()
    opt = make_opt(model.parameters())
    sched = make_sched(opt)
    seen = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss_fn(model, batch, sign).backward()
        opt.step()
        sched.step()
        group = opt.param_groups[0]
        seen.append((group["lr"], group.get("betas"), group.get("momentum")))
    return list(model.parameters()), seen


@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("name", SCHEDULED)
def test_scheduler_drives_adamlab_as_torch(name, scheduler):
    case = by_name(name)
    expected, expected_seen = train_scheduled(case.make_torch, SCHEDULERS[scheduler], case.sign)
    actual, actual_seen = train_scheduled(case.make, SCHEDULERS[scheduler], case.sign)
    assert actual_seen == expected_seen
    assert rel_diff(actual, expected) <= 1e-10


# ------------------------------------------------------------------ closures, groups, zero_grad


@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_step_with_closure_returns_its_loss_and_uses_its_grads(case):
    batch = fixed_batch()
    plain_model, closure_model = small_model(), small_model()
    plain, with_closure = case.make(plain_model.parameters()), case.make(closure_model.parameters())
    for _ in range(3):
        plain.zero_grad()
        loss_fn(plain_model, batch, case.sign).backward()
        plain.step()

        for p in closure_model.parameters():
            p.grad = torch.full_like(p, 1e3)  # stale grads the closure must replace
        losses = []

        def closure(losses=losses):
            with_closure.zero_grad()
            loss = loss_fn(closure_model, batch, case.sign)
            loss.backward()
            losses.append(loss)
            return loss

        assert with_closure.step(closure) is losses[-1]
    assert rel_diff(list(closure_model.parameters()), list(plain_model.parameters())) == 0


GROUPED = ["adamw", "adam_amsgrad", "radam", "sgd_momentum", "rmsprop_centered"]


def train_with_added_group(make_opt, sign):
    model, batch = small_model(), fixed_batch()
    first, second = model[0], model[2]
    opt = make_opt(first.parameters())
    for t in range(6):
        if t == 3:
            opt.add_param_group({"params": list(second.parameters()), "lr": 2 * opt.defaults["lr"]})
        model.zero_grad()
        loss_fn(model, batch, sign).backward()
        opt.step()
    return list(model.parameters()), opt


@pytest.mark.parametrize("name", GROUPED)
def test_add_param_group_as_torch(name):
    case = by_name(name)
    expected, torch_opt = train_with_added_group(case.make_torch, case.sign)
    actual, ours = train_with_added_group(case.make, case.sign)
    assert rel_diff(actual, expected) <= 1e-12
    shared = (torch_opt.param_groups[1].keys() & ours.param_groups[1].keys()) - TORCH_ONLY_KEYS
    assert {k: ours.param_groups[1][k] for k in shared} == {k: torch_opt.param_groups[1][k] for k in shared}


def test_zero_grad():
    model = small_model()
    opt = adamlab.AdamW(model.parameters())
    loss_fn(model, fixed_batch()).backward()
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------ hooks


def test_step_hooks_fire_in_order():
    model = small_model()
    opt = adamlab.AdamW(model.parameters())
    calls = []
    handles = [
        opt.register_step_pre_hook(lambda o, args, kwargs: calls.append(("pre", o))),
        opt.register_step_post_hook(lambda o, args, kwargs: calls.append(("post", o))),
        register_optimizer_step_pre_hook(lambda o, a, k: calls.append(("global pre", o))),
        register_optimizer_step_post_hook(lambda o, a, k: calls.append(("global post", o))),
    ]
    try:
        loss_fn(model, fixed_batch()).backward()
        opt.step()
    finally:
        for h in handles:
            h.remove()
    assert calls == [("global pre", opt), ("pre", opt), ("post", opt), ("global post", opt)]
    opt.step()
    assert len(calls) == 4, "removed hooks still fire"


def test_state_dict_hooks_fire():
    model = small_model()
    opt = adamlab.Adam(model.parameters())
    calls = []
    opt.register_state_dict_pre_hook(lambda o: calls.append("save pre"))
    opt.register_state_dict_post_hook(lambda o, sd: calls.append("save post"))
    opt.register_load_state_dict_pre_hook(lambda o, sd: calls.append("load pre"))
    opt.register_load_state_dict_post_hook(lambda o: calls.append("load post"))
    opt.load_state_dict(opt.state_dict())
    assert calls == ["save pre", "save post", "load pre", "load post"]


# ------------------------------------------------------------------ which params step


@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_params_without_grad_are_skipped(case):
    """No grad: not decayed, not counted, its state as torch left it (none, or Adagrad's initial one)."""
    with_grad, without = torch.randn(4, 3), torch.randn(5)
    start, frozen = with_grad.clone(), without.clone()
    opt = case.make([with_grad, without], weight_decay=0.1)
    twin = case.make_torch([without.clone()], weight_decay=0.1) if case.torch_name else None
    initial = {k: v.clone() for k, v in opt.state.get(without, {}).items()}
    for _ in range(3):
        with_grad.grad = torch.randn(4, 3)
        opt.step()
    assert not torch.equal(with_grad, start)
    assert torch.equal(without, frozen)
    state = opt.state.get(without, {})
    assert state.keys() == initial.keys() and all(torch.equal(state[k], v) for k, v in initial.items())
    if twin is not None:  # torch creates the same initial state, or none
        assert state.keys() == twin.state.get(twin.param_groups[0]["params"][0], {}).keys()


def test_named_parameters_as_torch():
    case = by_name("adamw")
    runs = []
    for make in (case.make_torch, case.make):
        model, batch = small_model(), fixed_batch()
        opt = make(model.named_parameters())
        for _ in range(5):
            opt.zero_grad()
            loss_fn(model, batch).backward()
            opt.step()
        runs.append((list(model.parameters()), opt.state_dict()))
    (expected, torch_sd), (actual, our_sd) = runs
    assert rel_diff(actual, expected) <= 1e-12
    assert our_sd["param_groups"][0]["param_names"] == torch_sd["param_groups"][0]["param_names"]
    model = small_model()
    case.make(model.named_parameters()).load_state_dict(torch_sd)


# ------------------------------------------------------------------ lr = 0 (distributed checkpoint)

DECAYED = [pytest.param(c, mode, id=f"{c.name}-{mode}") for c in ALL_CASES for mode in c.weight_decay_modes()]


@pytest.mark.parametrize("fresh", [False, True], ids=["trained", "fresh"])
@pytest.mark.parametrize("case, mode", DECAYED)
def test_step_at_lr_zero_changes_no_param(case, mode, fresh):
    """torch.distributed.checkpoint creates state with zero grads, lr = 0 and step(closure=None)."""
    model = small_model()
    opt = case.make(model.parameters(), **case.decay_kwargs(mode, 0.1), **({"lr": 0.0} if fresh else {}))
    if not fresh:
        for _ in range(3):
            opt.zero_grad()
            loss_fn(model, fixed_batch(), case.sign).backward()
            opt.step()
    before = [p.detach().clone() for p in model.parameters()]
    for grads in ("zeros", "random"):
        for group in opt.param_groups:
            group["lr"] = 0.0
        for p in model.parameters():
            p.grad = torch.zeros_like(p) if grads == "zeros" else torch.randn_like(p)
        opt.step(closure=None)
        for p, b in zip(model.parameters(), before):
            assert torch.equal(p, b), grads


# ------------------------------------------------------------------ torch.compile


def test_compiled_model_trains_as_eager():
    """The compiled module shares its params with the original; adamlab steps them.

    backend="aot_eager" captures the graph and its backward as inductor does, but
    skips C++ code generation, which alone takes ~30 s on a busy 2-core machine.
    """
    case = by_name("adamw")
    model, batch = small_model(torch.float32), fixed_batch(torch.float32)
    eager = copy.deepcopy(model)
    try:
        compiled = torch.compile(model, backend="aot_eager")
        start = time.perf_counter()
        loss_fn(compiled, batch).backward()
    except (RuntimeError, ImportError, OSError) as err:  # no toolchain or unsupported platform
        pytest.skip(f"torch.compile unavailable: {type(err).__name__}: {err}")
    if time.perf_counter() - start > 60:
        pytest.skip("torch.compile too slow on this machine")
    model.zero_grad()
    ours, theirs = case.make(model.parameters()), case.make_torch(eager.parameters())
    for _ in range(10):
        for m, opt in ((compiled, ours), (eager, theirs)):
            opt.zero_grad()
            loss_fn(m, batch).backward()
            opt.step()
    assert rel_diff(list(model.parameters()), list(eager.parameters())) <= 1e-5
