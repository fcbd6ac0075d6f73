"""The fused CPU backend: a traced program printed as C, compiled once, run over whole buckets.

``prepare`` does everything that can fail or refuse (kernel builds and
loads, layout and aliasing checks, copies of odd-strided grads) and returns
a runner that only launches, so a step is all or nothing. Pointers are read
afresh from the tensors at every step; only the grouping of tensors into
kernels is cached, and it is reused only while every array keeps its
element count, dtype and contiguity.
"""

from __future__ import annotations

import ctypes
import operator
import os

import numpy as np
import torch

from . import build, c
from .storage import CODECS, DTYPE_CODEC
from .trace import trace

CHUNK = 1 << 15
_IS_CPU = operator.attrgetter("is_cpu")
_cache = build.Cache()  # a configuration that failed to build is not rebuilt every step
_kernels = _cache.made
_forked_child = False


def threads() -> int:
    """Threads for a kernel: torch's setting, or 1 in a forked child (its OpenMP pool is gone)."""
    return 1 if _forked_child else torch.get_num_threads()


def _after_fork_in_child() -> None:
    global _forked_child
    _forked_child = True  # libgomp's thread pool does not survive fork: run kernels single-threaded


os.register_at_fork(after_in_child=_after_fork_in_child)


def kernel(cfg, scalar_names: tuple[str, ...], codecs: tuple[tuple[str, str], ...]):
    """The compiled step for this key, built once per process (and once per machine on disk)."""

    def make():
        fn = build.load_library(c.source(trace(cfg, scalar_names), dict(codecs))).adamlab_step
        fn.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int,
                       ctypes.c_int64]
        fn.restype = None
        return fn

    return _cache.get((cfg, scalar_names, codecs), make)


def _dense(t: torch.Tensor) -> bool:
    """Elements tile memory exactly once, in some order (contiguous, channels_last, a transpose)."""
    if t.is_contiguous():
        return True
    expected = 1
    for stride, size in sorted((st, sz) for st, sz in zip(t.stride(), t.shape) if sz != 1):
        if stride != expected:
            return False
        expected *= size
    return True


def _fused_slot(slot: list[torch.Tensor], codecs=None) -> list[torch.Tensor] | None:
    """The slot's arrays as the loop will see them (an odd-strided grad copied), or None if it cannot.

    Memory order must be element order in every array: the param must be dense
    and every state must share its strides. A grad with other strides is
    copied into the param's layout, so the update follows the element. A
    bucket with codecs needs contiguous arrays (their blocks and extra
    buffers follow the flat index); only its grad may be copied.
    """
    if codecs is not None:
        g_at = 1 + len(CODECS[codecs[0]].buffers)
        g = slot[g_at]
        if not all(a.is_cpu and a.is_contiguous() for k, a in enumerate(slot) if k != g_at) or not g.is_cpu:
            return None
        return slot if g.is_contiguous() else [*slot[:g_at], g.contiguous(), *slot[g_at + 1:]]
    p, g, states = slot[0], slot[1], slot[2:]
    if not (p.is_cpu and g.is_cpu and p.dtype in DTYPE_CODEC and all(s.is_cpu for s in states)):
        return None
    return dense_slot(slot)


def dense_slot(slot: list[torch.Tensor]) -> list[torch.Tensor] | None:
    """The slot with memory order equal to element order in every array (a grad copied if needed), or None."""
    p, g, states = slot[0], slot[1], slot[2:]
    if all(a.is_contiguous() for a in slot):
        return slot
    if p.is_contiguous() and all(s.is_contiguous() for s in states):
        return [p, g.contiguous(), *states]
    if not _dense(p) or any(s.stride() != p.stride() for s in states):
        return None
    return [p, g if g.stride() == p.stride() else torch.empty_like(p).copy_(g), *states]


def _overlap(arrays: list[torch.Tensor], written: set[int]) -> bool:
    """Whether two arrays share memory where at least one of them is written (positions in ``written``)."""
    spans = []
    for k, a in enumerate(arrays):
        if a.numel():
            start = a.data_ptr()
            spans.append((start, start + a.numel() * a.element_size(), k in written))
    spans.sort()
    end, end_written = 0, False
    for start, stop, w in spans:
        if start < end and (w or end_written):
            return True
        if stop > end:
            end, end_written = stop, w
        elif w:
            end_written = True
    return False


class Launch:
    """One kernel call: its function, tensor count, element counts and pointer table."""

    def __init__(self, fn, members: np.ndarray, numels: list[int], keep=None):
        self.fn, self.members, self.count = fn, members, len(members)
        self.numels = (ctypes.c_int64 * self.count)(*numels)
        self.ptrs = np.zeros(0, dtype=np.int64)
        self.keep = keep  # copied grads must live until the launch

    def point(self, table: np.ndarray) -> None:
        """Take this launch's rows of the (tensors x arrays) pointer table."""
        self.ptrs = np.ascontiguousarray(table[self.members]).ravel()

    def __call__(self, sc, threads: int) -> None:
        self.fn(self.count, self.numels, self.ptrs.ctypes.data, sc, threads, CHUNK)


def _written(cfg, codecs=None) -> list[int]:
    """Positions in a slot that the kernel writes: p, the states, and g when it unscales (with their buffers)."""
    if codecs is None:
        return [0, *range(2, 2 + len(cfg.state_names()))] + ([1] if cfg.unscale else [])
    written, at = [], 0
    for k, name in enumerate(codecs):
        size = 1 + len(CODECS[name].buffers)
        if k != 1 or cfg.unscale:
            written.extend(range(at, at + size))
        at += size
    return written


