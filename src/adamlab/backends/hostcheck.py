"""Every array of a bucket checked and its pointer read in one C++ call, not four Python calls each.

Before each launch the dispatcher must know that every array still has the
element count and dtype its kernels were built for, and where it lives now.
Asked in Python (``numel()``, ``dtype``, ``is_contiguous()``,
``data_ptr()``), that is about 0.35 us per array, 3 ms a step for 2000
params with two moments. :func:`scan` asks the same questions of the
tensors' C++ objects through torch's own headers, in under 20 ns an array.

The helper is compiled once per machine into the kernel cache (about 15 s
with g++), in a background thread, and only once some bucket is large
enough to gain from it (:data:`MIN_ARRAYS`); a run never waits for it.
Until it is ready, or where it cannot be built (no C++ compiler, no
Python headers), the Python questions are asked instead, with the same
answers; a build failure is kept in :data:`failure`, never raised.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sysconfig
import threading

import numpy as np
import torch

from . import build

MIN_ARRAYS = 512  # a bucket below this costs under 0.2 ms to check in Python: no build started for it
enabled = True  # False: always the Python questions (tests compare both ways)
failure: str | None = None  # why the helper could not be built, if it could not

SOURCE = r"""
#include <Python.h>
#include <torch/csrc/autograd/python_variable.h>
#include <cstdint>

/* For each object of the list: its element count, its dtype (ScalarType code) and its data pointer.
   Returns 1 if every one is a contiguous, strided tensor with storage on the first one's device (the
   pointers are then valid), 0 if not (counts and dtypes are still filled), -1 if an object is not a
   tensor or cannot be read. */
extern "C" int64_t adamlab_scan(PyObject* list, int64_t* numels, int8_t* dtypes, int64_t* ptrs) {
    if (!PyList_Check(list)) return -1;
    const Py_ssize_t n = PyList_GET_SIZE(list);
    int64_t plain = 1;
    try {
        c10::Device device(c10::kCPU);
        for (Py_ssize_t k = 0; k < n; k++) {
            PyObject* o = PyList_GET_ITEM(list, k);
            if (!THPVariable_Check(o)) return -1;
            const at::Tensor& t = THPVariable_Unpack(o);
            numels[k] = t.numel();
            dtypes[k] = static_cast<int8_t>(t.scalar_type());
            if (k == 0) device = t.device();
            if (plain && t.layout() == at::kStrided && t.has_storage() && t.device() == device && t.is_contiguous()) {
                ptrs[k] = reinterpret_cast<int64_t>(t.data_ptr());
            } else {
                plain = 0;
            }
        }
    } catch (...) {  /* a C++ exception must not cross into ctypes */
        return -1;
    }
    return plain;
}
"""

_lock = threading.Lock()
_scan = None  # the loaded function, once ready
_looked = False  # whether the disk cache was looked in
_started = False  # whether a build was started


def _flags() -> tuple[str, ...]:
    root = os.path.dirname(torch.__file__)
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    return ("-O2", "-std=c++17", "-fPIC", "-shared", "-w", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
            f"-I{root}/include", f"-I{sysconfig.get_paths()['include']}", f"-L{root}/lib",
            f"-Wl,-rpath,{root}/lib", "-Wl,--no-as-needed", "-ltorch_python", "-ltorch_cpu", "-lc10",
            f"-DADAMLAB_TORCH={torch.__version__}")  # the key of the cached build names torch's version


def _load(cached_only: bool) -> None:
    global _scan, failure
    try:
        fn = build.load_library(SOURCE, _flags(), cxx=True, loader=ctypes.PyDLL, counted=False,
                                cached_only=cached_only).adamlab_scan
    except build.BuildError as e:
        if not cached_only:
            failure = str(e)
        return
    fn.argtypes = [ctypes.py_object, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    fn.restype = ctypes.c_int64
    _scan = fn


def _start(arrays: int) -> None:
    """Load the helper from the cache, else (for a bucket worth it) build it in the background."""
    global _looked, _started
    with _lock:
        if _scan is None and not _looked:
            _looked = True
            _load(cached_only=True)
        if _scan is None and not _started and arrays >= MIN_ARRAYS:
            _started = True
            threading.Thread(target=_load, args=(False,), name="adamlab-hostcheck-build", daemon=True).start()


def cached() -> bool:
    """Whether the helper is ready without building it (loaded now from the disk cache if it is there)."""
    _start(0)
    return _scan is not None


def wait() -> bool:
    """Build (or load) the helper now, in this thread; whether it is ready (else see :data:`failure`)."""
    with _lock:
        if _scan is None:
            _load(cached_only=False)
    return _scan is not None


@contextlib.contextmanager
def using(helper: bool):
    """Within the block, check with the helper (True) or always in Python (False); then as before."""
    global enabled
    before, enabled = enabled, helper
    try:
        yield
    finally:
        enabled = before


def _after_fork_in_child() -> None:
    global _started
    _started = False  # a build thread of the parent does not exist here: let the child start its own


os.register_at_fork(after_in_child=_after_fork_in_child)


def scan(arrays: list) -> tuple[bytes, np.ndarray | None] | None:
    """(what the arrays are: their counts and dtypes as bytes, their pointers if all are contiguous tensors
    on the first one's device, else None), or None where the helper is not ready (ask in Python then)."""
    if not enabled:
        return None
    if _scan is None:
        _start(len(arrays))
        if _scan is None:
            return None
    n = len(arrays)
    numels, dtypes, ptrs = np.empty(n, np.int64), np.empty(n, np.int8), np.empty(n, np.int64)
    plain = _scan(arrays, numels.ctypes.data, dtypes.ctypes.data, ptrs.ctypes.data)
    if plain < 0:
        return None
    return numels.tobytes() + dtypes.tobytes(), (ptrs if plain else None)
