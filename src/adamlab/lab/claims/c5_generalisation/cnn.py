"""A small CNN for 8x8 digit images, and its training recipe: shifts, a cosine-decayed lr, tuned decay."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F

import adamlab

from ...framework import digits

KINDS = ("sgd", "adam_l2", "adamw")
NAMES = {"sgd": "SGD, momentum 0.9 (+ L2)", "adam_l2": "Adam + L2", "adamw": "AdamW (decoupled)"}


class SmallCNN(nn.Module):
    """Conv16, Conv32 (3x3, padding 1, ReLU), 2x2 max-pool, FC64, FC10."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@dataclass(frozen=True)
class CNNRun:
    """One training run; for a given seed every optimizer sees the same init, batches and shifts."""

    kind: str  # "sgd" (momentum 0.9, L2), "adam_l2" (Adam, L2) or "adamw" (decoupled, torch's lr * wd)
    lr: float
    wd: float
    seed: int
    epochs: int
    batch: int
    shift: int  # largest random shift in pixels, each axis
    train_size: int
    val_size: int


def make_optimizer(run: CNNRun, params):
    if run.kind == "sgd":
        return adamlab.SGD(params, lr=run.lr, momentum=0.9, weight_decay=run.wd)
    if run.kind == "adam_l2":
        return adamlab.Adam(params, lr=run.lr, weight_decay=run.wd)
    if run.kind == "adamw":
        return adamlab.AdamW(params, lr=run.lr, weight_decay=run.wd)
    raise ValueError(f"unknown optimizer kind {run.kind!r}")


def random_shift(x: torch.Tensor, most: int, gen: torch.Generator) -> torch.Tensor:
    """Each image moved by its own whole-pixel offset in [-most, most] on each axis, zeros shifted in."""
    if most == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (most, most, most, most))
    dy, dx = (torch.randint(0, 2 * most + 1, (n,), generator=gen) for _ in range(2))
    rows = (dy[:, None] + torch.arange(h))[:, :, None]
    cols = (dx[:, None] + torch.arange(w))[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    acc = (model(x).argmax(dim=1) == y).double().mean().item()
    model.train()
    return acc


def train_cnn(run: CNNRun) -> dict:
    """Accuracy on train (unshifted), validation and test after training, and whether the loss stayed finite."""
    splits = _splits(run.train_size, run.val_size)
    x, y = splits["train"]
    torch.manual_seed(run.seed)
    model = SmallCNN()
    opt = make_optimizer(run, model.parameters())
    steps = run.epochs * -(-len(y) // run.batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, adamlab.schedules.cosine_decay(steps))
    gen = torch.Generator().manual_seed(run.seed)
    finite = True
    for _ in range(run.epochs):
        for idx in torch.randperm(len(y), generator=gen).split(run.batch):
            loss = F.cross_entropy(model(random_shift(x[idx], run.shift, gen)), y[idx])
            if not torch.isfinite(loss):
                finite = False
                break
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        if not finite:
            break
    out = {name: evaluate(model, *split) for name, split in splits.items()}
    return {**out, "finite": finite}


@lru_cache(maxsize=2)
def _splits(train_size: int, val_size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Stratified train / validation / test (the rest): the same images for every run and seed."""
    x, y = digits.load(images=True)
    parts = digits.stratified_parts(y, {"train": train_size, "val": val_size, "test": -1})
    return {name: (x[idx], y[idx]) for name, idx in parts.items()}
