"""Checkpoints of low-precision state: saved as it lives, resumed bit for bit, converted both ways.

Oracles: the uninterrupted run (resume must equal it exactly), torch.optim
(its checkpoints load into an 8-bit optimizer; an expanded 8-bit checkpoint
loads into it and steps), and the NumPy code transcription (a checkpoint
with another block size).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from cases import assert_same_snapshot, snapshot, through_bytes
from codes_oracle import np_decode, np_encode

import adamlab
from adamlab.backends import quantized
from adamlab.optim import lowp_state

STORAGES = [
    dict(state_precision="8bit"),
    dict(state_precision="bf16"),
    dict(state_precision="8bit", param_update="stochastic", rounding_seed=3),
    dict(state_precision="bf16", param_update="kahan"),
    dict(param_update="stochastic"),
]


def model(dtype=torch.float32):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(80, 64), torch.nn.Tanh(), torch.nn.Linear(64, 10)).to(dtype)


def train(m, opt, steps, seed):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = torch.randn(16, 80, generator=gen).to(next(m.parameters()).dtype)
        opt.zero_grad()
        m(x).float().pow(2).mean().backward()
        opt.step()


@pytest.mark.parametrize("backend", ["c", "reference"])
@pytest.mark.parametrize("storage", STORAGES, ids=lambda s: "-".join(map(str, s.values())))
def test_resume_is_bitwise(storage, backend):
    dtype = torch.bfloat16 if "param_update" in storage else torch.float32
    straight = model(dtype)
    opt = adamlab.AdamW(straight.parameters(), lr=1e-2, backend=backend, **storage)
    train(straight, opt, 6, seed=1)
    saved_model, saved_opt = through_bytes(straight.state_dict()), through_bytes(opt.state_dict())
    train(straight, opt, 6, seed=2)

    resumed = model(dtype)
    resumed.load_state_dict(saved_model)
    again = adamlab.AdamW(resumed.parameters(), lr=1e-2, backend=backend, **storage)
    again.load_state_dict(saved_opt)
    train(resumed, again, 6, seed=2)
    for a, b in zip(straight.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    for p, q in zip(straight.parameters(), resumed.parameters()):
        assert opt.state[p].keys() == again.state[q].keys()
        for key, value in opt.state[p].items():
            assert torch.equal(value, again.state[q][key]) and value.dtype == again.state[q][key].dtype, key


def test_8bit_state_is_saved_as_codes_and_absmax_with_a_format_record():
    m = model()
    opt = adamlab.AdamW(m.parameters(), state_precision="8bit")
    train(m, opt, 2, seed=0)
    sd = through_bytes(opt.state_dict())  # torch.load(weights_only=True)
    record = sd[lowp_state.FORMAT_KEY]
    assert record == {"version": 1, "block_size": 256,
                      "codes": {"exp_avg": "sqrt-signed-127", "exp_avg_sq": "fourth-root-unsigned-254"}}
    weight = sd["state"][0]  # Linear(80, 64).weight: 5120 elements
    assert weight["exp_avg_codes"].dtype == torch.uint8 and weight["exp_avg_codes"].shape == (64, 80)
    assert weight["exp_avg_absmax"].dtype == torch.float32 and weight["exp_avg_absmax"].shape == (20,)
    assert "exp_avg" in sd["state"][1]  # the 64-element bias keeps fp32 state
    fp32 = adamlab.AdamW(model().parameters())
    assert lowp_state.FORMAT_KEY not in fp32.state_dict()


def test_a_torch_checkpoint_loads_into_an_8bit_optimizer():
    m = model()
    theirs = torch.optim.AdamW(m.parameters(), lr=1e-2)
    train(m, theirs, 5, seed=0)
    ours = adamlab.AdamW(m.parameters(), lr=1e-2, state_precision="8bit")
    ours.load_state_dict(through_bytes(theirs.state_dict()))
    assert ours.param_groups[0]["state_precision"] == "8bit"  # the loader's storage, not the checkpoint's
    weight = m[0].weight
    st = ours.state[weight]
    assert st["exp_avg_codes"].dtype == torch.uint8 and "exp_avg" not in st
    for name, code in (("exp_avg", "q8_signed"), ("exp_avg_sq", "q8_unsigned")):
        want = theirs.state[weight][name].reshape(-1)
        got = quantized.decode(code, st[f"{name}_codes"].reshape(-1), st[f"{name}_absmax"])
        blocks = quantized.absmax(want).repeat_interleave(256)[: want.numel()]
        assert ((got - want).abs() <= 0.01 * blocks).all(), name
    train(m, ours, 2, seed=1)  # and it trains on


def test_an_8bit_checkpoint_expands_for_torch_optim():
    m = model()
    ours = adamlab.AdamW(m.parameters(), lr=1e-2, state_precision="8bit")
    train(m, ours, 5, seed=0)
    expanded = adamlab.expand_state_dict(through_bytes(ours.state_dict()))
    assert lowp_state.FORMAT_KEY not in expanded and "state_precision" not in expanded["param_groups"][0]
    theirs = torch.optim.AdamW(m.parameters(), lr=1e-2)
    theirs.load_state_dict(through_bytes(expanded))
    for p in m.parameters():
        for name, value in ours.state[p].items():
            if name.endswith("_codes"):
                key = name[: -len("_codes")]
                code = "q8_unsigned" if key == "exp_avg_sq" else "q8_signed"
                decoded = quantized.decode(code, value.reshape(-1), ours.state[p][f"{key}_absmax"]).view(p.shape)
                assert torch.equal(theirs.state[p][key], decoded)
    fp32 = adamlab.AdamW(m.parameters(), lr=1e-2)
    fp32.load_state_dict(expanded)  # the same numbers in adamlab's default storage
    for p in m.parameters():
        for key in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(fp32.state[p][key], theirs.state[p][key])
    train(m, theirs, 1, seed=1)


def test_an_8bit_checkpoint_loads_into_a_default_optimizer_as_fp32():
    m = model()
    ours = adamlab.AdamW(m.parameters(), state_precision="8bit")
    train(m, ours, 3, seed=0)
    plain = adamlab.AdamW(m.parameters())
    plain.load_state_dict(through_bytes(ours.state_dict()))
    assert plain.param_groups[0]["state_precision"] is None
    st = plain.state[m[0].weight]
    assert st["exp_avg"].dtype == torch.float32 and "exp_avg_codes" not in st
    train(m, plain, 1, seed=1)


def test_bf16_and_fp32_state_convert_into_each_other():
    m = model()
    a = adamlab.AdamW(m.parameters())
    train(m, a, 3, seed=0)
    b = adamlab.AdamW(m.parameters(), state_precision="bf16")
    b.load_state_dict(a.state_dict())
    for p in m.parameters():
        assert torch.equal(b.state[p]["exp_avg"], a.state[p]["exp_avg"].to(torch.bfloat16))
    c = adamlab.AdamW(m.parameters())
    c.load_state_dict(b.state_dict())
    for p in m.parameters():
        assert c.state[p]["exp_avg"].dtype == torch.float32
        assert torch.equal(c.state[p]["exp_avg"], b.state[p]["exp_avg"].float())


def test_a_checkpoint_with_another_block_size_loads_through_its_record():
    """A format record with block_size 2048 (bitsandbytes' old size): decoded with it, coded anew in 256."""
    m = model()
    opt = adamlab.AdamW(m.parameters(), state_precision="8bit")
    train(m, opt, 3, seed=0)
    sd = opt.state_dict()
    sd[lowp_state.FORMAT_KEY]["block_size"] = 2048
    weight = sd["state"][0]
    values = {}
    for name, code in (("exp_avg", "q8_signed"), ("exp_avg_sq", "q8_unsigned")):
        values[name] = torch.randn(5120).abs() * 1e-3 if code == "q8_unsigned" else torch.randn(5120) * 1e-2
        codes, scales = np_encode(code, values[name].numpy(), block=2048)
        weight[f"{name}_codes"] = torch.from_numpy(codes).view(64, 80)
        weight[f"{name}_absmax"] = torch.from_numpy(scales)
    again = adamlab.AdamW(m.parameters(), state_precision="8bit")
    again.load_state_dict(through_bytes(sd))
    st = again.state[m[0].weight]
    for name, code in (("exp_avg", "q8_signed"), ("exp_avg_sq", "q8_unsigned")):
        decoded = np_decode(code, weight[f"{name}_codes"].numpy().reshape(-1), weight[f"{name}_absmax"].numpy(),
                            block=2048)
        want_codes, want_scales = np_encode(code, decoded)
        assert np.array_equal(st[f"{name}_codes"].numpy().reshape(-1), want_codes)
        assert np.array_equal(st[f"{name}_absmax"].numpy(), want_scales)


@pytest.mark.parametrize("spoil, words", [
    (lambda sd: sd[lowp_state.FORMAT_KEY].update(version=2), "version"),
    (lambda sd: sd.pop(lowp_state.FORMAT_KEY), "format"),
    (lambda sd: sd[lowp_state.FORMAT_KEY]["codes"].update(exp_avg="dynamic-map"), "codes"),
    (lambda sd: [sd["state"][0].pop(k) for k in ("exp_avg_sq_codes", "exp_avg_sq_absmax")], "exp_avg_sq"),
])
def test_unreadable_8bit_checkpoints_are_refused_before_anything_changes(spoil, words):
    m = model()
    opt = adamlab.AdamW(m.parameters(), state_precision="8bit")
    train(m, opt, 2, seed=0)
    sd = through_bytes(opt.state_dict())
    spoil(sd)
    before = snapshot(opt)
    with pytest.raises((ValueError, KeyError), match=words):
        opt.load_state_dict(sd)
    assert_same_snapshot(snapshot(opt), before)
