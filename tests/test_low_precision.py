"""Low-precision optimizer state and bf16 param updates, through the optimizers.

Oracles: torch.optim's fp32 step (one step from the same state, as
bitsandbytes tests its 8-bit optimizers), the NumPy transcription of the
papers' equations with the moments rounded to bf16 after every step, closed
forms (a constant gradient moves Adam by lr per step), and the readable
reference backend for the fused loop.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from cases import assert_same_snapshot, by_name, lr_multiplier, params, snapshot
from oracle import Reference

import adamlab
from adamlab.backends import quantized

LOW = ("Adam", "AdamW", "RAdam", "NAdam", "Adamax", "RMSprop", "Adagrad")
MOMENT_CASES = [by_name(n) for n in ("adam", "adam_amsgrad", "adamw_wd", "radam", "radam_decoupled", "nadam",
                                     "nadam_l2", "adamax", "adamax_l2_maximize", "adam_no_bias_correction",
                                     "rmsprop_centered_momentum", "rmsprop_l2_maximize", "sgd_nesterov",
                                     "sgd_dampening", "adagrad_initial_accumulator")]
BACKENDS = ("c", "reference")


def moments(opt, p) -> dict[str, torch.Tensor]:
    """The state arrays of p in fp32, whatever their storage (the dequantized values of 8-bit state)."""
    st, out = opt.state[p], {}
    for key in st:
        if key.endswith("_codes"):
            name = key[: -len("_codes")]
            code = "q8_unsigned" if name in opt.algorithm.nonnegative_state else "q8_signed"
            out[name] = quantized.decode(code, st[key].reshape(-1), st[f"{name}_absmax"]).view(p.shape)
        elif not key.endswith("_absmax") and key not in ("step", "mu_product", "kahan_comp", "rounding_key"):
            out[key] = st[key].float()
    return out


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("name", LOW)
def test_the_options_are_beyond_torch_and_hidden_at_their_defaults(name):
    p = torch.zeros(3, requires_grad=True)
    groups = getattr(adamlab, name)([p]).state_dict()["param_groups"][0]
    assert not {"state_precision", "param_update", "rounding_seed"} & set(groups)
    shown = getattr(adamlab, name)([p], state_precision="8bit", param_update="kahan").state_dict()["param_groups"][0]
    assert shown["state_precision"] == "8bit" and shown["param_update"] == "kahan"


@pytest.mark.parametrize("kwargs, words", [
    ({"state_precision": "4bit"}, "state_precision"),
    ({"state_precision": torch.float16}, "state_precision"),
    ({"param_update": "up"}, "param_update"),
    ({"rounding_seed": -1}, "rounding_seed"),
    ({"rounding_seed": 2**32}, "rounding_seed"),
    ({"rounding_seed": 1.5}, "rounding_seed"),
    ({"state_precision": "8bit", "differentiable": True}, "differentiable"),
    ({"param_update": "kahan", "capturable": True}, "capturable"),
])
def test_bad_options_are_refused_naming_them(kwargs, words):
    with pytest.raises((ValueError, TypeError), match=words):
        adamlab.AdamW([torch.zeros(3, requires_grad=True)], **kwargs)


def test_stochastic_updates_of_fp16_params_are_refused_before_anything_changes():
    a, b = torch.zeros(8, requires_grad=True), torch.zeros(8, dtype=torch.float16, requires_grad=True)
    opt = adamlab.AdamW([{"params": [a]}, {"params": [b], "param_update": "stochastic"}])
    a.grad, b.grad = torch.ones(8), torch.ones(8, dtype=torch.float16)
    before = snapshot(opt)
    with pytest.raises(ValueError, match="param_update"):
        opt.step()
    assert_same_snapshot(snapshot(opt), before)
    assert torch.equal(a, torch.zeros(8))


# ---------------------------------------------------------------- bf16 state


def round_bf16(x: np.ndarray) -> np.ndarray:
    return torch.from_numpy(x).float().to(torch.bfloat16).double().numpy()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", params(MOMENT_CASES))
def test_bf16_state_follows_the_equations_with_moments_rounded_to_bf16(case, backend):
    """Much nearer the equations with bf16-rounded moments than the same equations in float64."""
    gen = torch.Generator().manual_seed(4)
    p = torch.randn(6000, generator=gen)
    rounded, exact = p.double().numpy().copy(), p.double().numpy().copy()
    refs = [Reference(case.algorithm, case.hyper(), initial_lr=case.lr) for _ in range(2)]
    opt = case.make([p], state_precision="bf16", backend=backend)
    for t in range(1, 31):
        lr = case.lr * lr_multiplier(t)
        opt.param_groups[0]["lr"] = lr
        p.grad = torch.randn(6000, generator=gen) * 1e-2
        opt.step()
        for ref, expected in zip(refs, (rounded, exact)):
            ref.step([expected], [p.grad.double().numpy()], lr)
        for st in refs[0].state:
            for key in st:
                st[key] = round_bf16(np.asarray(st[key]))
    assert {v.dtype for k, v in opt.state[p].items() if k not in ("step", "mu_product")} == {torch.bfloat16}
    ours = p.double().numpy()
    near, far = np.abs(ours - rounded), np.abs(ours - exact)
    assert np.median(near) < 0.1 * np.median(far)  # a moment on a rounding boundary may round the other way
    assert near.max() <= 0.2 * case.lr


# ---------------------------------------------------------------- 8-bit state


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["Adam", "AdamW", "RAdam", "NAdam", "Adamax", "RMSprop", "Adagrad", "SGD"])
def test_one_8bit_step_agrees_with_one_torch_step_from_the_same_state(name, backend):
    """bitsandbytes' check: from the same state, one 8-bit step against one fp32 torch.optim step, re-synced."""
    gen = torch.Generator().manual_seed(0)
    shape = (64, 4097)  # not a multiple of the block
    p = torch.randn(shape, generator=gen)
    q = p.clone()
    extra = {"momentum": 0.9} if name == "SGD" else {}
    ours = getattr(adamlab, name)([p], lr=1e-3, state_precision="8bit", backend=backend, **extra)
    theirs = getattr(torch.optim, name)([q], lr=1e-3, **extra)
    for _ in range(8):
        p.grad = torch.randn(shape, generator=gen) * 1e-2
        q.grad = p.grad.clone()
        ours.step()
        theirs.step()
        got, want = moments(ours, p), theirs.state[q]
        for key, value in got.items():
            ref = want[key]
            blocks = quantized.absmax(ref.reshape(-1)).repeat_interleave(256)[: ref.numel()].view(shape)
            err = (value - ref).abs()
            assert (err <= 0.01 * blocks + 1e-30).all(), key  # within half the code's top step of each block
            assert (err.norm() / ref.norm()).item() < (0.02 if key == "exp_avg" else 0.01), key
        assert ((p - q).abs().mean() / 1e-3).item() < 0.02  # the update moved by lr, give or take 2% of it
        for key, value in got.items():  # re-sync: the next step starts again from the same state
            theirs.state[q][key].copy_(value)
        q.data.copy_(p)


