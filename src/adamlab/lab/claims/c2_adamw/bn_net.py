"""A small classifier whose first layer is scale-invariant, and its teacher data.

Linear(20, 64, bias=False) -> BatchNorm1d(64, affine=False) -> ReLU -> Linear(64, 4):
BatchNorm removes each hidden unit's scale, so rescaling a row of the first
layer's weight leaves the output unchanged and only the row's direction
matters. Claim C2 measures how fast those directions turn (``angular_updates``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import adamlab

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
        clone = lambda t: nn.Parameter(t.detach().clone())
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


def angular_updates(lrs, lam: float, l2: float, steps: int, seed: int) -> dict[str, np.ndarray]:
    """Per step, the mean angle (rad) between consecutive rows of the scale-invariant first layer.

    One copy of the network per (optimizer, lr), all from the same init and on
    the same batches; decay applies to the first layer only: AdamW with the
    paper's fixed ``lam``, or Adam with L2 coefficient ``l2``. Returns
    {"adamw": angles, "adam_l2": angles}, each of shape (len(lrs), steps).
    """
    torch.manual_seed(seed)
    net = Replicas(BNNet(), 2 * len(lrs))
    firsts = list(net.first)
    rests = [[net.head_weight[i], net.head_bias[i]] for i in range(len(firsts))]
    n = len(lrs)
    # AdamW with the paper's fixed lambda: decay 1 - (lr/base_lr)*lambda, which is 1 - lambda at constant lr
    adamw = adamlab.AdamW(
        [{"params": [firsts[i]], "lr": lr, "weight_decay": lam} for i, lr in enumerate(lrs)]
        + [{"params": rests[i], "lr": lr, "weight_decay": 0.0} for i, lr in enumerate(lrs)],
        decay_scale="schedule",
    )
    adam_l2 = adamlab.Adam(
        [{"params": [firsts[n + i]], "lr": lr, "weight_decay": l2} for i, lr in enumerate(lrs)]
        + [{"params": rests[n + i], "lr": lr} for i, lr in enumerate(lrs)]
    )
    angles = []
    for x, y in teacher_batches(steps, seed):
        before = torch.stack(firsts).detach().clone()
        logits = net(x)  # (copies, batch, classes); each copy's loss is its own batch mean
        loss = F.cross_entropy(logits.flatten(0, 1), y.repeat(len(firsts)), reduction="sum") / len(y)
        adamw.zero_grad()
        adam_l2.zero_grad()
        loss.backward()
        adamw.step()
        adam_l2.step()
        angles.append(angle_between_rows(before, torch.stack(firsts).detach()))
    angles = torch.stack(angles).numpy()  # (steps, copies)
    return {"adamw": angles[:, :n].T, "adam_l2": angles[:, n:].T}
