"""A NumPy transcription of adamlab's 8-bit root codes (adamlab/backends/quantized.py's docstring).

Written from the definitions, in NumPy's unsigned integer and float32
arithmetic, so it can disagree with both the C loop and the torch forms.
"""

from __future__ import annotations

import numpy as np

from adamlab.backends import quantized

TINY = np.float32(np.finfo(np.float32).tiny)


def np_root(r: np.ndarray, code: str) -> np.ndarray:
    _, shift, offset = quantized.ROOTS[code]
    return ((r.astype(np.float32).view(np.uint32) >> np.uint32(shift)) + np.uint32(offset)).view(np.float32)


def np_power(s: np.ndarray, code: str) -> np.ndarray:
    _, shift, offset = quantized.ROOTS[code]
    u = np.maximum(s.astype(np.float32).view(np.uint32), np.uint32(offset)) - np.uint32(offset)
    return (u << np.uint32(shift)).astype(np.uint32).view(np.float32)


def np_encode(code: str, x: np.ndarray, block: int = 256):
    levels = np.float32(quantized.ROOTS[code][0])
    x = x.astype(np.float32)
    codes, scales = np.zeros(x.size, np.uint8), []
    for b in range(0, x.size, block):
        xb = x[b : b + block]
        a = np.abs(xb)
        m = np.max(np.where(np.isfinite(a), a, np.float32(0)))
        m = m if m >= TINY else np.float32(0)
        inv = np.float32(1) / m if m > 0 else np.float32(0)
        with np.errstate(invalid="ignore"):
            c = np.rint(levels * np_root(a * inv, code))
        if code == "q8_signed":
            c = np.where(np.isfinite(a), np.copysign(c, xb), -128).astype(np.int8).view(np.uint8)
        else:
            c = np.where(np.isfinite(a) & ~(xb < 0), c, 255).astype(np.uint8)
        codes[b : b + block], scales = c, scales + [m]
    return codes, np.array(scales, np.float32)


def np_decode(code: str, codes: np.ndarray, scales: np.ndarray, block: int = 256) -> np.ndarray:
    levels = np.float32(1) / np.float32(quantized.ROOTS[code][0])
    signed = code == "q8_signed"
    c = (codes.view(np.int8) if signed else codes).astype(np.float32)
    r = np_power(np.abs(c) * levels, code)
    value = (np.copysign(r, c) if signed else r) * np.repeat(scales, block)[: codes.size]
    return np.where(codes == (0x80 if signed else 0xFF), np.float32(np.nan), value)
