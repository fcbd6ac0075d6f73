"""The GPU backend: a traced program printed as Triton (:mod:`.triton_print`), one launch per bucket.

As in :mod:`.cpu`, ``prepare`` does everything that can fail or refuse
(kernel source written and imported, compiled ahead of the first write on a
GPU, layout and aliasing checks) and returns a runner that only launches.

Per bucket and dtype group the device holds a work list of (tensor, chunk
start) items and the element counts, built once per layout, and the int64
pointer table, which is read afresh from the tensors at every step and
uploaded (one asynchronous copy from pinned memory) only when a pointer
changed, as after ``zero_grad(set_to_none=True)``. The host never waits for
the device. Scalars come as one fp64 row for the bucket (a host plan) or one
row per tensor (a device step, whose counters live on the device); AMP's
``found_inf`` is read by the kernel itself, which then reads and writes
nothing.

Under ``TRITON_INTERPRET=1`` the same kernels run on CPU tensors in Triton's
interpreter: that is how they are tested without a GPU.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import tempfile

import numpy as np
import torch

from . import build, triton_print
from .cpu import _kernel_or_none, _overlap, _written, dense_slot
from .storage import CODECS, DTYPE_CODEC
from .trace import trace

# Work item and block sizes, on a GPU and in the interpreter (which runs programs one by one in numpy,
# so tests there use small chunks to cross chunk and block boundaries with small tensors).
GPU = {"chunk": 1 << 16, "block": 2048, "num_warps": 8}
INTERPRETER = {"chunk": 1 << 11, "block": 1 << 9, "num_warps": 4}

_cache = build.Cache()
_kernels = _cache.made
compiled: dict = {}  # (kernel, variant, device) -> the binary compiled ahead on a GPU
_compile_errors: dict = {}
_triton = None
_import_error: Exception | None = None


def _module():
    """The ``triton`` package, imported on first use (the library imports without it)."""
    global _triton, _import_error
    if _triton is None and _import_error is None:
        try:
            import triton
            import triton.language  # noqa: F401

            _triton = triton
        except Exception as e:  # ImportError, or a broken install
            _import_error = e
    return _triton


def interpreted() -> bool:
    """Whether Triton runs kernels in its interpreter (TRITON_INTERPRET=1, read when triton was imported)."""
    triton = _module()
    return bool(triton is not None and triton.knobs.runtime.interpret)


def unavailable(device: torch.device) -> str | None:
    """Why the Triton backend cannot run on ``device``; None when it can."""
    if _module() is None:
        return f"triton is not importable ({_import_error}); install it with pip install 'adamlab[gpu]'"
    if device.type == "cpu":
        return None if interpreted() else "CPU tensors need Triton's interpreter (TRITON_INTERPRET=1, for tests)"
    if interpreted():
        return f"TRITON_INTERPRET=1 runs kernels on the host, but the params are on {device}"
    if device.type != "cuda":
        return f"Triton kernels run on CUDA tensors, but the params are on {device}"
    return None


def settings() -> dict:
    return INTERPRETER if interpreted() else GPU


# ------------------------------------------------------------------ kernels


def kernel(cfg, scalar_names: tuple[str, ...], codecs: tuple[tuple[str, str], ...]):
    """The ``@triton.jit`` step for this key: its printed source, written to the cache and imported once."""

    def make():
        try:
            return _import(triton_print.source(trace(cfg, scalar_names), dict(codecs)))
        except Exception as e:  # a source that does not import is a broken configuration, not a crash
            raise build.BuildError(f"Triton kernel for {cfg}: {type(e).__name__}: {e}") from None

    return _cache.get((cfg, scalar_names, codecs), make)


def _import(source: str):
    """``adamlab_step`` of ``source``, from a real file (Triton reads a kernel's source with inspect)."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:24]
    name = f"adamlab_triton_{digest}"
    path = build.cache_dir() / f"{name}.py"
    if not path.is_file() or path.read_text() != source:
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".tmp", delete=False) as f:
            f.write(source)
        os.replace(f.name, path)  # atomic: concurrent processes never import a half-written file
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.adamlab_step


# ------------------------------------------------------------------ tables


_graph_inputs: list = []  # pinned sources of copies captured in CUDA graphs, which re-read them at every replay


def _upload(array: np.ndarray, out: torch.Tensor | None, device: torch.device) -> torch.Tensor:
    """``array`` on ``device``, into ``out`` when given; asynchronous from pinned memory on a GPU."""
    host = torch.from_numpy(array)
    if device.type == "cpu":
        return host.clone() if out is None else out.copy_(host)
    host = host.pin_memory()  # torch's pinned pool keeps the block until the copy has run
    if torch.cuda.is_current_stream_capturing():
        _graph_inputs.append(host)  # kept for good: a replay copies from it again
    if out is None:
        out = torch.empty(host.shape, dtype=host.dtype, device=device)
    return out.copy_(host, non_blocking=True)


