"""Choose a backend per bucket and get it ready before anything is written.

``prepare`` returns a runner (a callable that only writes) or raises; every
refusal and every kernel build or load happens inside it. A kernel that
cannot be built falls back to the reference backend for that configuration,
with one warning per process, unless a fused backend was required.
"""

from __future__ import annotations

import torch

from . import cpu, reference

BACKENDS = ("c", "reference")


class Bucket:
    """Params that share one config and one set of scalars, as real, local arrays.

    ``flat`` holds ``[p, g, *states]`` of each param end to end (states in
    ``cfg.state_names()`` order); ``slots`` is the same, one list per param.
    ``memo`` is a dict the optimizer keeps for this bucket between steps.
    """

    def __init__(self, cfg, scalars, flat: list, width: int, memo: dict | None = None):
        self.cfg, self.scalars, self.flat, self.width = cfg, scalars, flat, width
        self.memo = {} if memo is None else memo
        self._signature = None

    @property
    def slots(self) -> list[list]:
        w = self.width
        return [self.flat[k : k + w] for k in range(0, len(self.flat), w)]

    def signature(self) -> tuple[list, list]:
        """Every array's element count and dtype: what the last check and layout were made for."""
        if self._signature is None:
            self._signature = (list(map(torch.Tensor.numel, self.flat)), [a.dtype for a in self.flat])
        return self._signature


def choose(requested: str | None, fused: bool | None, differentiable: bool, device: torch.device) -> str:
    """The backend name for a bucket on ``device``; raises where the request cannot be met."""
    if differentiable:
        if requested not in (None, "reference"):
            raise ValueError(f"differentiable=True runs the reference backend, but backend={requested!r}")
        return "reference"
    if requested is not None:
        if requested not in BACKENDS:
            raise ValueError(f"backend must be one of {(None,) + BACKENDS}, got {requested!r}")
        if requested == "c" and device.type != "cpu":
            raise ValueError(f'backend="c" runs on CPU tensors, but the params are on {device}')
        if fused is False and requested != "reference":
            raise ValueError(f"fused=False asks for the reference backend, but backend={requested!r}")
        return requested
    if fused is False:
        return "reference"
    if device.type == "cpu":
        return "c"
    if fused:
        raise RuntimeError(
            "`fused=True` requires all the params to be floating point Tensors of supported devices: "
            f"adamlab has no fused backend for {device.type} tensors"
        )
    return "reference"


def prepare(bucket: Bucket, backend: str, required: bool, differentiable: bool = False):
    """A callable that applies the update to every slot of the bucket; raises before any write."""
    if backend == "reference":
        return lambda: reference.run(bucket, differentiable)
    run_fused, rest = cpu.prepare(bucket, required)
    if not rest:
        return run_fused
    leftover = Bucket(bucket.cfg, bucket.scalars, [a for slot in rest for a in slot], bucket.width)

    def run() -> None:
        run_fused()
        reference.run(leftover)

    return run
