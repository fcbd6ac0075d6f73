"""Faults: no step may corrupt memory, half-happen, or race; refused steps change nothing.

Each case runs the fault and compares with torch.optim (what a correct step
does) or with a snapshot taken before (what a refused step must leave).
Cases that used to crash the process run in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from cases import ALL_CASES, TORCH_CASES, assert_same_snapshot, by_name, params, snapshot

import adamlab
from adamlab.backends import build, cpu

FUSED = {"reference": False, "default": None, "fused": True}


def grads_for(ps, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=gen) for p in ps]


def step_both(ours, theirs, ps, qs, seed):
    for p, q, g in zip(ps, qs, grads_for(ps, seed)):
        p.grad, q.grad = g.clone(), g.clone()
    ours.step()
    theirs.step()


REPOINTED = ("adam_amsgrad", "nadam", "rmsprop_centered_momentum", "sgd_momentum")


@pytest.mark.parametrize("case", params([c for c in TORCH_CASES if c.name in REPOINTED]))
def test_state_repointed_with_data_keeps_being_updated(case):
    """state['exp_avg'].data = clone (pin/offload code does this): the new buffer is the one updated."""
    ps = [torch.nn.Parameter(torch.randn(500)) for _ in range(3)]
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    ours, theirs = case.make(ps), case.make_torch(qs)
    step_both(ours, theirs, ps, qs, 0)
    for opt in (ours, theirs):
        for state in opt.state.values():
            for key, value in state.items():
                if key != "step" and torch.is_tensor(value) and value.dim():
                    value.data = value.data.clone()
    for seed in range(1, 4):
        step_both(ours, theirs, ps, qs, seed)
    assert all(torch.allclose(p, q, rtol=1e-5, atol=1e-7) for p, q in zip(ps, qs))
    for p, q in zip(ps, qs):
        for key, value in theirs.state[q].items():
            assert torch.allclose(ours.state[p][key], value, rtol=1e-4, atol=1e-7), key


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("case", params([by_name("adamw"), by_name("adagrad"), by_name("radam")]))
def test_param_data_replaced_by_another_size_is_refused_with_nothing_changed(case, backend):
    p = torch.nn.Parameter(torch.randn(1000))
    opt = case.make([p], fused=FUSED[backend])
    p.grad = torch.randn(1000)
    opt.step()
    p.data = torch.randn(4000)
    p.grad = torch.randn(4000)
    before, value = snapshot(opt), p.detach().clone()
    with pytest.raises(RuntimeError, match="shape"):
        opt.step()
    assert_same_snapshot(snapshot(opt), before)
    assert torch.equal(p.detach(), value)


def run_script(body: str, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow  # a fresh process with 50M-element tensors
def test_a_much_larger_replacement_does_not_crash_the_process():
    """1k -> 50M elements: torch raises; adamlab used to read and write past the end of the state."""
    done = run_script("""
        import torch, adamlab
        p = torch.nn.Parameter(torch.randn(1000))
        opt = adamlab.AdamW([p], fused=True)
        p.grad = torch.randn(1000); opt.step()
        p.data = torch.zeros(50_000_000); p.grad = torch.zeros(50_000_000)
        try:
            opt.step()
        except RuntimeError as e:
            print("refused", "shape" in str(e))
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["refused", "True"]


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("case", params([by_name("adam_amsgrad"), by_name("sgd_nesterov"), by_name("nadam")]))
def test_a_param_listed_twice_warns_and_steps_like_torchs_for_loop(case, backend):
    results = set()
    for _ in range(20):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 70_000))
        q = torch.nn.Parameter(p.detach().clone())
        with pytest.warns(UserWarning, match="duplicate"):
            ours = case.make([p, p], fused=FUSED[backend])
        with pytest.warns(UserWarning, match="duplicate"):
            theirs = case.make_torch([q, q], foreach=False)
        for t in range(3):
            p.grad = torch.cos(p.detach() * (t + 1))
            q.grad = p.grad.clone()
            ours.step()
            theirs.step()
        assert torch.allclose(p, q, rtol=1e-5, atol=1e-7)
        if "step" in theirs.state[q]:
            assert float(ours.state[p]["step"]) == float(theirs.state[q]["step"]) == 6
        results.add(p.detach().numpy().tobytes())
    assert len(results) == 1  # deterministic


def overlapping(buffer):
    """Two params that are overlapping views of one buffer."""
    return torch.nn.Parameter(buffer[:50_000]), torch.nn.Parameter(buffer[30_000:])


@pytest.mark.parametrize("backend", ["reference", "default"])
def test_overlapping_params_step_in_order_like_torch(backend):
    """Never fed to a loop that assumes no aliasing: stepped one after the other, as torch's for-loop does."""
    results = set()
    for _ in range(20):
        base = torch.linspace(-1, 1, 80_000)
        twin = base.clone()
        (a, b), (c, d) = overlapping(base), overlapping(twin)
        ours, theirs = adamlab.Adam([a, b], fused=FUSED[backend]), torch.optim.Adam([c, d])
        for t in range(3):
            for x, y in ((a, c), (b, d)):
                x.grad = torch.full_like(x, 0.1 * (t + 1))
                y.grad = x.grad.clone()
            ours.step()
            theirs.step()
        assert torch.allclose(base, twin, rtol=1e-6, atol=1e-7)
        results.add(base.numpy().tobytes())
    assert len(results) == 1


