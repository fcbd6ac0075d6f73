"""The dynamic (tree) quantization map of Dettmers et al. (2022), for comparison with adamlab's root codes.

Written from the paper's description: a sign (signed map only), then
decades 10^-6 .. 10^0, the i-th of which (from the smallest) holds 2^i
linearly spaced levels (2^(i+1) in the unsigned map, which needs no sign
bit): the midpoints of linspace(0.1, 1, levels + 1) times the decade, plus 0
and 1 - 256 values either way. Values are normalised by the block's absmax
and rounded to the nearest level.
"""

from __future__ import annotations

import torch

BLOCK = 256


def levels(signed: bool) -> torch.Tensor:
    values = [0.0, 1.0]
    for i in range(7):
        n = 2**i if signed else 2 ** (i + 1)
        edges = torch.linspace(0.1, 1.0, n + 1, dtype=torch.float64)
        mids = ((edges[:-1] + edges[1:]) / 2 * 10.0 ** (i - 6)).tolist()
        values += mids + ([-x for x in mids] if signed else [])
    return torch.tensor(sorted(values), dtype=torch.float64)


def quantize(x: torch.Tensor, signed: bool) -> torch.Tensor:
    """x after a round trip through the map, block by block (blocks of 256 in flat order)."""
    table = levels(signed)
    flat = x.reshape(-1).double()
    pad = -flat.numel() % BLOCK
    blocks = torch.nn.functional.pad(flat, (0, pad)).view(-1, BLOCK)
    absmax = blocks.abs().amax(1, keepdim=True)
    r = torch.where(absmax > 0, blocks / absmax, 0.0)
    index = torch.bucketize(r, (table[1:] + table[:-1]) / 2)
    return (table[index] * absmax).reshape(-1)[: flat.numel()].view(x.shape).to(x.dtype)
