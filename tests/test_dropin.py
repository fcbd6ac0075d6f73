"""Changing one import is enough: torch.optim's constructor surface, complex params, old checkpoints.

torch.optim is the oracle throughout: the same inputs go to both libraries
and what comes out (results, state, exception types) must agree.
"""

from __future__ import annotations

import copy
import inspect

import pytest
import torch
from cases import BACKENDS, INFOS, TORCH_CASES, lr_multiplier, params, rel_diff, set_lr, through_bytes, tiered

import adamlab

CLASSES = sorted(INFOS)


@pytest.mark.parametrize("name", CLASSES)
def test_signature_is_torchs_with_extras_keyword_only(name):
    ours = inspect.signature(getattr(adamlab, name)).parameters
    theirs = {k: v for k, v in inspect.signature(getattr(torch.optim, name).__init__).parameters.items() if k != "self"}
    positional = [k for k, v in theirs.items() if v.kind is v.POSITIONAL_OR_KEYWORD]
    assert [k for k, v in ours.items() if v.kind is v.POSITIONAL_OR_KEYWORD] == positional
    for key, param in theirs.items():
        assert key in ours, key
        assert ours[key].default == param.default or (key == "fused" and param.default in (None, False)), key
    extras = set(ours) - set(theirs)
    assert all(ours[k].kind is inspect.Parameter.KEYWORD_ONLY for k in extras), extras


@pytest.mark.parametrize("name", CLASSES)
def test_group_keys_are_torchs_at_default_options(name):
    """A fresh optimizer's param groups and state dict carry exactly torch's keys (DCP loads strictly)."""
    ours = getattr(adamlab, name)([torch.zeros(2, requires_grad=True)])
    theirs = getattr(torch.optim, name)([torch.zeros(2, requires_grad=True)])
    assert ours.state_dict()["param_groups"][0].keys() == theirs.state_dict()["param_groups"][0].keys()
    for key, value in theirs.param_groups[0].items():
        if key not in ("params", "fused"):
            assert ours.param_groups[0][key] == value, key


@pytest.mark.parametrize("foreach", [None, False, True])
@pytest.mark.parametrize("case", params([c for c in TORCH_CASES if c.name in ("adamw", "sgd_nesterov", "adagrad")]))
def test_foreach_is_kept_and_selects_the_same_result(case, foreach):
    def run(**kw):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 30))
        opt = case.make([p], **kw)
        for t in range(5):
            p.grad = torch.sin(p.detach() * (t + 1))
            opt.step()
        return p.detach(), opt

    plain, _ = run()
    chosen, opt = run(foreach=foreach)
    assert opt.param_groups[0]["foreach"] is foreach
    assert torch.equal(plain, chosen)


BAD_INPUTS = [
    ("Adam", {"lr": torch.tensor([1e-3, 1e-3])}),
    ("SGD", {"lr": torch.tensor([1e-3, 1e-3])}),
    ("Adam", {"betas": (0.9, torch.tensor(0.99))}),
    ("AdamW", {"betas": (torch.tensor(0.9), 0.99)}),
    ("Adam", {"lr": torch.tensor(1e-3), "foreach": True}),
    ("AdamW", {"betas": (torch.tensor(0.9), torch.tensor(0.99)), "foreach": True}),
    ("Adam", {"lr": "0.01"}),
    ("SGD", {"lr": "0.1"}),
    ("RMSprop", {"alpha": "0.9"}),
    ("NAdam", {"momentum_decay": -0.2}),
    ("Adamax", {"betas": (0.0, 1.0)}),
    ("Adagrad", {"lr_decay": -0.5}),
    ("Adagrad", {"initial_accumulator_value": -1.0}),
    ("Adam", {"fused": True, "foreach": True}),
    ("SGD", {"fused": True, "differentiable": True}),
    ("RAdam", {"weight_decay": -1}),
    ("AdamW", {"decoupled_weight_decay": False}),
]


