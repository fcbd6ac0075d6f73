"""The fused-optimizer AMP contract: grad_scale unscales inside the step, found_inf skips it whole.

torch.amp.GradScaler hands these to optimizers that declare
``_step_supports_amp_scaling``; torch's fused AdamW on CPU is the oracle.
"""

from __future__ import annotations

import pytest
import torch
from cases import ALL_CASES, BACKENDS, assert_same_snapshot, snapshot, tiered

import adamlab

FUSED_TWINS = ["Adam", "AdamW", "SGD", "Adagrad"]  # torch has fused=True versions of these on CPU


def test_every_optimizer_declares_the_contract():
    for name in ("Adam", "AdamW", "RAdam", "NAdam", "Adamax", "Adagrad", "SGD", "RMSprop"):
        assert getattr(adamlab, name)._step_supports_amp_scaling is True


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_found_inf_changes_nothing(case, backend):
    p = torch.nn.Parameter(torch.randn(40))
    opt = case.make([p], fused=BACKENDS[backend])
    p.grad = torch.randn(40)
    opt.step()
    before, param, grad = snapshot(opt), p.detach().clone(), torch.full((40,), 1e3)
    p.grad = grad.clone()
    opt.grad_scale, opt.found_inf = torch.tensor(1024.0), torch.tensor(1.0)
    opt.step()
    assert torch.equal(p.detach(), param) and torch.equal(p.grad, grad)
    assert_same_snapshot(snapshot(opt), before)


@pytest.mark.parametrize("scale", [1024.0, 3.0])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_grad_scale_equals_stepping_on_unscaled_grads(case, backend, scale):
    """Unscaling inside the step = dividing the grads first; the grads are written back unscaled."""
    gen = torch.Generator().manual_seed(0)
    grads = [torch.randn(30, generator=gen) for _ in range(3)]

    def run(scaled: bool):
        p = torch.nn.Parameter(torch.linspace(-1, 1, 30))
        opt = case.make([p], fused=BACKENDS[backend])
        seen = []
        for g in grads:
            if scaled:
                p.grad = g * scale
                opt.grad_scale, opt.found_inf = torch.tensor(scale), torch.tensor(0.0)
            else:
                p.grad = (g * scale) / scale
            opt.step()
            seen.append(p.grad.clone())
        return p.detach(), seen

    (a, grads_a), (b, grads_b) = run(True), run(False)
    assert torch.equal(a, b)
    assert all(torch.equal(x, y) for x, y in zip(grads_a, grads_b))


@pytest.mark.parametrize("name", FUSED_TWINS)
def test_grad_scale_and_found_inf_match_torch_fused(name):
    def run(lib):
        torch.manual_seed(0)
        ps = [torch.nn.Parameter(torch.randn(n)) for n in (5, 300)]
        opt = getattr(lib, name)(ps, lr=1e-2, fused=True)
        for t in range(6):
            for p in ps:
                p.grad = torch.randn_like(p) * 512
            opt.grad_scale = torch.tensor(512.0)
            opt.found_inf = torch.tensor(1.0 if t == 3 else 0.0)
            opt.step()
        return [p.detach() for p in ps], [p.grad for p in ps], opt

    ours, our_grads, opt = run(adamlab)
    theirs, their_grads, topt = run(torch.optim)
    assert all(torch.allclose(a, b, rtol=0, atol=1e-6) for a, b in zip(ours, theirs))
    assert all(torch.equal(a, b) for a, b in zip(our_grads, their_grads))
    for p, q in zip(opt.param_groups[0]["params"], topt.param_groups[0]["params"]):
        assert opt.state.get(p, {}).keys() == topt.state.get(q, {}).keys()
        if "step" in topt.state.get(q, {}):  # the overflow step is not counted
            assert float(opt.state[p]["step"]) == float(topt.state[q]["step"]) == 5


@pytest.mark.parametrize("autocast_dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_grad_scaler_end_to_end_equals_torch_fused_adamw(autocast_dtype):
    """GradScaler on CPU autocast, with an overflow injected at step 3: step for step as torch's fused AdamW."""

    def run(make):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
        opt = make(model.parameters())
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
        x, y = torch.randn(32, 8), torch.randn(32, 4)
        history = []
        for t in range(8):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=autocast_dtype):
                loss = torch.nn.functional.mse_loss(model(x), y)
            scaler.scale(loss).backward()
            if t == 3:
                model[0].weight.grad[0, 0] = float("inf")
            scaler.step(opt)
            scaler.update()
            history.append(([p.detach().clone() for p in model.parameters()], scaler.get_scale()))
        steps = {float(s["step"]) for s in opt.state.values()}
        return history, steps

    ours, our_steps = run(lambda ps: adamlab.AdamW(ps, lr=1e-2))
    theirs, their_steps = run(lambda ps: torch.optim.AdamW(ps, lr=1e-2, fused=True))
    assert our_steps == their_steps == {7.0}
    for (a, scale_a), (b, scale_b) in zip(ours, theirs):
        assert scale_a == scale_b
        assert all(torch.allclose(x, y, rtol=0, atol=1e-8) for x, y in zip(a, b))
