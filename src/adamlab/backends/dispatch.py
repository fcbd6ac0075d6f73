"""Choose a backend per bucket and get it ready before anything is written.

``prepare`` returns a runner (a callable that only writes) or raises; every
refusal and every kernel build or load happens inside it. A kernel that
cannot be built falls back to the reference backend for that configuration,
with one warning per process, unless a fused backend was required.

Fused backends: the generated C loop for CPU tensors (:mod:`.cpu`) and the
generated Triton kernel for CUDA tensors (:mod:`.triton_launch`, when
``triton`` is installed; under ``TRITON_INTERPRET=1`` it also runs on CPU
tensors, which is how it is tested without a GPU).
"""

from __future__ import annotations

from types import SimpleNamespace

import torch

from . import cpu, hostcheck, reference, triton_launch

BACKENDS = ("triton", "c", "reference")


class Bucket:
    """Params that share one config and one set of scalars, as real, local arrays.

    ``flat`` holds ``[p, g, *states]`` of each param end to end (states in
    ``cfg.state_names()`` order); ``slots`` is the same, one list per param.
    ``memo`` is a dict the optimizer keeps for this bucket between steps.

    ``codecs`` names how each of p, g and the states is kept (:mod:`.storage`),
    the same for every slot; then each array contributes its codec's buffers
    to a slot, main buffer first. None: each array is one buffer, kept as its
    dtype says.
    """

    def __init__(self, cfg, scalars, flat: list, width: int, memo: dict | None = None, found_inf=None, codecs=None):
        self.cfg, self.scalars, self.flat, self.width = cfg, scalars, flat, width
        self.memo = {} if memo is None else memo
        self.codecs = codecs
        self._signature = self._pointers = None
        #: AMP's found_inf, read on the device by the kernel (device steps only; else None)
        self.found_inf = found_inf

    @property
    def slots(self) -> list[list]:
        w = self.width
        return [self.flat[k : k + w] for k in range(0, len(self.flat), w)]

    def signature(self):
        """Every array's element count and dtype, as one value that compares equal while they stay the same:
        what the last check and layout were made for."""
        if self._signature is None:
            found = hostcheck.scan(self.flat)
            if found is None:
                self._signature = (self.numels(), [a.dtype for a in self.flat])
            else:
                self._signature, self._pointers = found
        return self._signature

    def pointers(self):
        """Every array's data pointer if all are contiguous tensors on the first one's device, read with the
        signature; None if they are not, or were not read that way (then ask the tensors)."""
        self.signature()
        return self._pointers

    def numels(self) -> list[int]:
        return list(map(torch.Tensor.numel, self.flat))


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
        if requested == "triton":
            reason = triton_launch.unavailable(device)
            if reason:
                raise ValueError(f'backend="triton" cannot run here: {reason}')
        return requested
    if fused is False:
        return "reference"
    if device.type == "cpu":
        return "c"
    if not triton_launch.unavailable(device):
        return "triton"
    if fused:
        raise RuntimeError(
            "`fused=True` requires all the params to be floating point Tensors of supported devices: "
            f"adamlab has no fused backend for {device.type} tensors here ({triton_launch.unavailable(device)})"
        )
    return "reference"


def prepare(bucket: Bucket, backend: str, required: bool, differentiable: bool = False):
    """A callable that applies the update to every slot of the bucket; raises before any write."""
    if backend == "reference":
        return lambda: reference.run(bucket, differentiable)
    run_fused, rest = (triton_launch if backend == "triton" else cpu).prepare(bucket, required)
    if not rest:
        return run_fused
    leftovers = _leftovers(bucket, rest)

    def run() -> None:
        run_fused()
        if bucket.found_inf is not None and bool(bucket.found_inf.sum() != 0):  # the kernel skipped on the device
            return
        for leftover in leftovers:
            reference.run(leftover)

    return run


def _leftovers(bucket: Bucket, rest: list) -> list[Bucket]:
    """Buckets for the reference backend, for slots a fused backend does not take.

    A device step's plan gives some scalars one value per param (a tensor of
    the bucket's length): each leftover slot gets its own element of those.
    """
    scalars, width = vars(bucket.scalars), bucket.width
    per_param = {k for k, v in scalars.items() if torch.is_tensor(v) and v.dim() == 1 and len(v) == len(bucket.slots)}
    if not per_param:
        return [Bucket(bucket.cfg, bucket.scalars, [a for slot in rest for a in slot], width, codecs=bucket.codecs)]
    index = {id(slot[0]): k for k, slot in enumerate(bucket.slots)}
    return [Bucket(bucket.cfg, SimpleNamespace(**{k: v[index[id(slot[0])]] if k in per_param else v
                                                  for k, v in scalars.items()}), list(slot), width,
                   codecs=bucket.codecs)
            for slot in rest]
