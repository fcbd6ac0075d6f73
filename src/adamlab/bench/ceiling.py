"""The memory ceiling: what the step's own loads and stores cost with no arithmetic, on the same tensors.

Two measurements, both OpenMP C loops compiled like the step's own kernel:

* ``Traffic``: for every tensor of the case, read p, g and each state array
  and write p and the states back, chunked and shared out across threads the
  way the step is. It moves exactly the bytes the step moves, from the same
  addresses, so a step cannot beat it except by measurement noise; it is timed
  in the same loop as the contenders.
* ``stream_bandwidth``: STREAM's triad and an Adam-shaped copy over arrays far
  larger than the last-level cache, for the machine's headline GB/s.
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from adamlab.backends.build import load_library  # the one import of the kernel builder

from .timing import median_seconds

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline float from_bf16(uint16_t h) { uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f; }
static inline uint16_t to_bf16(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)(u >> 16); }

/* chunk c of the case: tensor owner[c], elements [first[c], first[c] + chunk) */
static int64_t chunks(int64_t n_tensors, const int64_t* numels, int64_t chunk, int64_t** owner, int64_t** first) {
    int64_t n = 0;
    for (int64_t i = 0; i < n_tensors; i++) n += (numels[i] + chunk - 1) / chunk;
    *owner = (int64_t*)malloc(sizeof(int64_t) * (n + 1));
    *first = (int64_t*)malloc(sizeof(int64_t) * (n + 1));
    int64_t c = 0;
    for (int64_t i = 0; i < n_tensors; i++)
        for (int64_t s = 0; s < numels[i]; s += chunk, c++) { (*owner)[c] = i; (*first)[c] = s; }
    return n;
}

/* elements [lo, hi) of one tensor: p and g as fp32 or bf16, then 2 or 3 fp32 states; each read, then written back
   plus "zero" times g (0 at run time, so the values stay as they are) */
static void chunk_f32(char** t, int n_states, int64_t lo, int64_t hi, float zero) {
    float* p = (float*)t[0];
    const float* g = (const float*)t[1];
    float *s0 = (float*)t[2], *s1 = (float*)t[3], *s2 = n_states > 2 ? (float*)t[4] : 0;
    if (s2)
        for (int64_t j = lo; j < hi; j++) {
            const float d = zero * g[j]; p[j] += d; s0[j] += d; s1[j] += d; s2[j] += d;
        }
    else
        for (int64_t j = lo; j < hi; j++) { const float d = zero * g[j]; p[j] += d; s0[j] += d; s1[j] += d; }
}

static void chunk_bf16(char** t, int64_t lo, int64_t hi, float zero) {
    uint16_t* p = (uint16_t*)t[0];
    const uint16_t* g = (const uint16_t*)t[1];
    float *s0 = (float*)t[2], *s1 = (float*)t[3];
    for (int64_t j = lo; j < hi; j++) {
        const float d = zero * from_bf16(g[j]);
        p[j] = to_bf16(from_bf16(p[j]) + d); s0[j] += d; s1[j] += d;
    }
}

/* ptrs: per tensor p, g, then n_states fp32 arrays; chunks shared out as the step's kernel shares them */
void traffic(int64_t n_tensors, const int64_t* numels, char** ptrs, int n_states, int bf16, float zero,
             int n_threads, int64_t chunk) {
    int64_t *owner, *first;
    const int64_t n = chunks(n_tensors, numels, chunk, &owner, &first);
    const int width = 2 + n_states;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
    for (int64_t c = 0; c < n; c++) {
        const int64_t i = owner[c], lo = first[c], hi = lo + chunk < numels[i] ? lo + chunk : numels[i];
        if (bf16) chunk_bf16(ptrs + i * width, lo, hi, zero);
        else chunk_f32(ptrs + i * width, n_states, lo, hi, zero);
    }
    free(owner); free(first);
}

/* STREAM's triad: 2 reads, 1 write per element */
void triad(float* restrict a, const float* restrict b, const float* restrict c, float s, int64_t n, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}

/* Adam's traffic over single arrays: read p, g, m, v; write p, m, v */
void adam_traffic(float* restrict p, const float* restrict g, float* restrict m, float* restrict v, float s,
                  int64_t n, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; i++) { p[i] += s * g[i]; m[i] += s * g[i]; v[i] += s * g[i]; }
}
"""

CHUNK = 1 << 15  # elements per work item, as the step's kernel uses
_lib = None


def library() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        _lib = load_library(SOURCE)
        _lib.traffic.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_float, ctypes.c_int, ctypes.c_int64]
        _lib.traffic.restype = None
        _lib.triad.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_float, ctypes.c_int64, ctypes.c_int]
        _lib.adam_traffic.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_float, ctypes.c_int64, ctypes.c_int]
    return _lib


class Traffic:
    """Callable like an optimizer's ``step``: the step's loads and stores over ``params``, no arithmetic.

    ``states`` fp32 arrays per param (2 for Adam, 3 with AMSGrad's max), kept
    here; the params are written back unchanged.
    """

    def __init__(self, params: list[torch.Tensor], states: int):
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.bfloat16}:
            raise ValueError("Traffic takes params that are all float32 or all bfloat16")
        if torch.bfloat16 in dtypes and states != 2:
            raise ValueError("bf16 params take 2 state arrays")
        self.params, self.n_states, self.bf16 = params, states, torch.bfloat16 in dtypes
        self.states = [[torch.zeros(p.shape, dtype=torch.float32) for _ in range(states)] for p in params]
        self.numels = (ctypes.c_int64 * len(params))(*(p.numel() for p in params))

    def step(self, zero: float = 0.0) -> None:
        """One pass; ``zero`` is what the kernel adds times g (0 leaves every value as it was)."""
        ptrs = np.array([t.data_ptr() for p, st in zip(self.params, self.states) for t in (p, p.grad, *st)],
                        dtype=np.int64)
        library().traffic(len(self.params), self.numels, ptrs.ctypes.data, self.n_states, int(self.bf16), zero,
                          torch.get_num_threads(), CHUNK)


def last_level_cache_bytes() -> int:
    for index in (3, 2):
        try:
            with open(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size") as f:
                text = f.read().strip()
            return int(text[:-1]) * {"K": 2**10, "M": 2**20}[text[-1]]
        except (OSError, ValueError, KeyError):
            continue
    return 32 * 2**20


def _median_seconds(fn, args, repeats) -> float:
    fn(*args)  # first touch of every page
    return median_seconds(lambda: fn(*args), repeats)


def stream_bandwidth(repeats: int = 10) -> dict:
    """Bytes/s of the triad (16 B/element: its 12 plus the write-allocate read of a) and of Adam's 28 B/element,
    over fp32 arrays >= 4x the last-level cache."""
    n = max(4 * last_level_cache_bytes() // 4, 16 * 2**20)
    lib, threads = library(), torch.get_num_threads()
    a, b, c, d = torch.rand(n), torch.rand(n), torch.rand(n), torch.rand(n)
    triad = _median_seconds(lib.triad, (a.data_ptr(), b.data_ptr(), c.data_ptr(), 0.5, n, threads), repeats)
    adam = _median_seconds(lib.adam_traffic, (a.data_ptr(), b.data_ptr(), c.data_ptr(), d.data_ptr(), 0.0, n,
                                              threads), repeats)
    return {"triad": 16 * n / triad, "adam_traffic": 28 * n / adam}
