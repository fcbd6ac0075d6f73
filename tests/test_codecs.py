"""The storage codecs themselves: 8-bit root codes, bf16 stochastic rounding, the Kahan pair.

Three implementations of each code must agree bit for bit: the C loop (a
kernel printed from a rule that stores known values), the torch forms of the
reference backend, and a NumPy transcription here of the definitions in
adamlab/backends/quantized.py and rounding.py. Their meaning is checked by
properties a wrong code breaks: every value decodes to one of the two levels
around it, levels round-trip exactly, zero is exactly zero, NaN and inf stay
in their element, stochastic rounding is unbiased.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from codes_oracle import np_decode, np_encode, np_power

from adamlab.algorithms import Config
from adamlab.backends import cpu, dispatch, quantized, rounding
from adamlab.backends.storage import CODECS

# ---------------------------------------------------------------- the C loop on known values


@dataclass(frozen=True)
class StoreValues(Config):
    """p += g, and both states := g: the stored values are exact, so every codec sees the same numbers."""

    def state_names(self):
        return ("exp_avg", "exp_avg_sq")

    def rule(self, p, g, st, s):
        return p + g, {"exp_avg": g, "exp_avg_sq": g}


def buffers(codec: str, like: torch.Tensor, fill=None) -> list[torch.Tensor]:
    c = CODECS[codec]
    main = like.clone() if fill is None else torch.zeros(like.shape, dtype=torch.uint8)
    out = [main]
    for b in c.buffers:
        n = {"element": like.numel(), "block": quantized.blocks(like.numel()), "one": 1}[b.extent]
        out.append(torch.full((n,) if b.extent != "one" else (), 12345, dtype=b.dtype) if b.extent == "one"
                   else torch.zeros(n, dtype=b.dtype))
    return out


def run_store(backend: str, p: torch.Tensor, g: torch.Tensor, p_codec: str, step: float = 3.0):
    arrays = [*buffers(p_codec, p), g.clone(), *buffers("q8_signed", g, 0), *buffers("q8_unsigned", g, 0)]
    codecs = (p_codec, "float32" if g.dtype == torch.float32 else "bfloat16", "q8_signed", "q8_unsigned")
    bucket = dispatch.Bucket(StoreValues(), SimpleNamespace(rounding_step=step), arrays, len(arrays), codecs=codecs)
    dispatch.prepare(bucket, backend, required=backend == "c")()
    return arrays


def special_values(n: int, seed: int = 0) -> torch.Tensor:
    """Gradients spanning 30 decades, with zeros, -0, subnormals, NaN, +-inf and an all-zero block."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=gen) * 10 ** (torch.rand(n, generator=gen) * 30 - 20)
    x[256:512] = 0.0  # a whole block of zeros
    x[512:768] *= 1e-40  # a block of subnormals: stored as zeros
    x[5], x[6], x[7], x[8], x[9] = float("nan"), float("inf"), -float("inf"), -0.0, 3e38
    return x


SIZES = [1, 255, 256, 257, 4097, cpu.CHUNK + 300]


@pytest.mark.parametrize("n", SIZES)
def test_c_loop_codes_equal_reference_and_numpy_bit_for_bit(n):
    g = special_values(max(n, 1000))[:n] if n >= 1000 else torch.randn(n) * 1e-3
    p = torch.randn(n)
    c_arrays, ref_arrays = run_store("c", p, g, "float32"), run_store("reference", p, g, "float32")
    for a, b in zip(c_arrays, ref_arrays):
        assert torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8)), (a, b)
    for code, (codes, scale) in (("q8_signed", c_arrays[2:4]), ("q8_unsigned", c_arrays[4:6])):
        want_codes, want_scale = np_encode(code, g.numpy())
        assert np.array_equal(codes.numpy(), want_codes)
        assert np.array_equal(scale.numpy().view(np.uint32), want_scale.view(np.uint32))


@pytest.mark.parametrize("code", ["q8_signed", "q8_unsigned"])
def test_decode_equals_numpy_and_is_one_of_the_two_levels_around_each_value(code):
    x = special_values(5000, seed=1)
    if code == "q8_unsigned":
        x = x.abs()
    codes, scale = quantized.encode(code, x)
    got = quantized.decode(code, codes, scale).numpy()
    want = np_decode(code, codes.numpy(), scale.numpy())
    assert np.array_equal(np.isnan(got), np.isnan(want))
    finite = ~np.isnan(want)
    assert np.array_equal(got[finite].view(np.uint32), want[finite].view(np.uint32))
    levels = quantized.ROOTS[code][0]
    table = np_power(np.arange(levels + 1, dtype=np.float32) / np.float32(levels), code)  # |value| / absmax
    xs, ms = x.numpy(), np.repeat(scale.numpy(), 256)[: x.numel()]
    ok = np.isfinite(xs) & (ms > 0)
    r = np.abs(xs[ok]) / ms[ok]
    below = table[np.clip(np.searchsorted(table, r, side="right") - 1, 0, levels)] * ms[ok]
    above = table[np.clip(np.searchsorted(table, r, side="left"), 0, levels)] * ms[ok]
    dec = np.abs(got[ok])
    rel = np.maximum(np.abs(dec - below), np.abs(dec - above)) / np.maximum(above, 1e-38)
    assert ((np.isclose(dec, below, rtol=1e-6, atol=0) | np.isclose(dec, above, rtol=1e-6, atol=0))
            | (rel < 1e-6)).all()


