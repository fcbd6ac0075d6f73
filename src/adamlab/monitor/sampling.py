"""Which coordinates of a param the monitor looks at, and how it reads them.

A param of at most ``sample`` elements is read whole. A larger one is read in
runs of :data:`RUN` consecutive elements (one 64-byte cache line of fp32),
``sample // RUN`` runs starting at random aligned places drawn once, with
replacement, from a generator seeded by the param's place in the optimizer
(so runs repeat), and sorted so that the gather walks memory forwards.
Random places rather than a stride, because a stride can alias with a row
length and read one column only; runs rather than single elements, because
each random element costs a cache miss (8x fewer misses, measured 10x
faster). The positions are cached per param, as int32 where they fit, on
the param's device.
"""

from __future__ import annotations

import torch

from ..optim.slots import real_local

__all__ = ["Sampler", "gather", "real_local"]

RUN = 16


class Sampler:
    def __init__(self, sample: int | None, seed: int = 0):
        self.sample, self.seed = sample, seed
        self._positions: dict = {}  # id(param) -> (numel, device, positions)

    def positions(self, key: tuple[int, int], param: torch.Tensor, local: torch.Tensor) -> torch.Tensor | None:
        """Sorted flat positions into ``local`` (the param's real local view), or None for all of it."""
        n = local.numel()
        if self.sample is None or n <= self.sample:
            return None
        cached = self._positions.get(id(param))
        if cached is not None and cached[0] == n and cached[1] == local.device:
            return cached[2]
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + key[0] * 10_007 + key[1])
        run = min(RUN, self.sample)
        starts = torch.randint(n // run, (self.sample // run,), generator=gen).sort().values * run
        picks = (starts[:, None] + torch.arange(run)).reshape(-1)
        picks = picks.to(torch.int32 if n < 2**31 else torch.int64).to(local.device)
        self._positions[id(param)] = (n, local.device, picks)
        return picks

    def forget(self) -> None:
        self._positions.clear()


def gather(t: torch.Tensor, positions: torch.Tensor | None, copy: bool = False) -> torch.Tensor:
    """t's elements at flat (logical, row-major) positions as a 1-d tensor, all of t for None.

    With ``copy`` the result never shares memory with ``t`` (a copy taken before a step).
    """
    if positions is None:
        flat = t.reshape(-1)
        return flat.clone() if copy else flat
    if t.is_contiguous():
        return t.view(-1).index_select(0, positions)
    return torch.take(t, positions.long())  # any layout: take indexes in logical order
