"""bf16 params that keep small updates: stochastic rounding and a Kahan compensation buffer.

Rounding the new fp32 value of a bf16 param to nearest loses any update
smaller than half a bf16 step (about 0.2% of the weight), so training with
small updates stalls (Zamirai et al. 2021). Two stores avoid it:

* ``bf16_stochastic``: round up with probability equal to the fraction of
  the step cut off, by adding 16 random bits below the bf16 mantissa and
  truncating. The bits come from a counter-based hash of (the param's
  stream key, the step, the element's index), the same integer arithmetic in
  every printer, so a run is reproducible bit for bit and the C loop and the
  reference backend agree exactly.
* ``bf16_kahan``: a second bf16 buffer holds what rounding cut off; the value
  the rule sees is param + compensation (in fp32), and after the update the
  param gets the rounded value and the buffer the rest (optimi's Kahan
  summation, written as a load and a store).

The hash is ``mix32`` (Wellons' "lowbias32", 32-bit, two multiplies): for
step t and element j of a param with key k, the 32 random bits are
mix32(mix32(k ^ mix32(t)) + j), mod 2^32.
"""

from __future__ import annotations

import torch

from .storage import Buffer, Codec, register

MASK32 = 0xFFFFFFFF
M1, M2 = 0x7FEB352D, 0x846CA68B

C_PRELUDE = r"""
static inline uint32_t mix32(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16; return x;
}
static inline uint32_t rounding_base(int64_t key, double step) {
    return mix32((uint32_t)key ^ mix32((uint32_t)(int64_t)step));
}
static inline uint16_t float_to_bf16_stochastic(float f, uint32_t bits) {  /* NaN -> 0xffff, as nearest */
    uint32_t u; memcpy(&u, &f, 4);
    const uint16_t rounded = (uint16_t)((u + (bits & 0xffffu)) >> 16);
    return ((u & 0x7fffffffu) > 0x7f800000u) ? (uint16_t)0xffffu : rounded;
}
"""


def mix32(x):
    """lowbias32 on a Python int or an int64 tensor holding values in [0, 2^32)."""
    if isinstance(x, int):
        x &= MASK32
        x ^= x >> 16
        x = (x * M1) & MASK32
        x ^= x >> 15
        x = (x * M2) & MASK32
        return x ^ (x >> 16)
    x = x ^ (x >> 16)
    x = _mul32(x, M1)
    x = x ^ (x >> 15)
    x = _mul32(x, M2)
    return x ^ (x >> 16)


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2^32 in int64 without overflow: split x into 16-bit halves."""
    low = (x & 0xFFFF) * c
    high = (((x >> 16) * c) & 0xFFFF) << 16
    return (low + high) & MASK32


def stream_key(seed: int, stream: int) -> int:
    """The key of one param's random stream: a hash of the seed and the param's position."""
    return mix32((seed & MASK32) ^ mix32(stream))


def base(key: int, step: int) -> int:
    return mix32((key & MASK32) ^ mix32(int(step)))


def random_bits(key: int, step: int, start: int, stop: int, device=None) -> torch.Tensor:
    """The 32 random bits (int64, in [0, 2^32)) of elements [start, stop) at this step."""
    j = torch.arange(start, stop, dtype=torch.int64, device=device)
    return mix32((j + base(key, step)) & MASK32)


def stochastic_bf16(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """fp32 -> bf16 rounded up with probability (the cut fraction), as int16 bit patterns."""
    u = x.float().view(torch.int32).to(torch.int64) & MASK32
    rounded = (u + (bits & 0xFFFF)) >> 16
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    return torch.where(nan, 0xFFFF, rounded).to(torch.int32).to(torch.int16)


def _load_plain(bufs, start, stop, ctx):
    return bufs[""][start:stop].to(ctx.compute)


def _store_stochastic(value, bufs, start, stop, ctx):
    bits = random_bits(int(bufs["key"].item()), int(ctx.scalars.rounding_step), start, stop, value.device)
    bufs[""][start:stop].view(torch.int16).copy_(stochastic_bf16(value, bits))


def _load_kahan(bufs, start, stop, ctx):
    return bufs[""][start:stop].float() + bufs["comp"][start:stop].float()


def _store_kahan(value, bufs, start, stop, ctx):
    high = value.to(torch.bfloat16)
    bufs[""][start:stop] = high
    bufs["comp"][start:stop] = (value - high.float()).to(torch.bfloat16)


KEY = Buffer("key", "rounding_key", torch.int64, "one")
COMP = Buffer("comp", "kahan_comp", torch.bfloat16, "element")

register(
    Codec(
        "bf16_stochastic", 2, "uint16_t", "bf16_to_float({x})", "float_to_bf16_stochastic({x}, mix32({a}_base + "
        "(uint32_t){j}))", buffers=(KEY,), c_prelude=C_PRELUDE,
        c_setup="const uint32_t {a}_base = rounding_base({a}_key[0], s_rounding_step);",
        torch_load=_load_plain, torch_store=_store_stochastic,
    ),
    Codec(
        "bf16_kahan", 4, "uint16_t", "bf16_to_float({x}) + bf16_to_float({a}_comp[{j}])", "float_to_bf16({x})",
        buffers=(COMP,), c_store_extra="{a}_comp[{j}] = float_to_bf16({x} - bf16_to_float({a}[{j}]));",
        torch_load=_load_kahan, torch_store=_store_kahan,
    ),
)