@pytest.mark.parametrize("case", params(MOMENT_CASES))
def test_fused_8bit_matches_the_reference_backend(case):
    def run(backend):
        gen = torch.Generator().manual_seed(2)
        ps = [torch.randn(n, generator=gen) for n in (5000, 70_000, 4096)]
        opt = case.make(ps, state_precision="8bit", backend=backend)
        for t in range(1, 21):
            opt.param_groups[0]["lr"] = case.lr * lr_multiplier(t)
            for p in ps:
                p.grad = torch.randn(p.shape, generator=gen) * 10 ** (t % 3 - 3)
            opt.step()
        return ps, [moments(opt, p) for p in ps]

    fast, fast_m = run("c")
    slow, slow_m = run("reference")
    for a, b in zip(fast, slow):
        assert (a - b).abs().max() <= 1e-3 * case.lr  # the loops differ in ulps, which may flip a code's rounding
    for a, b in zip(fast_m, slow_m):
        for key in b:
            close = torch.isclose(a[key], b[key], rtol=0.03, atol=0)
            assert close.float().mean() > 0.999, key


def test_small_tensors_keep_fp32_state_and_are_reported():
    model = torch.nn.Sequential(torch.nn.Linear(100, 50), torch.nn.LayerNorm(50))  # 5000, 50, 50, 50 elements
    opt = adamlab.AdamW(model.named_parameters(), state_precision="8bit")
    model(torch.randn(4, 100)).sum().backward()
    opt.step()
    weight, bias = model[0].weight, model[0].bias
    assert opt.state[weight]["exp_avg_codes"].dtype == torch.uint8
    assert opt.state[bias]["exp_avg"].dtype == torch.float32
    report = opt.memory_report()
    assert report["full_precision"] == ["0.bias", "1.weight", "1.bias"]
    rows = {r["param"]: r for r in report["per_param"]}
    assert rows["0.weight"]["state_bytes"] == 2 * (5000 + 4 * quantized.blocks(5000))
    assert rows["0.bias"]["state_bytes"] == 2 * 4 * 50


@pytest.mark.parametrize("precision, per_param", [(None, 8.0), ("bf16", 4.0), ("8bit", 2 * (1 + 4 / 256))])
def test_state_bytes_per_param_from_the_state_tensors(precision, per_param):
    p = torch.zeros(1 << 16, requires_grad=True)
    opt = adamlab.AdamW([p], state_precision=precision)
    p.grad = torch.randn(1 << 16)
    opt.step()
    report = opt.memory_report()
    assert report["bytes_per_param"] == per_param
    assert report["state_bytes"] == sum(v.numel() * v.element_size() for k, v in opt.state[p].items() if k != "step")


