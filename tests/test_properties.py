"""Property: whatever is done to params, grads, state and state dicts between steps, no step crashes,
and each step either matches torch.optim (given the same mutations) or is refused with nothing changed.
"""

from __future__ import annotations

import pytest
import torch
from cases import assert_same_snapshot, by_name, snapshot
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

CASES = ["adam_amsgrad", "adamw", "nadam", "sgd_momentum", "rmsprop_centered_momentum", "adagrad", "radam"]
MUTATIONS = [
    "nothing",
    "resize_param",  # p.data = a tensor of another size (its grad follows)
    "repoint_state",  # state tensor .data = a clone (pin/offload)
    "resize_state",  # state tensor .data = another size
    "drop_state_key",
    "alias_params",  # p1.data = p0.data: two params share memory
    "param_dtype",  # p.data changes dtype; its state does not
    "state_dtype",  # a state tensor's .data changes dtype
    "no_grad",
    "load_dropped_key",  # load a state dict that lacks one key
    "load_roundtrip",
]


def mutate(kind, opt, ps, rng):
    """Apply one mutation to an optimizer and its params (the same draws for both libraries)."""
    i = rng.randrange(len(ps))
    p = ps[i]
    state = opt.state.get(p, {})
    tensors = [k for k, v in state.items() if torch.is_tensor(v) and v.dim()]
    if kind == "resize_param":
        p.data = torch.linspace(-1, 1, p.numel() + rng.choice([-3, 5]))
    elif kind == "repoint_state" and tensors:
        key = tensors[rng.randrange(len(tensors))]
        state[key].data = state[key].data.clone()
    elif kind == "resize_state" and tensors:
        key = tensors[rng.randrange(len(tensors))]
        state[key].data = torch.zeros(state[key].numel() + 7, dtype=state[key].dtype)
    elif kind == "drop_state_key" and state:
        del state[sorted(state)[rng.randrange(len(state))]]
    elif kind == "alias_params" and len(ps) > 1 and ps[0].shape == ps[1].shape:
        ps[1].data = ps[0].data
    elif kind == "param_dtype":
        p.data = p.data.double()
    elif kind == "state_dtype" and tensors:
        key = tensors[rng.randrange(len(tensors))]
        state[key].data = state[key].data.double()
    elif kind == "load_dropped_key":
        saved = opt.state_dict()
        if saved["state"]:
            j = sorted(saved["state"])[rng.randrange(len(saved["state"]))]
            if saved["state"][j]:
                del saved["state"][j][sorted(saved["state"][j])[0]]
        opt.load_state_dict(saved)
    elif kind == "load_roundtrip":
        opt.load_state_dict(opt.state_dict())
    return i


def attempt(opt, ps, grads, skip):
    """One step; returns the error type, or None."""
    for k, (p, g) in enumerate(zip(ps, grads)):
        p.grad = None if k == skip else g.to(p.dtype).reshape(-1)[: p.numel()].reshape(p.shape).clone()
    try:
        opt.step()
    except Exception as e:  # noqa: BLE001 - any refusal is fine if it changed nothing
        return type(e)
    return None


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case_name=st.sampled_from(CASES),
    fused=st.sampled_from([None, False]),
    plan=st.lists(st.tuples(st.sampled_from(MUTATIONS), st.integers(0, 2**16)), min_size=1, max_size=4),
    host_check=st.sampled_from(["c++", "python"]),
)
def test_every_step_matches_torch_or_is_refused_with_nothing_changed(case_name, fused, plan, host_check):
    """host_check: the per-step array check as one C++ call, or asked in Python (the same answers)."""
    from adamlab.backends import hostcheck

    with hostcheck.using(host_check == "c++"):
        _mutated_run(case_name, fused, plan)


def _mutated_run(case_name, fused, plan):
    import random

    case = by_name(case_name)
    ours_ps = [torch.nn.Parameter(torch.linspace(-1, 1, 12)) for _ in range(3)]
    theirs_ps = [torch.nn.Parameter(p.detach().clone()) for p in ours_ps]
    ours, theirs = case.make(ours_ps, fused=fused), case.make_torch(theirs_ps)
    for step, (kind, seed) in enumerate(plan):
        grads = [torch.sin(torch.arange(64.0) * (step + 1) + k) for k in range(3)]
        skip = seed % 4 if kind == "no_grad" else None
        try:
            mutate(kind, ours, ours_ps, random.Random(seed))
        except Exception:  # noqa: BLE001 - a refused load must change nothing; compare and stop
            return
        try:
            mutate(kind, theirs, theirs_ps, random.Random(seed))
        except Exception:  # noqa: BLE001 - torch refuses it: nothing more to compare against
            return
        before = snapshot(ours), [p.detach().clone() for p in ours_ps]
        theirs_error = attempt(theirs, theirs_ps, grads, skip)
        ours_error = attempt(ours, ours_ps, grads, skip)
        event(f"{kind}: ours {getattr(ours_error, '__name__', 'ok')}, torch {getattr(theirs_error, '__name__', 'ok')}")
        if ours_error is not None:  # refused: nothing may have changed
            assert_same_snapshot(snapshot(ours), before[0])
            assert all(torch.equal(p, v) for p, v in zip(ours_ps, before[1]))
            return
        if theirs_error is not None:
            return  # torch refuses a mutation adamlab handles; the two have diverged
        for p, q in zip(ours_ps, theirs_ps):
            assert p.shape == q.shape
            assert torch.allclose(p.detach().double(), q.detach().double(), rtol=1e-5, atol=1e-6), (kind, step)


@pytest.mark.parametrize("case_name", CASES)
def test_the_mutations_themselves_are_harmless_to_torch(case_name):
    """Sanity of the harness: with no mutation, the two libraries agree for several steps."""
    case = by_name(case_name)
    ours_ps = [torch.nn.Parameter(torch.linspace(-1, 1, 12)) for _ in range(3)]
    theirs_ps = [torch.nn.Parameter(p.detach().clone()) for p in ours_ps]
    ours, theirs = case.make(ours_ps), case.make_torch(theirs_ps)
    for step in range(4):
        grads = [torch.sin(torch.arange(64.0) * (step + 1) + k) for k in range(3)]
        assert attempt(ours, ours_ps, grads, None) is None and attempt(theirs, theirs_ps, grads, None) is None
    assert all(torch.allclose(p, q, rtol=1e-5, atol=1e-6) for p, q in zip(ours_ps, theirs_ps))
