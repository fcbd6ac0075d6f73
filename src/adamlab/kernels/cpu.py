"""The fused CPU path: one generated C loop per (config, dtype), one parallel region per step.

All tensors of a bucket are cut into fixed-size chunks that one OpenMP loop
shares out, so hundreds of small tensors cost no more than one large one.
Each element is read once and written once: no temporaries.

Kernels are compiled with the system C compiler on first use and cached on
disk (``$ADAMLAB_CACHE_DIR``, default ``~/.cache/adamlab``), keyed by a hash
of the source and the CPU, so later processes only load them. Schedules never
trigger a rebuild: lr, betas and every other number arrive as runtime scalars.
Where no compiler exists, everything runs on the reference path.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import numpy as np
import torch

from .codegen import generate

CHUNK = 1 << 15
DTYPES = {torch.float64: "float64", torch.float32: "float32", torch.float16: "float16", torch.bfloat16: "bfloat16"}
FLAGS = ["-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno", "-ffp-contract=off"]

_kernels: dict = {}
_lock = threading.Lock()
_broken: str | None = None
builds = 0  # compilations in this process (cache misses on disk), for tests and `adamlab bench`


def cache_dir() -> Path:
    return Path(os.environ.get("ADAMLAB_CACHE_DIR", Path.home() / ".cache" / "adamlab")) / "kernels"


def _cpu_tag() -> str:
    """The CPU's feature flags: -march=native code must not run on another CPU."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def load_library(source: str) -> ctypes.CDLL:
    """Compile C source with OpenMP (or reuse the build cached on disk) and load it."""
    global builds
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise RuntimeError("no C compiler found (set CC)")
    digest = hashlib.sha256((source + " ".join(FLAGS) + _cpu_tag() + compiler).encode()).hexdigest()[:20]
    lib = cache_dir() / f"adamlab_{digest}.so"
    if not lib.exists():
        lib.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
            src, out = Path(tmp) / "k.c", Path(tmp) / "k.so"
            src.write_text(source)
            run = subprocess.run([compiler, *FLAGS, str(src), "-o", str(out)], capture_output=True, text=True)
            if run.returncode != 0:
                raise RuntimeError(f"kernel compilation failed:\n{run.stderr[-2000:]}")
            os.replace(out, lib)  # atomic: concurrent processes never load a half-written file
        builds += 1
    return ctypes.CDLL(str(lib))


def _compile(source: str):
    fn = load_library(source).adamlab_step
    fn.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64]
    fn.restype = None
    return fn


def kernel(cfg, scalar_names: tuple[str, ...], param_dtype: str, state_dtype: str):
    """The compiled step for this key, built once per process (and once per machine on disk)."""
    key = (cfg, scalar_names, param_dtype, state_dtype)
    fn = _kernels.get(key)
    if fn is None:
        with _lock:
            fn = _kernels.get(key)
            if fn is None:
                fn = _kernels[key] = _compile(generate(cfg, scalar_names, param_dtype, state_dtype))
    return fn


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


def _fusable(p, g, states) -> torch.Tensor | None:
    """The grad to use if this param can go through the fused loop, else None.

    Memory order must be element order in every array: the param must be dense
    and every state must share its strides. A grad with other strides is
    copied into the param's layout, so the update follows the element.
    """
    if not p.is_cpu or p.dtype not in DTYPES or g.dtype != p.dtype:
        return None
    if p.is_contiguous() and all(s.is_contiguous() for s in states):
        return g if g.is_contiguous() else g.contiguous()
    if not _dense(p) or any(s.stride() != p.stride() for s in states):
        return None
    return g if g.stride() == p.stride() else torch.empty_like(p).copy_(g)