@pytest.mark.parametrize("name, kwargs", BAD_INPUTS, ids=lambda x: x if isinstance(x, str) else "-".join(x))
def test_error_types_match_torch(name, kwargs):
    def error(cls):
        try:
            cls([torch.zeros(2, requires_grad=True)], **kwargs)
        except Exception as e:  # noqa: BLE001 - the type is what is compared
            return type(e)
        return None

    expected = error(getattr(torch.optim, name))
    assert expected is not None
    assert error(getattr(adamlab, name)) is expected


BETA_PAIRS = [(0, 0.9), (0.1, 0), (0.0, 0.0), (True, 0.9), (torch.tensor(0.9), 0.999), (0.9, torch.tensor(0.99)),
              (torch.tensor(0.9), torch.tensor(0.99))]


@pytest.mark.parametrize("name", ["Adam", "AdamW", "RAdam", "NAdam", "Adamax"])
def test_beta_pairs_are_accepted_and_refused_as_torch_does(name):
    """torch's Adam and AdamW want both floats or both tensors; RAdam, NAdam and Adamax take any mix."""
    def verdict(cls, betas):
        try:
            cls([torch.zeros(2, requires_grad=True)], betas=betas)
        except ValueError:
            return "refused"
        return "accepted"

    theirs = [verdict(getattr(torch.optim, name), b) for b in BETA_PAIRS]
    assert [verdict(getattr(adamlab, name), b) for b in BETA_PAIRS] == theirs
    if "accepted" in theirs[4:6]:  # a mix both accept steps alike
        runs = []
        for cls in (getattr(torch.optim, name), getattr(adamlab, name)):
            p = torch.nn.Parameter(torch.linspace(-1, 1, 10))
            opt = cls([p], betas=(torch.tensor(0.8), 0.99))
            for t in range(5):
                p.grad = torch.sin(3 * p.detach() + t)
                opt.step()
            runs.append(p.detach())
        torch.testing.assert_close(runs[1], runs[0], rtol=0, atol=0)


@pytest.mark.parametrize("name", ["Adam", "SGD", "NAdam"])
def test_tensor_lr_steps_like_a_float_lr(name):
    runs = []
    for lr in (0.01, torch.tensor(0.01)):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 12))
        opt = getattr(adamlab, name)([p], lr=lr)
        for t in range(4):
            p.grad = torch.cos(p.detach() * t)
            opt.step()
        runs.append(p.detach().clone())
    assert torch.equal(*runs)


def test_capturable_on_cpu_fails_at_step_as_in_torch():
    for lib in (torch.optim, adamlab):
        p = torch.nn.Parameter(torch.ones(3))
        opt = lib.Adam([p], capturable=True)  # accepted at construction
        p.grad = torch.ones(3)
        with pytest.raises(AssertionError, match="capturable"):
            opt.step()
        assert torch.equal(p.detach(), torch.ones(3))


# ------------------------------------------------------------------ complex params


def complex_run(make, dtype, steps=150):
    gen = torch.Generator().manual_seed(3)
    ps = [torch.randn(n, dtype=dtype, generator=gen).requires_grad_() for n in (7, 12)]
    opt = make(ps)
    base = opt.param_groups[0]["lr"]
    for t in range(1, steps + 1):
        set_lr(opt, base * lr_multiplier(t))
        for p in ps:
            p.grad = torch.randn(p.shape, dtype=dtype, generator=gen) * (1 + 0.5 * torch.randn(p.shape, generator=gen))
        opt.step()
    return ps, opt


COMPLEX_TOLERANCE = {torch.complex128: 1e-10, torch.complex64: 2e-5}