def work_list(numels: list[int], chunk: int) -> np.ndarray:
    """(tensor, first element) of every chunk, tensor by tensor; empty tensors have none."""
    items = [(i, s) for i, n in enumerate(numels) for s in range(0, n, chunk)]
    return np.array(items, dtype=np.int64).reshape(-1, 2)


class Launch:
    """One kernel over some slots of a bucket: its function and its device tables."""

    def __init__(self, fn, members: np.ndarray, numels: list[int], device: torch.device, keep=None):
        self.fn, self.members, self.device = fn, members, device
        self.work = _upload(work_list(numels, settings()["chunk"]), None, device)
        self.numels = _upload(np.array(numels, dtype=np.int64), None, device)
        self.ptrs: torch.Tensor | None = None
        self.aligned = False
        self.keep = keep  # copied grads must live until the launch
        self.index: torch.Tensor | None = None  # members on the device, to gather per-tensor scalar rows

    def point(self, table: np.ndarray) -> None:
        """Take (and upload) this launch's rows of the (tensors x arrays) pointer table."""
        rows = np.ascontiguousarray(table[self.members])
        self.aligned = bool(np.all(rows % 16 == 0))
        self.ptrs = _upload(rows, self.ptrs if self.ptrs is not None and self.ptrs.shape == rows.shape else None,
                            self.device)

    def args(self, sc: torch.Tensor, stride: int, skip: torch.Tensor):
        s = settings()
        return ((self.work, self.numels, self.ptrs, sc, stride, skip),
                dict(BLOCK=s["block"], CHUNK=s["chunk"], ALIGNED=self.aligned, num_warps=s["num_warps"],
                     enable_fp_fusion=False))

    def __call__(self, sc, stride, skip) -> None:
        if len(self.work):
            args, kw = self.args(sc, stride, skip)
            with _on(self.device):
                self.fn[(len(self.work),)](*args, **kw)

    def compile(self, sc, stride, skip) -> None:
        """Build the GPU binary now, so that a compiler error refuses the step before anything is written."""
        s = settings()
        key = (id(self.fn), self.aligned, stride == 0, self.device, s["block"], s["chunk"], s["num_warps"])
        if key in _compile_errors:
            raise _compile_errors[key]  # a kernel that did not compile is not compiled again every step
        if key not in compiled and not interpreted():
            args, kw = self.args(sc, stride, skip)
            try:
                with _on(self.device):
                    compiled[key] = self.fn.warmup(*args, grid=(1,), **kw)  # .asm holds the PTX gpu_check reads
            except Exception as e:
                _compile_errors[key] = e
                raise