@pytest.mark.parametrize("precision", ["bf16", "8bit"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_coordinates_with_zero_gradients_never_move(precision, backend):
    """Zero gradients from the start stay exactly put; no step exceeds Adam's bound, even after gradients stop.

    A dequantized zero must be exactly zero (else m / (0 + eps) is a huge
    step, unsloth-zoo PR #962), and a block that is all zeros must not divide
    by its absmax. The bound: |step| <= lr (1 - beta1) / sqrt(1 - beta2)
    (Kingma & Ba 2015, sec. 2.1), 3.16 lr at the default betas.
    """
    bound = 1e-3 * 0.1 / math.sqrt(0.001) * 1.01
    gen = torch.Generator().manual_seed(5)
    p = torch.randn(4, 4096, generator=gen)
    start = p.clone()
    opt = adamlab.Adam([p], lr=1e-3, state_precision=precision, backend=backend)
    for t in range(500):
        g = torch.randn(4, 4096, generator=gen) * 10 ** torch.empty(4, 4096).uniform_(-6, 0, generator=gen)
        g[0] = 0.0  # a param row (16 blocks) that never gets a gradient
        g[1, ::2] = 0.0  # every other coordinate of a row, next to large gradients
        if t >= 10:
            g[2] = 0.0  # gradients that stop after 10 steps
        before = p.clone()
        p.grad = g
        opt.step()
        assert (p - before).abs().max() <= bound, t
    assert torch.equal(p[0], start[0]) and torch.equal(p[1, ::2], start[1, ::2])
    assert torch.isfinite(p).all()


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_non_finite_gradient_poisons_its_own_element_only(bad):
    """The element becomes NaN (as with fp32 state); its block's other elements train exactly as if it were 0."""
    def run(value, precision):
        gen = torch.Generator().manual_seed(6)
        p = torch.randn(8192, generator=gen)
        opt = adamlab.Adam([p], lr=1e-2, state_precision=precision)
        for t in range(20):
            g = torch.randn(8192, generator=gen)
            g[300] = value if t >= 5 else 0.0
            p.grad = g
            opt.step()
        return p

    poisoned, clean, fp32 = run(bad, "8bit"), run(0.0, "8bit"), run(bad, None)
    assert math.isnan(poisoned[300]) and math.isnan(fp32[300])
    others = torch.ones(8192, dtype=torch.bool)
    others[300] = False
    assert torch.equal(poisoned[others], clean[others])


# ---------------------------------------------------------------- bf16 params: nearest, stochastic, Kahan


def constant_gradient_run(param_update, steps=600, lr=1e-4, seed=0, state_precision=None, backend=None):
    """Adam on bf16 params at 1.0 with g = 1: each step moves by lr, 1/78 of a bf16 step there."""
    p = torch.ones(4096, dtype=torch.bfloat16)
    opt = adamlab.Adam([p], lr=lr, param_update=param_update, rounding_seed=seed, state_precision=state_precision,
                       backend=backend)
    for _ in range(steps):
        p.grad = torch.ones_like(p)
        opt.step()
    return p, opt


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_rounding_loses_small_updates_and_the_others_keep_them(backend):
    expected = 1.0 - 600 * 1e-4  # Adam's step is lr for a constant gradient (closed form)
    nearest, _ = constant_gradient_run("nearest", backend=backend)
    assert torch.equal(nearest, torch.ones_like(nearest))  # stalled: every update rounded away
    stochastic, _ = constant_gradient_run("stochastic", backend=backend)
    assert abs(stochastic.float().mean().item() - expected) < 2e-3  # unbiased: right on average
    kahan, opt = constant_gradient_run("kahan", backend=backend)
    value = kahan.float() + opt.state[kahan]["kahan_comp"].float()
    # param + compensation carries the sum; the bf16 compensation rounds at 2^-9 of itself each step
    assert (value - expected).abs().max() < 1e-3
    assert (kahan.float() - expected).abs().max() <= 2**-8 + 1e-3  # the param itself: one bf16 step more


def test_stochastic_rounding_is_reproducible_and_follows_the_seed():
    a, _ = constant_gradient_run("stochastic", steps=50, seed=1)
    b, _ = constant_gradient_run("stochastic", steps=50, seed=1)
    c, _ = constant_gradient_run("stochastic", steps=50, seed=2)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_the_two_backends_round_stochastically_alike():
    a, _ = constant_gradient_run("stochastic", steps=50, state_precision="bf16", backend="c")
    b, _ = constant_gradient_run("stochastic", steps=50, state_precision="bf16", backend="reference")
    assert torch.equal(a, b)  # g = 1 makes the fp32 update the same on both, so the random draws decide alike


def test_fp32_params_ignore_param_update():
    a, b = torch.ones(10, requires_grad=True), torch.ones(10, requires_grad=True)
    oa, ob = adamlab.Adam([a], param_update="kahan"), adamlab.Adam([b])
    for _ in range(5):
        a.grad = b.grad = torch.randn(10)
        oa.step()
        ob.step()
    assert torch.equal(a, b) and "kahan_comp" not in oa.state[a]


# ---------------------------------------------------------------- changing the storage of a running optimizer


def test_changing_state_precision_between_steps_converts_the_state():
    gen = torch.Generator().manual_seed(3)
    p = torch.randn(10_000)
    opt = adamlab.AdamW([p], lr=1e-3)
    for precision in (None, "8bit", "bf16", None, "8bit"):
        before = {k: v.clone() for k, v in moments(opt, p).items()} if opt.state else {}
        opt.param_groups[0]["state_precision"] = precision
        p.grad = torch.zeros(10_000) if before else torch.randn(10_000, generator=gen)
        opt.step()
        after = moments(opt, p)
        for key, value in before.items():  # a zero gradient: the moments only decay, then are stored anew
            beta = 0.9 if key == "exp_avg" else 0.999
            assert torch.allclose(after[key], beta * value, rtol=0.03, atol=1e-3 * value.abs().max().item()), key
        p.grad = torch.randn(10_000, generator=gen)
        opt.step()
    assert "exp_avg_codes" in opt.state[p] and "exp_avg" not in opt.state[p]


def test_sparse_gradients_with_low_precision_state_are_refused_before_anything_changes():
    emb = torch.nn.Embedding(5000, 4, sparse=True)
    opt = adamlab.SGD(emb.parameters(), lr=0.1, momentum=0.9, state_precision="8bit")
    emb(torch.tensor([1, 2])).sum().backward()
    before = snapshot(opt)
    weight = emb.weight.detach().clone()
    with pytest.raises(RuntimeError, match="sparse"):
        opt.step()
    assert_same_snapshot(snapshot(opt), before)
    assert torch.equal(emb.weight, weight)


@pytest.mark.parametrize("precision", ["bf16", "8bit"])
def test_the_monitor_reads_low_precision_state_as_its_values(precision):
    """The monitor's step-size statistics from 8-bit or bf16 state, against the same run with fp32 state."""
    records = {}
    for storage in (None, precision):
        gen = torch.Generator().manual_seed(8)
        p = torch.randn(64, 256, generator=gen)
        opt = adamlab.AdamW([p], lr=1e-3, state_precision=storage)
        with adamlab.Monitor(opt, every=1) as monitor:
            for _ in range(3):
                p.grad = torch.randn(64, 256, generator=gen) * 1e-2
                p.grad[0] = 0.0  # a row whose second moment is exactly zero
                opt.step()
            records[storage] = dict(monitor.latest)
    ours, fp32 = records[precision], records[None]
    for stat, rel in (("p1", 0.05), ("p50", 0.02), ("p99", 0.05)):  # the tails hold the smallest v: coarser codes
        assert ours[f"group0/effective_step_{stat}"] == pytest.approx(fp32[f"group0/effective_step_{stat}"], rel=rel)
    assert ours["group0/v_zero"] == fp32["group0/v_zero"] > 0  # zeros stay exactly zero


@pytest.mark.parametrize("storage", [dict(state_precision="8bit"), dict(state_precision="bf16", param_update="kahan")])
def test_a_skipped_nonfinite_step_leaves_low_precision_state_bit_identical(storage):
    dtype = torch.bfloat16 if "param_update" in storage else torch.float32
    p = torch.randn(8192).to(dtype)
    opt = adamlab.AdamW([p], skip_nonfinite=True, **storage)
    p.grad = torch.randn(8192).to(dtype)
    opt.step()
    (groups, before), weights = snapshot(opt), p.clone()
    p.grad[7] = float("nan")
    opt.step()
    assert opt.last_step_skipped
    assert_same_snapshot((groups, snapshot(opt)[1]), (groups, before))  # the groups count the skip
    assert torch.equal(p, weights)


def test_a_priming_step_creates_8bit_state_and_moves_nothing():
    """torch.distributed.checkpoint's priming: lr 0, zero gradients; the state appears, nothing moves."""
    p = torch.randn(8192)
    weights = p.clone()
    opt = adamlab.AdamW([p], lr=1e-3, state_precision="8bit")
    opt.param_groups[0]["lr"] = 0.0
    p.grad = torch.zeros(8192)
    opt.step()
    st = opt.state[p]
    assert torch.equal(p, weights) and st["step"].item() == 0
    assert not st["exp_avg_codes"].any() and not st["exp_avg_absmax"].any()
