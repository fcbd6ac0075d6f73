"""Distributed checkpoints (DCP) of FSDP2 training on 2 gloo ranks, across torch.optim.AdamW and adamlab.AdamW.

Saved with dcp.save of get_optimizer_state_dict, loaded with dcp.load's default
(strict) planner into the state dict of a fresh optimizer of either library,
then set_optimizer_state_dict. Oracles: the uninterrupted run of the loading
library (and of the saving one), the saved state itself, torch.optim's keys,
and closed forms of Adam's first and second step for DCP's priming step.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import adamlab

dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict  # noqa: E402

pytestmark = pytest.mark.slow  # trainers and process groups: minutes, run in CI

SCRIPT = Path(__file__).parents[1] / "scripts" / "dcp_fsdp2.py"
LIBS = ("torch", "adamlab")
HALF, WD, BETAS, EPS = 6, 0.1, (0.9, 0.999), 1e-8


@pytest.fixture(scope="module")
def res(tmp_path_factory):
    out = tmp_path_factory.mktemp("dcp")
    subprocess.run([sys.executable, str(SCRIPT), str(out)], check=True, timeout=300)
    return torch.load(out / "results.pt", weights_only=True)


def test_both_libraries_write_the_same_keys(res):
    """Strict loading both ways needs equal key sets: every state and param-group key, as DCP stores them."""
    assert res["saved/adamlab"]["keys"] == res["saved/torch"]["keys"]
    assert res["saved/adamlab"]["group_keys"] == res["saved/torch"]["group_keys"]
    assert any(k.startswith("optim.param_groups.0.") for k in res["saved/torch"]["keys"])


@pytest.mark.parametrize("saver", LIBS)
@pytest.mark.parametrize("loader", LIBS)
def test_resume_matches_the_uninterrupted_run(res, saver, loader):
    got = res[f"resumed/{saver}->{loader}"]
    assert got["options"] == got["fresh_options"]  # every option the loader has, at its value (filled where missing)
    saved = res[f"saved/{saver}"]["state"]
    assert got["state"].keys() == saved.keys()
    for name, state in saved.items():  # the state loaded is the state saved, step counters included
        assert got["state"][name].keys() == state.keys()
        for key, value in state.items():
            assert torch.equal(got["state"][name][key], value), (name, key)
        assert float(state["step"]) == HALF
    for a, b in zip(got["params"], res[f"straight/{loader}"]["params"], strict=True):
        if saver == loader:
            assert torch.equal(a, b)
        else:
            assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), (a - b).abs().max()
    for a, b in zip(got["params"], res[f"straight/{saver}"]["params"], strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), (a - b).abs().max()


# ---------------------------------------------------------------- DCP's priming step


def first_update(theta, grad, lr, wd, t):
    """AdamW's update of theta at step t from zero moments, in float64 (Loshchilov & Hutter, torch's eps)."""
    (b1, b2), theta, grad = BETAS, theta.double(), grad.double()
    m, v = (1 - b1) * grad, (1 - b2) * grad**2
    return theta * (1 - lr * wd) - lr * (m / (1 - b1**t)) / (v.sqrt() / (1 - b2**t) ** 0.5 + EPS) - theta


PRIMED_STEP = {"torch": 1, "adamlab": 0}  # torch counts the priming step; adamlab only creates the state


@pytest.mark.parametrize("lib", LIBS)
def test_priming_moves_nothing(res, lib):
    primed = res[f"primed/{lib}"]
    for a, b in zip(primed["before"], primed["after_priming"], strict=True):
        assert torch.equal(a, b)  # lr 0: no update, no decay
    for state in primed["state"].values():
        assert float(state["step"]) == PRIMED_STEP[lib]
        assert not state["exp_avg"].any() and not state["exp_avg_sq"].any()


@pytest.mark.parametrize("lib", LIBS)
def test_first_update_after_priming(res, lib):
    """torch: step 2's update from zero moments, sqrt(1+b2)/(1+b1) = 0.744 of step 1's; adamlab: step 1's."""
    primed, unprimed = res[f"primed/{lib}"], res[f"first/{lib}"]
    lr = primed["lr"][0]
    for theta, g, after, after_unprimed in zip(primed["before"], primed["grads"], primed["after_first"],
                                               unprimed["after_first"], strict=True):
        wd = WD if theta.ndim >= 2 else 0.0  # adamlab.param_groups' rule
        t = PRIMED_STEP[lib] + 1
        assert torch.allclose((after - theta).double(), first_update(theta, g, lr, wd, t=t), rtol=1e-4, atol=1e-9)
        assert torch.allclose((after_unprimed - theta).double(), first_update(theta, g, lr, wd, t=1),
                              rtol=1e-4, atol=1e-9)


PRIMING_CASES = {
    "adamw": ({"weight_decay": WD}, adamlab.AdamW, torch.optim.AdamW),
    "adam-l2": ({"weight_decay": WD}, adamlab.Adam, torch.optim.Adam),  # L2 fills torch's moments at lr 0
    "amsgrad": ({"weight_decay": WD, "amsgrad": True}, adamlab.AdamW, torch.optim.AdamW),
}


def _primed_then_stepped(cls, options, prime):
    torch.manual_seed(0)
    model = torch.nn.Linear(5, 3)
    opt = cls(model.parameters(), lr=1e-2, **options)
    before = [p.detach().clone() for p in model.parameters()]
    if prime:
        get_optimizer_state_dict(model, opt)
    moved_by_priming = any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))
    state = {k: v.clone() for k, v in opt.state[model.weight].items()}
    model(torch.randn(4, 5, generator=torch.Generator().manual_seed(1))).square().sum().backward()
    opt.step()
    return moved_by_priming, state, [p.detach() for p in model.parameters()]


@pytest.mark.parametrize("case", PRIMING_CASES)
def test_counting_the_priming_step_is_torchs_behaviour(case):
    """count_priming=True: the priming step is a step, state and next update as in torch."""
    options, ours, theirs = PRIMING_CASES[case]
    moved, state, params = _primed_then_stepped(ours, {**options, "count_priming": True}, prime=True)
    moved_t, state_t, params_t = _primed_then_stepped(theirs, options, prime=True)
    assert not moved and not moved_t
    assert state.keys() == state_t.keys()
    for key in state_t:
        assert torch.allclose(state[key], state_t[key], rtol=1e-6, atol=1e-12), key
    for a, b in zip(params, params_t, strict=True):
        assert torch.allclose(a, b, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("case", PRIMING_CASES)
def test_priming_leaves_the_first_update_unchanged(case):
    options, ours, _ = PRIMING_CASES[case]
    moved, state, primed = _primed_then_stepped(ours, options, prime=True)
    _, _, unprimed = _primed_then_stepped(ours, options, prime=False)
    assert not moved and float(state["step"]) == 0 and not state["exp_avg"].any()
    for a, b in zip(primed, unprimed, strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("options", [{}, {"weight_decay": 0.0, "amsgrad": True}, {"maximize": True}])
def test_group_keys_equal_torchs(options):
    """At adamlab's defaults for its own options, the saved group keys are exactly torch's."""
    model = torch.nn.Linear(3, 2)
    ours, theirs = adamlab.AdamW(model.parameters(), **options), torch.optim.AdamW(model.parameters(), **options)
    for got, want in ((ours.state_dict(), theirs.state_dict()),
                      (get_optimizer_state_dict(model, ours), get_optimizer_state_dict(model, theirs))):
        assert [sorted(g) for g in got["param_groups"]] == [sorted(g) for g in want["param_groups"]]
        assert got["param_groups"] == want["param_groups"]