def _on(device: torch.device):
    """Triton launches on the current CUDA device: make it the tensors' one."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _launches(bucket, slots, required: bool, keep=None):
    """Group slots by dtypes into launches; (launches, positions in ``slots`` left over)."""
    groups: dict = {}
    for k, slot in enumerate(slots):
        groups.setdefault(tuple(DTYPE_CODEC.get(a.dtype) for a in slot), []).append(k)
    device = slots[0][0].device
    launches, rest = [], []
    for key, members in groups.items():
        fn = _kernel_or_none(bucket, key, required, kernel, "the Triton kernel")
        if fn is None:
            rest.extend(members)
        else:
            launches.append(Launch(fn, np.array(members, dtype=np.int64),
                                   [slots[k][0].numel() for k in members], device, keep))
    return launches, rest


def _table(flat, width: int) -> np.ndarray:
    return np.fromiter(map(torch.Tensor.data_ptr, flat), dtype=np.int64, count=len(flat)).reshape(-1, width)


def _contiguous_layout(bucket, required: bool):
    """Launches for a bucket of contiguous arrays on one device, reused while the layout holds."""
    flat, w, memo = bucket.flat, bucket.width, bucket.memo
    device = flat[0].device
    table = bucket.pointers()  # read with the signature, in one C++ call: all contiguous, all on `device`
    same_device = table is not None
    if table is None:
        if not all(map(torch.Tensor.is_contiguous, flat)):
            return None
        table = _table(flat, w)
    else:
        table = table.reshape(-1, w)
    cached = memo.get("triton")
    layout = (bucket.signature(), tuple(vars(bucket.scalars)), device)
    if cached is None or cached[0] != layout:
        if not same_device and any(a.device != device for a in flat):
            return None
        cached = memo["triton"] = [layout, _launches(bucket, bucket.slots, required), None]
    elif not same_device and not np.array_equal(cached[2], table):
        moved = np.flatnonzero(table.ravel() != cached[2].ravel()).tolist()
        if any(flat[k].device != device for k in moved):
            return None
    launches, rest = cached[1]
    if cached[2] is None or not np.array_equal(cached[2], table):
        written = _written(bucket.cfg)
        if _overlap(flat, {k for k in range(len(flat)) if k % w in written}):
            memo.pop("triton")
            return None  # aliasing params: the strided path sends them to the reference backend
        for launch in launches:
            launch.point(table)
        cached[2] = table
    return launches, rest


def _strided_layout(bucket, required: bool):
    """Launches built afresh for any layout the kernel can take (odd-strided grads copied)."""
    slots = bucket.slots
    device = slots[0][0].device
    taken, positions, rest = [], [], []
    for k, slot in enumerate(slots):
        fused = dense_slot(slot) if all(a.device == device for a in slot) and slot[0].dtype in DTYPE_CODEC else None
        if fused is None:
            if required:
                raise RuntimeError("fused=True, but a param is not a dense tensor of a supported dtype on one device")
            rest.append(k)
        else:
            taken.append(fused)
            positions.append(k)
    if not taken:
        return [], rest
    flat = [a for s in taken for a in s]
    w = bucket.width
    if _overlap(flat, {i for i in range(len(flat)) if i % w in set(_written(bucket.cfg))}):
        if required:
            raise RuntimeError("fused=True, but params share memory: the fused kernel assumes they do not")
        return [], list(range(len(slots)))
    launches, left = _launches(bucket, taken, required, keep=taken)
    table = _table(flat, w)
    for launch in launches:
        launch.point(table)
    return launches, sorted(rest + [positions[k] for k in left])


# ------------------------------------------------------------------ scalars


_zeros: dict = {}


def _no_skip(device) -> torch.Tensor:
    if device not in _zeros:
        _zeros[device] = torch.zeros(1, dtype=torch.float32, device=device)
    return _zeros[device]


def scalar_table(bucket, device) -> tuple[torch.Tensor, int]:
    """(the fp64 scalar table, its row stride): one row for all tensors, or one per tensor.

    Python floats are uploaded only when they change; tensors (a device
    step's per-param values, a Tensor lr) are gathered on the device, so a
    device step never waits for it and can be captured in a CUDA graph.
    """
    scalars = vars(bucket.scalars)
    names = tuple(scalars)
    floats = np.array([0.0 if torch.is_tensor(v) else float(v) for v in scalars.values()], dtype=np.float64)
    cached = bucket.memo.get("triton-scalars")
    if cached is None or cached[0] != names or not np.array_equal(cached[1], floats) or cached[2].device != device:
        cached = bucket.memo["triton-scalars"] = (names, floats, _upload(floats, None, device))
    row = cached[2]
    tensors = {k: v for k, v in scalars.items() if torch.is_tensor(v)}
    if not tensors:
        return row, 0
    m = len(bucket.slots)
    columns = [tensors[k].to(device=device, dtype=torch.float64).reshape(-1).expand(m) if k in tensors
               else row[j].expand(m) for j, k in enumerate(names)]
    return torch.stack(columns, dim=1).contiguous(), len(names)


def _rows(table: torch.Tensor, stride: int, launch: Launch) -> torch.Tensor:
    """The scalar rows of a launch's members (the whole table when they are all the bucket's slots)."""
    if stride == 0 or len(launch.members) == table.shape[0]:
        return table
    if launch.index is None:
        launch.index = _upload(launch.members, None, table.device)
    return table.index_select(0, launch.index)


def prepare(bucket, required: bool):
    """(a runner for the slots the kernel takes, the slots it does not); raises only if fused was required."""
    slots = bucket.slots
    if bucket.codecs is not None and any(CODECS[c].triton_load is None for c in bucket.codecs):
        if required:  # low-precision state and rounding have no Triton forms yet
            raise RuntimeError(f"fused=True, but the Triton backend has no form of the codecs {bucket.codecs}")
        return (lambda: None), slots
    launches, rest = _contiguous_layout(bucket, required) or _strided_layout(bucket, required)
    if not launches:
        return (lambda: None), slots
    device = slots[0][0].device
    sc, stride = scalar_table(bucket, device)
    skip = _no_skip(device) if bucket.found_inf is None else bucket.found_inf.to(device, torch.float32)
    tables = [_rows(sc, stride, launch) for launch in launches]
    for launch, table in zip(launches, tables):
        try:
            launch.compile(table, stride, skip)
        except Exception as e:
            if required:
                raise RuntimeError(f"fused=True, but the Triton kernel did not compile: {e}") from e
            build.warn_once(build.BuildError(f"Triton kernel did not compile: {e}"))
            return (lambda: None), slots

    def run() -> None:
        for launch, table in zip(launches, tables):
            launch(table, stride, skip)

    return run, [slots[k] for k in rest]
