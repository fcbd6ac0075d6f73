"""How each array is kept in memory: its buffers, and their load and store, per printer.

Storage is never a new rule: a rule computes in the compute type (fp32, or
fp64 for fp64 params); a codec turns memory into that type on load and back
on store, rounding once. Every printer takes its codec text from here.

A codec owns one *main* buffer (the param itself, or the state tensor under
the state's own key) and may own extra buffers (:class:`Buffer`): one value
per element (a compensation term), per block of ``block`` elements (a
block's scale) or per tensor (a random stream's key). A codec with a block
stores through a per-block reduction: the printer keeps each block's new
values in registers or cache, and the block's store reduces them (its
absmax) before it writes the codes and the scale (``c_block_store``), all
inside one pass over memory. Each printer has its own forms (``c_*`` for C,
``torch_*`` for the reference backend); a new printer adds its own fields.

What every printer must keep so that all of them write the same bytes:

* buffers follow the array in the pointer table, main buffer first, in
  ``buffers`` order; a block buffer holds one value per ``block`` elements
  of the tensor's (or shard's) flat index, counted from 0;
* a block is reduced and stored as a whole, so work items start on block
  boundaries (the C loop's chunks are multiples of the block);
* the arithmetic of each form is the one written in the codec's module
  (:mod:`.quantized`, :mod:`.rounding`), operation for operation, with
  round-to-nearest-even conversions; the tests compare printers bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Buffer:
    """An extra buffer of a codec: its C pointer suffix, its state key, dtype and extent."""

    role: str  # the pointer is a_<array>_<role> in C
    key: str  # state key, "{name}" standing for the array's name (exp_avg_absmax); unused for the param's own
    dtype: torch.dtype
    extent: str  # "element" (one per element), "block" (one per block) or "one" (one per tensor)


@dataclass(frozen=True)
class Codec:
    name: str
    nbytes: int  # bytes per element moved by a load or a store, extra buffers included (amortised)
    c_type: str  # the C element type in memory
    c_load: str  # C expression of the compute value, from {x} (the element), {a} (the pointer), {j} (the index)
    c_store: str  # C expression of the element, from {x} (a compute value)
    triton_type: str | None = None  # the Triton element type in memory (pointer tables are cast to pointers of it)
    triton_load: str | None = None  # Triton expression of the compute value, from {x} (the loaded element)
    triton_store: str | None = None  # Triton expression of the element to store, from {x} (a compute value)
    buffers: tuple[Buffer, ...] = ()
    main_key: str = "{name}"  # state key of the main buffer of a state array kept this way
    block: int = 0  # elements per block of a codec that stores block by block; 0 for none
    c_prelude: str = ""  # C helpers of this codec, printed once per kernel
    c_setup: str = ""  # C statements once per chunk of a tensor ({a}: the pointer)
    c_store_extra: str = ""  # C statements after the element was stored ({x}: the compute value, {a}, {j})
    c_block_store: str = ""  # C statements storing a block's kept values ({a}, {keep}, {n}, {blk}, {b0})
    #: (buffers, start, stop, ctx) -> compute values of elements [start, stop); None: the main buffer, converted
    torch_load: Callable | None = None
    #: (value, buffers, start, stop, ctx) -> None, writing elements [start, stop); None: a rounding copy
    torch_store: Callable | None = None

    @property
    def plain(self) -> bool:
        """One buffer, one element at a time: a dtype conversion and nothing else."""
        return not self.buffers and not self.block


CODECS = {
    c.name: c
    for c in (
        Codec("float64", 8, "double", "{x}", "{x}", "tl.float64", "{x}", "{x}"),
        Codec("float32", 4, "float", "{x}", "{x}", "tl.float32", "{x}", "{x}"),
        Codec("float16", 2, "uint16_t", "fp16_to_float({x})", "float_to_fp16({x})",
              "tl.uint16", "fp16_to_float({x})", "float_to_fp16({x})"),
        Codec("bfloat16", 2, "uint16_t", "bf16_to_float({x})", "float_to_bf16({x})",
              "tl.uint16", "bf16_to_float({x})", "float_to_bf16({x})"),
    )
}

DTYPE_CODEC = {torch.float64: "float64", torch.float32: "float32", torch.float16: "float16",
               torch.bfloat16: "bfloat16"}


C_TYPES = {torch.float32: "float", torch.bfloat16: "uint16_t", torch.int64: "int64_t", torch.uint8: "uint8_t"}


def register(*codecs: Codec) -> None:
    for codec in codecs:
        CODECS[codec.name] = codec


def compute_type(param_codec: str) -> str:
    """fp64 params compute in fp64; every other precision in fp32 (so eps = 1e-8 keeps its meaning)."""
    return "float64" if param_codec == "float64" else "float32"


# Integer-only conversions between fp32 and fp16/bf16, round to nearest even as torch does,
# so the loop vectorises on any x86-64 and every printer rounds the same way.
C_PRELUDE = r"""
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <stdlib.h>