@pytest.mark.parametrize("dtype", list(COMPLEX_TOLERANCE), ids=["c128", "c64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", tiered(TORCH_CASES))
def test_complex_params_follow_torch(case, backend, dtype):
    """torch updates a complex param as its pairs of reals (view_as_real); so must every path."""
    expected, theirs = complex_run(case.make_torch, dtype)
    actual, ours = complex_run(lambda ps: case.make(ps, fused=BACKENDS[backend]), dtype)
    real = lambda ts: [torch.view_as_real(t.detach()) for t in ts]  # noqa: E731
    assert rel_diff(real(actual), real(expected)) <= COMPLEX_TOLERANCE[dtype]
    for a, b in zip(actual, expected):
        got, want = ours.state[a], theirs.state[b]
        assert set(got) == set(want)
        for key, value in want.items():
            assert got[key].dtype == value.dtype, key
            if value.is_complex():
                assert rel_diff(real([got[key]]), real([value])) <= 100 * COMPLEX_TOLERANCE[dtype], key


INTERCHANGE = ("adam_amsgrad", "rmsprop_centered_momentum", "nadam", "adagrad")


@pytest.mark.parametrize("case", params([c for c in TORCH_CASES if c.name in INTERCHANGE]))
def test_complex_state_dicts_load_both_ways(case):
    ours_ps, ours = complex_run(case.make, torch.complex64, steps=10)
    theirs_ps, theirs = complex_run(case.make_torch, torch.complex64, steps=10)
    twin_ps = [p.detach().clone().requires_grad_() for p in theirs_ps]
    twin = case.make(twin_ps)
    twin.load_state_dict(through_bytes(theirs.state_dict()))  # torch -> adamlab
    back = case.make_torch([p.detach().clone().requires_grad_() for p in ours_ps])
    back.load_state_dict(through_bytes(ours.state_dict()))  # adamlab -> torch
    for p, q in zip(twin_ps, theirs_ps):
        p.grad = q.grad = torch.full_like(p, 0.3 - 0.2j)
    twin.step()
    theirs.step()
    assert rel_diff([torch.view_as_real(p.detach()) for p in twin_ps],
                    [torch.view_as_real(q.detach()) for q in theirs_ps]) <= 1e-6


# ------------------------------------------------------------------ checkpoints from older torch versions

# keys torch added over the years; its __setstate__ fills them with the defaults
OPTIONAL_KEYS = ("maximize", "foreach", "capturable", "differentiable", "fused", "decoupled_weight_decay",
                 "nesterov", "momentum", "centered", "amsgrad")


def _older(state_dict, keys):
    old = copy.deepcopy(state_dict)
    for group in old["param_groups"]:
        for key in keys:
            group.pop(key, None)
    return old


def _keys_of(case):
    group = case.make_torch([torch.zeros(1, requires_grad=True)]).param_groups[0]
    return [k for k in OPTIONAL_KEYS if k in group]


OLDER = [pytest.param(c, keys, id=f"{c.name}-{'+'.join(keys)}") for c in TORCH_CASES
         for keys in [[k] for k in _keys_of(c)] + [_keys_of(c)]]


@pytest.mark.parametrize("case, keys", OLDER)
def test_checkpoints_missing_newer_keys_load_and_continue_as_in_torch(case, keys):
    def train(make, state_dict=None, steps=4, seed=0):
        gen = torch.Generator().manual_seed(seed)
        p = torch.randn(6, dtype=torch.float64, generator=gen).requires_grad_()
        opt = make([p])
        if state_dict is not None:
            opt.load_state_dict(state_dict)
        for _ in range(steps):
            p.grad = torch.randn(6, dtype=torch.float64, generator=gen)
            opt.step()
        return p.detach(), opt

    _, first = train(case.make_torch)
    saved = _older(through_bytes(first.state_dict()), keys)
    try:
        expected, theirs = train(case.make_torch, copy.deepcopy(saved), seed=1)
    except KeyError:  # a key torch never made optional: it refuses, and so must we
        with pytest.raises(KeyError):
            train(case.make, copy.deepcopy(saved), seed=1)
        return
    actual, ours = train(case.make, copy.deepcopy(saved), seed=1)
    assert rel_diff([actual], [expected]) <= 1e-12
    for key in keys:
        if key != "fused":
            assert ours.param_groups[0][key] == theirs.param_groups[0][key], key


def test_unpickled_step_as_a_number_becomes_a_tensor():
    p = torch.nn.Parameter(torch.ones(3))
    opt = adamlab.Adam([p])
    p.grad = torch.ones(3)
    opt.step()
    saved = opt.state_dict()
    saved["state"][0]["step"] = 1  # as very old torch versions wrote it
    opt.load_state_dict(saved)
    opt.step()
    assert torch.is_tensor(opt.state[p]["step"]) and float(opt.state[p]["step"]) == 2


@pytest.mark.parametrize("case", tiered(TORCH_CASES))
def test_state_dict_equals_torchs_key_for_key(case):
    """After steps where some params have no grad (frozen, late, never): the same entries, keys and values."""
    def run(make):
        gen = torch.Generator().manual_seed(5)
        ps = [torch.randn(n, dtype=torch.float64, generator=gen).requires_grad_() for n in (4, 3, 5)]
        opt = make(ps)
        for t in range(6):
            for i, p in enumerate(ps):
                has_grad = i == 0 or (i == 1 and t >= 2)  # param 2 never gets one
                p.grad = torch.randn(p.shape, dtype=torch.float64, generator=gen) if has_grad else None
            opt.step()
        return opt.state_dict()

    ours, theirs = run(case.make), run(case.make_torch)
    assert ours["param_groups"] == theirs["param_groups"]
    assert ours["state"].keys() == theirs["state"].keys()
    for i, state in theirs["state"].items():
        assert ours["state"][i].keys() == state.keys()
        for key, value in state.items():
            assert ours["state"][i][key].dtype == value.dtype, key
            assert torch.allclose(ours["state"][i][key], value, rtol=1e-12, atol=0), key


@pytest.mark.parametrize("case", params([c for c in TORCH_CASES if c.optimizer != "Adagrad"]))
def test_only_the_priming_step_goes_uncounted(case):
    """lr 0 on all-zero grads of a fresh optimizer creates state only; anything else counts, as in torch."""
    def first(grad_value, **kw):
        p = torch.nn.Parameter(torch.ones(5))
        opt = case.make([p], lr=0.0, **kw)
        twin = case.make_torch([torch.nn.Parameter(torch.ones(5))], lr=0.0)
        p.grad = torch.full((5,), grad_value)
        twin.param_groups[0]["params"][0].grad = p.grad.clone()
        opt.step()
        twin.step()
        return opt.state_dict()["state"], twin.state_dict()["state"]

    primed, torch_primed = first(0.0)
    assert primed.keys() == torch_primed.keys()
    for i, state in primed.items():
        assert state.keys() == torch_primed[i].keys()
        assert float(state.get("step", 0)) == 0 and not any(v.any() for v in state.values() if v.dim())
    for ours, theirs in (first(0.5), first(0.0, count_priming=True)):  # counted: torch's state exactly
        for i, state in theirs.items():
            for key, value in state.items():
                assert torch.equal(ours[i][key], value), key


@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_importing_adamlab_does_not_import_torch_until_a_name_is_used():
    """The command line checks its arguments before torch is loaded (an error comes back in well under 1 s)."""
    import subprocess
    import sys

    probe = "import sys, adamlab; before = 'torch' in sys.modules; adamlab.AdamW; print(before, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert out[:2] == ["False", "True"]
    assert set(adamlab.__all__) <= set(dir(adamlab))


@pytest.mark.parametrize("groups", [1, 45])
def test_step_counters_stay_the_same_tensors_between_steps(groups):
    """As in torch, state['step'] is one tensor updated in place (held references see it move)."""
    ps = [torch.nn.Parameter(torch.randn(4)) for _ in range(groups)]
    opt = adamlab.AdamW([{"params": [p]} for p in ps])
    for p in ps:
        p.grad = torch.ones(4)
    opt.step()
    held = [opt.state[p]["step"] for p in ps]
    for _ in range(3):
        opt.step()
    assert all(opt.state[p]["step"] is h for p, h in zip(ps, held))
    assert all(float(h) == 4 for h in held)