def test_overlapping_params_are_refused_by_a_required_fused_step():
    a, b = overlapping(torch.randn(80_000))
    opt = adamlab.Adam([a, b], fused=True)
    a.grad, b.grad = torch.ones_like(a), torch.ones_like(b)
    with pytest.raises(RuntimeError, match="share memory"):
        opt.step()
    assert not opt.state


@pytest.mark.parametrize("key", ["exp_avg", "exp_avg_sq", "max_exp_avg_sq", "step"])
def test_a_state_dict_lacking_a_needed_key_is_refused_at_load(key):
    p = torch.nn.Parameter(torch.randn(10))
    opt = adamlab.Adam([p], amsgrad=True)
    p.grad = torch.randn(10)
    opt.step()
    saved = opt.state_dict()
    del saved["state"][0][key]
    before = snapshot(opt)
    with pytest.raises(ValueError, match=f"param 0.*{key}"):
        opt.load_state_dict(saved)
    assert_same_snapshot(snapshot(opt), before)


def test_a_momentum_state_dict_lacking_its_buffer_loads_as_torch_starts_it():
    """An SGD param's state is just its momentum buffer: absent means not started, as in torch."""
    p = torch.nn.Parameter(torch.randn(10))
    opt = adamlab.SGD([p], lr=0.1, momentum=0.9)
    saved = opt.state_dict()
    opt.load_state_dict(saved)
    p.grad = torch.ones(10)
    opt.step()
    assert torch.equal(opt.state[p]["momentum_buffer"], torch.ones(10))


# ------------------------------------------------------------------ all or nothing


def two_group_optimizer(case, fused, n=3000):
    groups = [[torch.nn.Parameter(torch.randn(n)) for _ in range(2)] for _ in range(3)]
    opt = case.make([{"params": g} for g in groups], fused=fused)
    for g in groups:
        for p in g:
            p.grad = torch.randn(n)
    opt.step()
    for g in groups:
        for p in g:
            p.grad = torch.randn(n)
    return opt, [p for g in groups for p in g]


