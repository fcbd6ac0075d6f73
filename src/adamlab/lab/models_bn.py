"""A small classifier whose first layer is scale-invariant, and its teacher data.

Linear(20, 64, bias=False) -> BatchNorm1d(64, affine=False) -> ReLU -> Linear(64, 4):
BatchNorm removes each hidden unit's scale, so rescaling a row of the first
layer's weight leaves the output unchanged and only the row's direction
matters. Claim C2 measures how fast those directions turn.
"""

from __future__ import annotations

import torch
from torch import nn

INPUTS, HIDDEN, CLASSES, BATCH, LABEL_NOISE = 20, 64, 4, 64, 0.5


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.first = nn.Linear(INPUTS, HIDDEN, bias=False)
        self.norm = nn.BatchNorm1d(HIDDEN, affine=False)
        self.head = nn.Linear(HIDDEN, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.relu(self.norm(self.first(x))))


class Replicas(nn.Module):
    """``copies`` independent copies of one BNNet, run as one batched network on the same inputs.

    One forward and backward serves every copy, so a sweep over optimizers and
    learning rates costs about one run. ``forward`` returns logits of shape
    (copies, batch, classes); BatchNorm is in training mode (batch statistics).
    """

    def __init__(self, base: BNNet, copies: int):
        super().__init__()
        clone = lambda t: nn.Parameter(t.detach().clone())  # noqa: E731
        self.first = nn.ParameterList(clone(base.first.weight) for _ in range(copies))
        self.head_weight = nn.ParameterList(clone(base.head.weight) for _ in range(copies))
        self.head_bias = nn.ParameterList(clone(base.head.bias) for _ in range(copies))
        self.eps = base.norm.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.einsum("bi,rhi->rbh", x, torch.stack(list(self.first)))
        mean, var = h.mean(dim=1, keepdim=True), h.var(dim=1, unbiased=False, keepdim=True)
        h = torch.relu((h - mean) / torch.sqrt(var + self.eps))
        w, b = torch.stack(list(self.head_weight)), torch.stack(list(self.head_bias))
        return torch.einsum("rbh,rch->rbc", h, w) + b[:, None, :]


def teacher_batches(steps: int, seed: int, batch: int = BATCH):
    """Fresh N(0, I) inputs each step, labelled argmax(x W* + 0.5 noise) with one fixed W* per seed."""
    gen = torch.Generator().manual_seed(seed)
    teacher = torch.randn(INPUTS, CLASSES, generator=gen)
    for _ in range(steps):
        x = torch.randn(batch, INPUTS, generator=gen)
        yield x, (x @ teacher + LABEL_NOISE * torch.randn(batch, CLASSES, generator=gen)).argmax(dim=1)


def angle_between_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over rows (last dimension but one) of the angle between a[..., i, :] and b[..., i, :], in radians.

    Written as 2 asin(|u - v| / 2) on unit vectors, which stays accurate for the
    tiny angles of one step, where acos of a dot product near 1 does not.
    """
    u = a.double() / a.double().norm(dim=-1, keepdim=True)
    v = b.double() / b.double().norm(dim=-1, keepdim=True)
    return (2 * torch.asin((u - v).norm(dim=-1).clamp(max=2.0) / 2)).mean(dim=-1)
