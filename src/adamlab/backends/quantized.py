"""8-bit block-wise state (after Dettmers et al. 2022): codes of one byte, one fp32 absmax per block.

A state tensor is cut into blocks of :data:`BLOCK` elements in memory order
(the last block of a tensor, or of a shard, may be short). Each block keeps
the largest finite magnitude of its values, ``absmax``, in fp32, and every
element a code of 8 bits relative to it. Both codes are *root* codes: the
code is linear in a root of r = |x| / absmax, so the steps are finest near
the block's largest values and still reach far below them:

* ``q8_signed`` (first moments): c = round(127 R2(r)) with x's sign, in
  -127..127; R2 is a square root;
* ``q8_unsigned`` (second moments and other non-negative state):
  c = round(254 R4(r)), in 0..254; R4 is a fourth root, so the smallest
  non-zero value is 2.4e-10 of the block's absmax, and a coordinate whose
  gradients are 1e-5 of its neighbours' keeps a non-zero second moment.

The roots are taken on the float's bit pattern, which is a piecewise-linear
log2: R_k(r) = float(bits(r) / k + bits(1) (1 - 1/k)), exact at powers of
2^k and within 6% of the true root between them; decoding inverts it exactly,
R_k^-1(s) = float(k (bits(s) - bits(1) (1 - 1/k))), floored at 0. So every
printer codes and decodes with a shift, an add and a multiply (no square
roots, no tables), bit for bit alike. On the state of a small transformer
these codes give the Adam update m / (sqrt(v) + eps) a relative error of
1.1% (first moment) and 0.6% (second), against 1.7% and 0.9% for the
dynamic (decade) map of the paper (docs/low_precision.md).

Rounding is to nearest, ties to even. Rules that must hold (and are tested):

* a zero decodes to exactly 0, and an all-zero block is all zero codes with
  absmax 0 (nothing divides by it); a block whose absmax is below the
  smallest normal fp32 (1.2e-38) is stored as zeros;
* NaN and +-inf take no part in their block's absmax, so the other values of
  the block keep their scale; the element itself is stored as the reserved
  code (-128 signed, 255 unsigned) and decodes to NaN, and a param it feeds
  becomes NaN, as with fp32 state (where inf - inf or inf / inf gives NaN);
* a negative value given to the unsigned code is stored as NaN.
"""

from __future__ import annotations

import math

import torch

from .storage import Buffer, Codec, register

BLOCK = 256
SIGNED_NAN, UNSIGNED_NAN = 0x80, 0xFF
TINY = torch.finfo(torch.float32).tiny  # blocks whose absmax is below this are stored as zeros
#: (levels, shift k as a power of two, offset bits(1) (1 - 1/k)) of each code
ROOTS = {"q8_signed": (127, 1, 0x1FC00000), "q8_unsigned": (254, 2, 0x2FA00000)}

C_PRELUDE = r"""
#include <float.h>
static inline uint32_t bits_of(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static inline float float_of_bits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static inline uint32_t finite_abs_bits(float x) {  /* |x| as bits (they order like the values); 0 for NaN, inf */
    const uint32_t u = bits_of(x) & 0x7fffffffu; return u < 0x7f800000u ? u : 0u;
}
static inline int32_t round_even(float x) {  /* round to nearest even, |x| < 2^22: the sum's low bits */
    return (int32_t)(bits_of(x + 12582912.0f) - 0x4B400000u);
}
/* NaN as bits: a float select on a per-element condition keeps gcc from vectorising the element loop */
static inline float nan_if(float v, int is_nan) { return float_of_bits(bits_of(v) | (is_nan ? 0x7fc00000u : 0u)); }
static inline float root_of(float r, int shift, uint32_t offset) {
    return float_of_bits((bits_of(r) >> shift) + offset);
}
static inline float power_of(float s, int shift, uint32_t offset) {
    const uint32_t u = bits_of(s); return float_of_bits(((u > offset ? u : offset) - offset) << shift);
}
static inline float q8_inverse(float absmax) { return absmax > 0.0f ? 1.0f / absmax : 0.0f; }
static inline float q8s_decode(uint8_t code, float absmax) {
    const float c = (float)(int8_t)code, r = power_of(fabsf(c) * 0x1.020408p-7f, 1, 0x1fc00000u);
    return nan_if(copysignf(r, c) * absmax, c == -128.0f);
}
static inline float q8u_decode(uint8_t code, float absmax) {
    const float c = (float)code;
    return nan_if(power_of(c * 0x1.020408p-8f, 2, 0x2fa00000u) * absmax, c == 255.0f);
}
/* the block's largest finite |x|, 0 below the smallest normal: |x| as bits orders like the values; the
   rare block with NaN or inf is reduced again without them */
static inline float q8_block_absmax(const float* restrict keep, int64_t n) {
    uint32_t top = 0;
    _Pragma("omp simd reduction(max: top)")
    for (int64_t k = 0; k < n; k++) { const uint32_t r = bits_of(keep[k]) & 0x7fffffffu; top = r > top ? r : top; }
    if (top >= 0x7f800000u) {
        top = 0;
        for (int64_t k = 0; k < n; k++) { const uint32_t r = finite_abs_bits(keep[k]); top = r > top ? r : top; }
    }
    return float_of_bits(top) >= FLT_MIN ? float_of_bits(top) : 0.0f;
}
static inline void q8s_store_block(uint8_t* restrict codes, const float* restrict keep, int64_t n,
                                   float* restrict absmax) {
    const float m = q8_block_absmax(keep, n), inv = q8_inverse(m);
    *absmax = m;
    for (int64_t k = 0; k < n; k++) {
        const float x = keep[k];
        const int32_t c = round_even(copysignf(127.0f * root_of(fabsf(x) * inv, 1, 0x1fc00000u), x));
        codes[k] = (bits_of(x) & 0x7fffffffu) < 0x7f800000u ? (uint8_t)c : (uint8_t)0x80u;
    }
}
static inline void q8u_store_block(uint8_t* restrict codes, const float* restrict keep, int64_t n,
                                   float* restrict absmax) {
    const float m = q8_block_absmax(keep, n), inv = q8_inverse(m);
    *absmax = m;
    for (int64_t k = 0; k < n; k++) {
        const float x = keep[k];
        const uint32_t u = bits_of(x);
        const int32_t c = round_even(254.0f * root_of(fabsf(x) * inv, 2, 0x2fa00000u));
        codes[k] = (u < 0x7f800000u || u == 0x80000000u) ? (uint8_t)c : (uint8_t)0xffu;  /* +finite or -0 */
    }
}
"""