@pytest.mark.parametrize("position", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("case", params([by_name("adamw"), by_name("rmsprop_centered"), by_name("nadam")]))
def test_a_kernel_that_cannot_be_built_refuses_the_whole_fused_step(case, position, monkeypatch):
    """fused=True and one group's kernel fails: nothing of any group is written, no counter moves."""
    opt, ps = two_group_optimizer(case, fused=True)
    opt.param_groups[position]["maximize"] = True  # a configuration no other group uses
    real = cpu.kernel

    def failing(cfg, *a):
        if cfg.maximize:
            raise build.BuildError("injected: this configuration cannot be built")
        return real(cfg, *a)

    monkeypatch.setattr(cpu, "kernel", failing)
    before, values = snapshot(opt), [p.detach().clone() for p in ps]
    with pytest.raises(RuntimeError, match="injected"):
        opt.step()
    assert_same_snapshot(snapshot(opt), before)
    assert all(torch.equal(p, v) for p, v in zip(ps, values))


@pytest.mark.parametrize("position", [0, 1, 2], ids=["first", "middle", "last"])
def test_a_kernel_that_cannot_be_built_falls_back_for_its_configuration_only(position, monkeypatch):
    case = by_name("adamw")
    opt, ps = two_group_optimizer(case, fused=None)
    twin, qs = two_group_optimizer(case, fused=False)
    for o in (opt, twin):
        o.param_groups[position]["maximize"] = True
    for p, q in zip(ps, qs):
        q.data.copy_(p.data)
        q.grad = p.grad.clone()
    twin.load_state_dict(opt.state_dict())
    real = cpu.kernel
    monkeypatch.setattr(cpu, "kernel", lambda cfg, *a: (_ for _ in ()).throw(build.BuildError("injected"))
                        if cfg.maximize else real(cfg, *a))
    monkeypatch.setattr(build, "_warned", False)
    with pytest.warns(RuntimeWarning, match="injected"):
        opt.step()
    twin.step()
    assert all(torch.allclose(p, q, rtol=1e-6, atol=1e-7) for p, q in zip(ps, qs))


@pytest.mark.parametrize("position", [0, 1, 2], ids=["first", "middle", "last"])
@pytest.mark.parametrize("backend", FUSED)
def test_a_refused_grad_refuses_the_whole_step(position, backend):
    """A grad of the wrong dtype in any group: refused before any group moves or counts."""
    opt, ps = two_group_optimizer(by_name("adam"), fused=FUSED[backend])
    bad = opt.param_groups[position]["params"][1]
    bad.data = bad.data.double()  # the param changed dtype; its grad and state did not
    before, values = snapshot(opt), [p.detach().clone() for p in ps]
    with pytest.raises(RuntimeError, match="dtype"):
        opt.step()
    assert_same_snapshot(snapshot(opt), before)
    assert all(torch.equal(p, v) for p, v in zip(ps, values))


DECOUPLED = [c for c in ALL_CASES if c.optimizer == "AdamW" or c.kwargs.get("decoupled_weight_decay")]


@pytest.mark.parametrize("case", params(DECOUPLED))
def test_a_refused_hyperparameter_in_the_last_group_changes_nothing(case):
    opt, ps = two_group_optimizer(case, fused=None)
    opt.param_groups[2]["weight_decay"] = 1e6  # the decay factor 1 - lr*wd < 0 would flip the weights
    before, values = snapshot(opt), [p.detach().clone() for p in ps]
    with pytest.raises(ValueError, match="decay factor"):
        opt.step()
    assert_same_snapshot(snapshot(opt), before)
    assert all(torch.equal(p, v) for p, v in zip(ps, values))


@pytest.mark.parametrize("name, kwargs", [("Adam", {"lr": "1e-3"}), ("Adam", {"betas": ("0.9", 0.99)}),
                                          ("SGD", {"momentum": "0.9"}), ("RMSprop", {"eps": "1e-8"}),
                                          ("NAdam", {"momentum_decay": "0.004"})])
def test_string_hyperparameters_are_refused_naming_the_argument(name, kwargs):
    key = next(iter(kwargs))
    with pytest.raises(TypeError, match=key):
        getattr(adamlab, name)([torch.zeros(2, requires_grad=True)], **kwargs)


@pytest.mark.slow  # a fresh process with a 64 MB param
def test_the_reference_backend_stays_within_twice_the_largest_param():
    """Peak memory of a fallback step on a 64 MB param: at most 2x its bytes on top (torch's for-loop: 2x)."""
    done = run_script("""
        import resource, torch, adamlab
        torch.set_num_threads(1)
        n = 16_000_000
        p = torch.nn.Parameter(torch.zeros(n)); p.grad = torch.zeros(n)
        opt = adamlab.Adam([p], fused=False, amsgrad=True, weight_decay=0.1)
        opt.step()  # state exists
        p.grad.fill_(0.5)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        opt.step()
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print((after - before) * 1024 / (4 * n))
    """)
    assert done.returncode == 0, done.stderr
    assert float(done.stdout) <= 2.0


@pytest.mark.slow  # a fresh process that forks
def test_a_forked_child_can_step():
    """The parent stepped with OpenMP threads; a forked child must not hang in the kernel's thread pool.

    The child's tensors stay below torch's own parallel grain (32768 elements): torch's ops on larger
    ones hang in a forked child too, unless it calls torch.set_num_threads(1).
    """
    done = run_script("""
        import os, torch, adamlab
        torch.set_num_threads(2)
        p = torch.nn.Parameter(torch.randn(200_000)); p.grad = torch.randn(200_000)
        opt = adamlab.AdamW([p], fused=True)
        opt.step()
        pid = os.fork()
        if pid == 0:
            q = torch.nn.Parameter(torch.randn(20_000)); q.grad = torch.randn(20_000)
            child = adamlab.AdamW([q], fused=True, skip_nonfinite=True)  # the finite check too
            child.step(); child.step()
            os._exit(0 if torch.isfinite(q).all() else 3)
        _, status = os.waitpid(pid, 0)
        print(os.waitstatus_to_exitcode(status))
    """, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0"


CHANGES = [("maximize", True), ("weight_decay", 0.1), ("nesterov", True), ("eps", 1e-3)]
NEEDS_NEW_STATE = [("amsgrad", True), ("centered", True)]  # torch refuses these mid-run (KeyError), so do we


@pytest.mark.parametrize("backend", FUSED)
@pytest.mark.parametrize("case", params([c for c in TORCH_CASES if c.name in ("adam", "sgd_momentum", "rmsprop")]))
def test_options_changed_between_steps_take_effect(case, backend):
    """Cached kernels and layouts are only reused for the configuration they were built for."""
    ps = [torch.nn.Parameter(torch.randn(2000)) for _ in range(2)]
    qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
    ours, theirs = case.make(ps, fused=FUSED[backend]), case.make_torch(qs)
    for seed, (key, value) in enumerate(CHANGES):
        if key not in theirs.param_groups[0]:
            continue
        step_both(ours, theirs, ps, qs, 2 * seed)
        for opt in (ours, theirs):
            opt.param_groups[0][key] = value
        step_both(ours, theirs, ps, qs, 2 * seed + 1)
        assert all(torch.allclose(p, q, rtol=1e-5, atol=1e-6) for p, q in zip(ps, qs)), key
    for key, value in NEEDS_NEW_STATE:
        if key in theirs.param_groups[0]:
            for opt in (ours, theirs):
                opt.param_groups[0][key] = value
            for opt in (ours, theirs):
                with pytest.raises(KeyError):
                    opt.step()