def _codec_key(bucket, slot) -> tuple:
    """What selects the kernel for a slot: the bucket's codecs, else each array's dtype."""
    return bucket.codecs if bucket.codecs is not None else tuple(DTYPE_CODEC.get(a.dtype) for a in slot)


def _contiguous_layout(bucket, required: bool):
    """Launches for a bucket whose arrays are all contiguous CPU tensors, reused while they stay so."""
    memo, flat, w = bucket.memo, bucket.flat, bucket.width
    cached = memo.get("cpu")
    table = bucket.pointers()  # read with the signature, in one C++ call (all contiguous, on one device)
    if table is not None:
        if not flat[0].is_cpu:
            return None
        table = table.reshape(-1, w)
    else:
        if not all(map(torch.Tensor.is_contiguous, flat)):
            return None
        table = np.array(list(map(torch.Tensor.data_ptr, flat)), dtype=np.int64).reshape(-1, w)
        # arrays whose pointer is unchanged since they were last found on the CPU are still there
        if cached is None or cached[2] is None or cached[2].shape != table.shape:
            moved = flat
        else:
            moved = [flat[i] for i in np.flatnonzero(table.ravel() != cached[2].ravel()).tolist()]
        if not all(map(_IS_CPU, moved)):
            return None
    built_for = (bucket.cfg, bucket.signature(), tuple(vars(bucket.scalars)))  # what the kernels were chosen for
    if cached is None or cached[0] != built_for:
        cached = memo["cpu"] = (built_for, _launches(bucket, required), None)
    launches, rest = cached[1]
    if cached[2] is None or not np.array_equal(cached[2], table):
        written = _written(bucket.cfg, bucket.codecs)
        if _overlap(flat, {k for k in range(len(flat)) if k % w in written}):
            memo.pop("cpu")
            return None  # aliasing: the per-slot path sends those params to the reference backend
        memo["cpu"] = (cached[0], cached[1], table)
    for launch in launches:
        launch.point(table)
    return launches, rest


def _launches(bucket, required: bool):
    """Group a contiguous bucket's slots by dtypes into kernels; (launches, slot positions left over)."""
    groups: dict = {}
    numels = bucket.numels()[:: bucket.width]
    for k, slot in enumerate(bucket.slots):
        groups.setdefault(_codec_key(bucket, slot), []).append(k)
    launches, rest = [], []
    for key, members in groups.items():
        fn = _kernel_or_none(bucket, key, required)
        if fn is None:
            rest.extend(members)
        else:
            launches.append(Launch(fn, np.array(members, dtype=np.int64), [numels[k] for k in members]))
    return launches, rest


def _kernel_or_none(bucket, key, required: bool, build_kernel=None, what: str = "the fused CPU kernel"):
    """The kernel for a dtype group's codecs ``key`` (``build_kernel``, this module's ``kernel`` by default)."""
    if None in key:  # a state kept in a dtype no codec covers
        return None
    names = ("p", "g") + bucket.cfg.state_names()
    try:
        return (build_kernel or kernel)(bucket.cfg, tuple(vars(bucket.scalars)), tuple(zip(names, key)))
    except build.BuildError as e:
        if required:
            raise RuntimeError(f"fused=True, but {what} is unavailable: {e}") from e
        build.warn_once(e)
        return None  # this configuration only falls back


def _strided_layout(bucket, required: bool):
    """Launches built afresh for any layout the loop can take; the other slots are left over."""
    slots, rest, groups = bucket.slots, [], {}
    fused_slots = []
    for k, slot in enumerate(slots):
        fused = _fused_slot(slot, bucket.codecs)
        if fused is None:
            if required:
                raise RuntimeError(
                    "`fused=True` requires all the params to be floating point Tensors of supported devices: "
                    f"this one is {slot[0].dtype} on {slot[0].device}, or not dense"
                )
            rest.append(k)
            continue
        fused_slots.append(fused)
        groups.setdefault(_codec_key(bucket, fused), []).append(len(fused_slots) - 1)
    written = set(_written(bucket.cfg, bucket.codecs))
    w = bucket.width
    launches = []
    for key, members in groups.items():
        chosen = [fused_slots[m] for m in members]
        flat = [a for s in chosen for a in s]
        if _overlap(flat, {i for i in range(len(flat)) if i % w in written}):
            if required:
                raise RuntimeError("fused=True, but params share memory: the fused loop assumes they do not")
            fn = None  # aliasing params go through the reference backend, in order
        else:
            fn = _kernel_or_none(bucket, key, required)
        if fn is None:
            rest.extend(_positions(slots, chosen))
            continue
        launch = Launch(fn, np.arange(len(chosen), dtype=np.int64), [s[0].numel() for s in chosen], keep=chosen)
        launch.point(np.array([a.data_ptr() for a in flat], dtype=np.int64).reshape(-1, w))
        launches.append(launch)
    return launches, rest


def _positions(slots, chosen) -> list[int]:
    ids = {id(s[0]) for s in chosen}
    return [k for k, s in enumerate(slots) if id(s[0]) in ids]


def prepare(bucket, required: bool):
    """(a runner for the slots the loop takes, the slots it does not); raises only if a fused run is required."""
    layout = _contiguous_layout(bucket, required) or _strided_layout(bucket, required)
    launches, rest = layout
    sc = (ctypes.c_double * len(vars(bucket.scalars)))(*vars(bucket.scalars).values())

    def run() -> None:
        n_threads = threads()
        for launch in launches:
            launch(sc, n_threads)

    slots = bucket.slots if rest else []
    return run, [slots[k] for k in rest]