# ---------------------------------------------------------------- the same codes in torch ops (fp32)


def _bits(x: torch.Tensor) -> torch.Tensor:
    return x.view(torch.int32)


def root(r: torch.Tensor, code: str) -> torch.Tensor:
    """R_k(r) for r >= 0 (fp32)."""
    _, shift, offset = ROOTS[code]
    return ((_bits(r) >> shift) + offset).view(torch.float32)


def power(s: torch.Tensor, code: str) -> torch.Tensor:
    """R_k^-1(s) for s >= 0 (fp32), 0 below the root of the smallest float."""
    _, shift, offset = ROOTS[code]
    return ((_bits(s).clamp(min=offset) - offset) << shift).view(torch.float32)


def absmax(x: torch.Tensor) -> torch.Tensor:
    """Per block of a flat fp32 tensor: the largest finite |x| (0 where there is none), 0 below TINY."""
    a = x.abs()
    a = torch.where(a < math.inf, a, 0.0)
    pad = -a.numel() % BLOCK
    m = torch.nn.functional.pad(a, (0, pad)).view(-1, BLOCK).amax(1)
    return torch.where(m >= TINY, m, 0.0)


def _per_element(block_values: torch.Tensor, n: int, block: int = BLOCK) -> torch.Tensor:
    return block_values.repeat_interleave(block)[:n]


_INV = {code: torch.tensor(1 / levels, dtype=torch.float32) for code, (levels, _, _) in ROOTS.items()}


def decode(code: str, codes: torch.Tensor, scale: torch.Tensor, block: int = BLOCK) -> torch.Tensor:
    """fp32 values of flat codes and their blocks' absmax (``block``: for checkpoints of other block sizes)."""
    signed = code == "q8_signed"
    c = (codes.view(torch.int8) if signed else codes).float()
    r = power(c.abs() * _INV[code], code)
    value = (torch.copysign(r, c) if signed else r) * _per_element(scale.float(), codes.numel(), block)
    return torch.where(codes == (SIGNED_NAN if signed else UNSIGNED_NAN), math.nan, value)


def encode(code: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes, absmax) of a flat fp32 tensor whose first element starts a block."""
    levels = ROOTS[code][0]
    m = absmax(x)
    inv = _per_element(torch.where(m > 0, 1.0 / m, 0.0), x.numel())
    a = x.abs()
    c = torch.round(levels * root(a * inv, code))
    if code == "q8_signed":
        c = torch.where(a < math.inf, torch.copysign(c, x), -128.0)
        return c.to(torch.int8).view(torch.uint8), m
    ok = (a < math.inf) & ~(x < 0)
    return torch.where(ok, c, 255.0).to(torch.uint8), m


def _blocks(start: int, stop: int) -> slice:
    return slice(start // BLOCK, -(-stop // BLOCK))


def _loader(code):
    def load(bufs, start, stop, ctx):
        return decode(code, bufs[""][start:stop], bufs["absmax"][_blocks(start, stop)]).to(ctx.compute)

    return load


def _storer(code):
    def store(value, bufs, start, stop, ctx):
        codes, scale = encode(code, value.float())
        bufs[""][start:stop] = codes
        bufs["absmax"][_blocks(start, stop)] = scale

    return store


ABSMAX = Buffer("absmax", "{name}_absmax", torch.float32, "block")


def _codec(name: str, prefix: str) -> Codec:
    return Codec(
        name, 1, "uint8_t", f"{prefix}_decode({{x}}, {{a}}_absmax[blk])", "", buffers=(ABSMAX,),
        main_key="{name}_codes", block=BLOCK, c_prelude=C_PRELUDE,
        c_block_store=f"{prefix}_store_block({{a}} + {{b0}}, {{keep}}, {{n}}, {{a}}_absmax + {{blk}});",
        torch_load=_loader(name), torch_store=_storer(name),
    )


register(_codec("q8_signed", "q8s"), _codec("q8_unsigned", "q8u"))


def blocks(numel: int) -> int:
    """How many absmax values a tensor (or shard) of ``numel`` elements has."""
    return -(-numel // BLOCK)
