"""Do all gradients hold only finite numbers? One read-only pass, for skip_nonfinite.

On CPU a small OpenMP loop tests the exponent bits of every element (integer
work, so it vectorises and stops on nothing); elsewhere, or when no kernel
can be built, torch ops answer. Either way the answer is one bool for the
whole step, computed before anything is written.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np
import torch

from . import build, cpu
from .c import C_CHUNKS

CHUNK = 1 << 16

# (C element type, exponent mask): an element is inf or NaN exactly when all its exponent bits are set
MASKS = {
    torch.float64: ("uint64_t", "0x7ff0000000000000ull"),
    torch.float32: ("uint32_t", "0x7f800000u"),
    torch.bfloat16: ("uint16_t", "0x7f80u"),
    torch.float16: ("uint16_t", "0x7c00u"),
}

SOURCE = r"""
#include <stdint.h>
#include <stdlib.h>
{chunks}
{functions}
"""

FUNCTION = r"""
static int64_t nonfinite_in_{name}(const {ctype}* x, int64_t lo, int64_t hi) {{
    {ctype} least = ({ctype}){mask};  /* 0 once an element has every exponent bit set */
    for (int64_t j = lo; j < hi; j++) {{
        const {ctype} gap = (x[j] & {mask}) ^ {mask};
        least = gap < least ? gap : least;
    }}
    return least == 0;
}}

int64_t nonfinite_{name}(int64_t n_tensors, const int64_t* numels, const {ctype}** ptrs, int n_threads,
                         int64_t chunk) {{
    int64_t *owner, *first, found = 0;
    const int64_t n_chunks = chunk_table(n_tensors, numels, chunk, &owner, &first);
    if (n_threads > 1) {{  /* one thread (a forked child) must not enter OpenMP at all */
        #pragma omp parallel for schedule(static) reduction(|:found) num_threads(n_threads)
        for (int64_t c = 0; c < n_chunks; c++) {{
            const int64_t i = owner[c], hi = first[c] + chunk < numels[i] ? first[c] + chunk : numels[i];
            found |= nonfinite_in_{name}(ptrs[i], first[c], hi);
        }}
    }} else {{
        for (int64_t c = 0; c < n_chunks && !found; c++) {{
            const int64_t i = owner[c], hi = first[c] + chunk < numels[i] ? first[c] + chunk : numels[i];
            found |= nonfinite_in_{name}(ptrs[i], first[c], hi);
        }}
    }}
    free(owner); free(first);
    return found;
}}
"""

_lock = threading.Lock()
_functions: dict | None = None
_unavailable = False


def _load() -> dict | None:
    global _functions, _unavailable
    with _lock:
        if _functions is None and not _unavailable:
            body = "\n".join(FUNCTION.format(name=str(d).split(".")[1], ctype=c, mask=m) for d, (c, m) in MASKS.items())
            try:
                lib = build.load_library(SOURCE.format(chunks=C_CHUNKS, functions=body))
            except build.BuildError as e:
                build.warn_once(e)
                _unavailable = True
                return None
            _functions = {}
            for dtype in MASKS:
                fn = getattr(lib, f"nonfinite_{str(dtype).split('.')[1]}")
                fn.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64]
                fn.restype = ctypes.c_int64
                _functions[dtype] = fn
    return _functions


def all_finite(grads: list[torch.Tensor]) -> bool:
    """True when every element of every gradient is finite (sparse gradients: their values)."""
    grads = [g.coalesce()._values() if g.is_sparse else g for g in grads]
    grads = [g.to_local() if hasattr(g, "to_local") else g for g in grads]
    grads = [torch.view_as_real(g) if g.is_complex() else g for g in grads]
    fast = [g for g in grads if g.is_cpu and g.dtype in MASKS and g.is_contiguous()]
    if len(fast) != len(grads) or (functions := _load()) is None:
        return all(bool(torch.isfinite(g).all()) for g in grads)
    by_dtype: dict = {}
    for g in fast:
        by_dtype.setdefault(g.dtype, []).append(g)
    for dtype, group in by_dtype.items():
        numels = np.array([g.numel() for g in group], dtype=np.int64)
        ptrs = np.array([g.data_ptr() for g in group], dtype=np.int64)
        if functions[dtype](len(group), numels.ctypes.data, ptrs.ctypes.data, cpu.threads(), CHUNK):
            return False
    return True