def _local(t: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor (FSDP2), or the tensor itself."""
    return t.to_local() if hasattr(t, "to_local") else t


class Layout:
    """What stays put between steps for one bucket of contiguous params.

    State tensors belong to the optimizer, so their pointers are taken once.
    Params and grads are re-read every step (ZeRO and FSDP may repoint
    ``param.data``), and checked, so a changed param falls back to the
    per-step path instead of being misread.
    """

    def __init__(self, params, states, names):
        self.state_refs = [[st[n] for n in names] for st in states]
        self.dtypes = [p.dtype for p in params]
        self.numels = [_local(p).numel() for p in params]  # a DTensor's own shard
        self.groups: dict = {}
        for i, (p, refs) in enumerate(zip(params, self.state_refs)):
            lp, ls = _local(p), [_local(r) for r in refs]
            if not (lp.is_cpu and lp.dtype in DTYPES and lp.is_contiguous() and all(x.is_contiguous() for x in ls)):
                self.groups = None
                return
            key = (DTYPES[lp.dtype], DTYPES[ls[0].dtype] if ls else DTYPES[lp.dtype])
            self.groups.setdefault(key, []).append((i, [x.data_ptr() for x in ls]))
        for key, members in self.groups.items():
            width = 2 + len(names)
            ptrs = np.zeros(len(members) * width, dtype=np.int64)
            for slot, (_, state_ptrs) in enumerate(members):
                ptrs[slot * width + 2 : (slot + 1) * width] = state_ptrs
            idx = [i for i, _ in members]
            numels = (ctypes.c_int64 * len(idx))(*(self.numels[i] for i in idx))
            self.groups[key] = (idx, numels, ptrs, width)

    def matches(self, states, names) -> bool:
        return all(st[n] is ref for st, refs in zip(states, self.state_refs) for n, ref in zip(names, refs))

    def fill(self, params, grads):
        """Per dtype group: (count, numels, pointer array), or None if a param or grad changed layout."""
        out = {}
        for key, (idx, numels, ptrs, width) in self.groups.items():
            pp, gp = [], []
            for i in idx:
                p, g = params[i], grads[i]
                if not (p.is_cpu and p.dtype is self.dtypes[i] and g.dtype is self.dtypes[i] and p.is_contiguous()
                        and g.is_contiguous() and p.numel() == self.numels[i]):
                    return None
                pp.append(p.data_ptr())
                gp.append(g.data_ptr())
            ptrs[0::width] = pp
            ptrs[1::width] = gp
            out[key] = (len(idx), numels, ptrs.ctypes.data)
        return out


def _cached_groups(cache, params, grads, states, names):
    """The kernels' arguments from the cached layout, or None where the per-step path must run."""
    key = (names, tuple(map(id, params)))
    layout = cache.get(key)
    if layout is None or not layout.matches(states, names):
        if len(cache) > 16:
            cache.clear()
        layout = cache[key] = Layout(params, states, names)
    if layout.groups is None:
        return None
    if hasattr(params[0], "to_local"):
        params, grads = [p.to_local() for p in params], [g.to_local() for g in grads]
    return layout.fill(params, grads)


def _groups_per_step(params, grads, states, names, required):
    """Kernel arguments built afresh, for any layout; and the (p, g, state) the loop cannot take."""
    rest, groups = [], {}
    for p, g, st in zip(params, grads, states):
        lp, lg, ls = _local(p), _local(g), [_local(st[n]) for n in names]
        lg = _fusable(lp, lg, ls)
        if lg is None:
            if required:
                raise RuntimeError("fused=True, but a param is not a dense CPU tensor of a supported dtype")
            rest.append((p, g, st))
            continue
        key = (DTYPES[lp.dtype], DTYPES[ls[0].dtype] if ls else DTYPES[lp.dtype])
        groups.setdefault(key, []).append([lp, lg, *ls])
    args = {}
    for key, tensors in groups.items():
        numels = (ctypes.c_int64 * len(tensors))(*(t[0].numel() for t in tensors))
        ptrs = (ctypes.c_void_p * (len(tensors) * len(tensors[0])))(*(x.data_ptr() for t in tensors for x in t))
        args[key] = (len(tensors), numels, ptrs, tensors)  # tensors: keeps copied grads alive
    return args, rest


def step(cfg, scalars, params, grads, states, required=False, cache=None):
    """Run the fused loop on every param it can take; return the (p, g, state) it could not.

    ``cache`` (a dict the optimizer owns) keeps each bucket's :class:`Layout`.
    """
    if _broken is not None:
        if required:
            raise RuntimeError(f"fused=True, but the fused CPU kernel is unavailable: {_broken}")
        return list(zip(params, grads, states))
    names = cfg.state_names
    args = _cached_groups(cache, params, grads, states, names) if cache is not None else None
    rest = []
    if args is None:
        args, rest = _groups_per_step(params, grads, states, names, required)
    values = vars(scalars)
    scalar_names = tuple(values)
    try:  # build every kernel first, so a failed build never leaves a half-applied step
        fns = {key: kernel(cfg, scalar_names, *key) for key in args}
    except RuntimeError as e:
        _disable(str(e), required)
        return list(zip(params, grads, states))
    sc = (ctypes.c_double * len(values))(*values.values())
    threads = torch.get_num_threads()
    for key, (count, numels, ptrs, *_) in args.items():
        fns[key](count, numels, ptrs, sc, threads, CHUNK)
    return rest


def _disable(reason: str, required: bool) -> None:
    global _broken
    _broken = reason
    if required:
        raise RuntimeError(f"fused=True, but the fused CPU kernel is unavailable: {reason}")
    warnings.warn(f"adamlab: fused CPU kernel unavailable, using the reference path ({reason})", RuntimeWarning)