static inline float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f;
}
static inline uint16_t float_to_bf16(float f) {  /* round to nearest even, NaN -> 0xffff, as torch */
    uint32_t u; memcpy(&u, &f, 4);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? 0xffffu : rounded);
}
/* IEEE half <-> float with integer ops only (after F. Giesen's branch-free conversions). */
static inline float fp16_to_float(uint16_t h) {
    const uint32_t exp_mask = 0x7c00u << 13;
    uint32_t o = ((uint32_t)h & 0x7fffu) << 13;
    const uint32_t exp = o & exp_mask;
    o += (127u - 15u) << 23;
    const uint32_t inf_nan = o + ((128u - 16u) << 23);
    uint32_t sub_bits = o + (1u << 23), magic_bits = 113u << 23;
    float sub, magic; memcpy(&sub, &sub_bits, 4); memcpy(&magic, &magic_bits, 4);
    sub -= magic; memcpy(&sub_bits, &sub, 4);
    o = exp == exp_mask ? inf_nan : (exp == 0 ? sub_bits : o);
    o |= ((uint32_t)h & 0x8000u) << 16;
    float f; memcpy(&f, &o, 4); return f;
}
static inline uint16_t float_to_fp16(float x) {
    uint32_t f; memcpy(&f, &x, 4);
    const uint32_t sign = f & 0x80000000u; f ^= sign;
    const uint32_t magic_bits = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    float magic, t; memcpy(&magic, &magic_bits, 4); memcpy(&t, &f, 4);
    t += magic; uint32_t sub_bits; memcpy(&sub_bits, &t, 4);
    const uint32_t subnormal = sub_bits - magic_bits;
    const uint32_t normal = (f + ((uint32_t)(15 - 127) << 23) + 0xfffu + ((f >> 13) & 1u)) >> 13;
    const uint32_t big = f > (255u << 23) ? 0x7e00u : 0x7c00u;
    const uint32_t o = f >= ((127u + 16u) << 23) ? big : (f < (113u << 23) ? subnormal : normal);
    return (uint16_t)(o | (sign >> 16));
}
"""

# The same conversions for the Triton printer, on uint32 bit patterns. Half-precision arrays
# are read and written as uint16, never through a float-to-half cast: Triton's interpreter
# truncates `x.to(tl.bfloat16)`, so only integer rounding gives the same bits everywhere.
# Constants stay below 2**31, so that no uint32 literal depends on how Triton types it.
TRITON_PRELUDE = r"""
@triton.jit
def _u32(x: tl.constexpr):
    return tl.full((), x, tl.uint32)


@triton.jit
def bf16_to_float(h):
    return (h.to(tl.uint32) << 16).to(tl.float32, bitcast=True)


@triton.jit
def float_to_bf16(f):  # round to nearest even, NaN -> 0xffff, as torch
    u = f.to(tl.uint32, bitcast=True)
    rounded = (u + _u32(0x7FFF) + ((u >> 16) & _u32(1))) >> 16
    return tl.where((u & _u32(0x7FFFFFFF)) > _u32(0x7F800000), _u32(0xFFFF), rounded).to(tl.uint16)


@triton.jit
def fp16_to_float(h):
    exp_mask = _u32(0x7C00 << 13)
    o = (h.to(tl.uint32) & _u32(0x7FFF)) << 13
    exp = o & exp_mask
    o = o + _u32((127 - 15) << 23)
    inf_nan = o + _u32((128 - 16) << 23)
    magic = _u32(113 << 23).to(tl.float32, bitcast=True)
    sub = ((o + _u32(1 << 23)).to(tl.float32, bitcast=True) - magic).to(tl.uint32, bitcast=True)
    o = tl.where(exp == exp_mask, inf_nan, tl.where(exp == _u32(0), sub, o))
    o = o | ((h.to(tl.uint32) & _u32(0x8000)) << 16)
    return o.to(tl.float32, bitcast=True)


@triton.jit
def float_to_fp16(x):
    f = x.to(tl.uint32, bitcast=True)
    sign = (f >> 31) << 31
    f = f ^ sign
    magic_bits = _u32(((127 - 15) + (23 - 10) + 1) << 23)
    t = f.to(tl.float32, bitcast=True) + magic_bits.to(tl.float32, bitcast=True)
    subnormal = t.to(tl.uint32, bitcast=True) - magic_bits
    normal = (f - _u32(112 << 23) + _u32(0xFFF) + ((f >> 13) & _u32(1))) >> 13  # + ((15 - 127) << 23), as C
    big = tl.where(f > _u32(255 << 23), _u32(0x7E00), _u32(0x7C00))
    o = tl.where(f >= _u32((127 + 16) << 23), big, tl.where(f < _u32(113 << 23), subnormal, normal))
    return (o | (sign >> 16)).to(tl.uint16)
"""

# the low-precision codecs; imported last, as they build on the definitions above
from . import quantized, rounding  # noqa: E402, F401