@pytest.mark.parametrize("code", ["q8_signed", "q8_unsigned"])
def test_every_code_round_trips_and_zero_is_exact(code):
    levels = quantized.ROOTS[code][0]
    c = torch.arange(-levels if code == "q8_signed" else 0, levels + 1)
    codes = c.to(torch.int8).view(torch.uint8) if code == "q8_signed" else c.to(torch.uint8)
    values = quantized.decode(code, codes, torch.tensor([3.5]))
    again, scale = quantized.encode(code, values)
    assert torch.equal(again, codes) and scale.item() == 3.5
    assert values[c == 0].item() == 0.0


def test_zero_blocks_stay_zero_and_non_finite_values_do_not_touch_their_neighbours():
    x = torch.randn(1024) * 1e-3
    x[:256] = 0.0
    clean = x.clone()
    x[300], x[301], x[302] = float("nan"), float("inf"), -float("inf")
    clean[300] = clean[301] = clean[302] = 0.0
    for code in ("q8_signed", "q8_unsigned"):
        xs, cs = (x.abs(), clean.abs()) if code == "q8_unsigned" else (x, clean)
        if code == "q8_unsigned":
            xs[300:303] = x[300:303].abs()
        codes, scale = quantized.encode(code, xs)
        ref_codes, ref_scale = quantized.encode(code, cs)
        decoded = quantized.decode(code, codes, scale)
        assert torch.equal(decoded[:256], torch.zeros(256)) and scale[0] == 0  # no 0/0 anywhere
        assert torch.isnan(decoded[300:303]).all()
        assert torch.equal(scale, ref_scale)  # NaN and inf take no part in the block's absmax
        keep = torch.ones(1024, dtype=torch.bool)
        keep[300:303] = False
        assert torch.equal(codes[keep], ref_codes[keep])


def test_negative_values_in_the_unsigned_code_are_stored_as_nan():
    codes, scale = quantized.encode("q8_unsigned", torch.tensor([1.0, -1e-3, 0.5, -0.0]))
    decoded = quantized.decode("q8_unsigned", codes, scale)
    assert torch.isnan(decoded[1]) and decoded[3] == 0 and decoded[0] == 1.0


def test_a_checkpoint_block_size_decodes_with_its_own_scales():
    x = torch.randn(5000)
    codes, scales = np_encode("q8_signed", x.numpy(), block=2048)
    got = quantized.decode("q8_signed", torch.from_numpy(codes), torch.from_numpy(scales), block=2048)
    assert np.array_equal(got.numpy(), np_decode("q8_signed", codes, scales, block=2048))


# ---------------------------------------------------------------- bf16 params: stochastic rounding and Kahan


def np_mix32(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.uint32)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def test_random_bits_match_numpy_and_the_python_key():
    key, step = rounding.stream_key(7, 3), 11
    base = np_mix32(np.array([(key & 0xFFFFFFFF) ^ int(np_mix32(np.array([step]))[0])]))[0]
    want = np_mix32((np.arange(1000, 1500, dtype=np.uint64) + np.uint64(base)).astype(np.uint32))
    assert np.array_equal(rounding.random_bits(key, step, 1000, 1500).numpy().astype(np.uint32), want)
    assert rounding.mix32(12345) == int(np_mix32(np.array([12345]))[0])


@pytest.mark.parametrize("p_codec", ["bf16_stochastic", "bf16_kahan"])
def test_bf16_param_stores_are_equal_on_both_backends(p_codec):
    n = cpu.CHUNK + 777
    p = (torch.randn(n) * 3).to(torch.bfloat16)
    g = (torch.randn(n) * 1e-4).to(torch.bfloat16)  # below half a bf16 step of p: nearest would drop it
    c_arrays, ref_arrays = run_store("c", p, g, p_codec), run_store("reference", p, g, p_codec)
    for a, b in zip(c_arrays, ref_arrays):
        assert torch.equal(a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))
    assert not torch.equal(c_arrays[0], p)  # the small updates were not all lost


def test_stochastic_rounding_is_unbiased_and_reproducible():
    x = torch.full((1,), 1.0 + 2**-10, dtype=torch.float32)  # 1/8 of the way from 1 to the next bf16 (2^-7)
    draws = torch.cat([rounding.stochastic_bf16(x.expand(100_000), rounding.random_bits(5, t, 0, 100_000))
                       for t in range(1, 3)])
    values = draws.view(torch.bfloat16).float()
    assert set(values.unique().tolist()) == {1.0, 1.0 + 2**-7}
    assert abs(values.mean().item() - x.item()) < 3e-5  # the mean of 200k roundings is the value
    again = rounding.stochastic_bf16(x.expand(100_000), rounding.random_bits(5, 1, 0, 100_000))
    assert torch.equal(again, draws[:100_000])
    other = rounding.stochastic_bf16(x.expand(100_000), rounding.random_bits(6, 1, 0, 100_000))
    assert not torch.equal(other, again)


def test_stochastic_rounding_keeps_nan_and_rounds_exact_values_exactly():
    x = torch.tensor([float("nan"), 1.5, -2.0, 0.0, float("inf")])
    out = rounding.stochastic_bf16(x, rounding.random_bits(1, 1, 0, 5)).view(torch.bfloat16).float()
    assert torch.isnan(out[0]) and torch.equal(out[1:], x[1:])
