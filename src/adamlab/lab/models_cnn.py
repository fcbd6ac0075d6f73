"""A small CNN for 8x8 digit images, and its training recipe (claim C5)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F

import adamlab

from .data_digits import Split, digits_splits


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


@torch.no_grad()
def accuracy(model: nn.Module, split: Split) -> float:
    model.eval()
    acc = (model(split.x).argmax(dim=1) == split.y).double().mean().item()
    model.train()
    return acc


@dataclass(frozen=True)
class CNNRun:
    optimizer: str  # "sgd" (momentum 0.9) or "adam"
    lr: float
    seed: int
    epochs: int = 30
    batch: int = 64


def make_optimizer(run: CNNRun, params):
    if run.optimizer == "sgd":
        return adamlab.SGD(params, lr=run.lr, momentum=0.9)
    if run.optimizer == "adam":
        return adamlab.Adam(params, lr=run.lr)
    raise ValueError(f"unknown optimizer {run.optimizer!r}")


def train_cnn(run: CNNRun) -> dict:
    """Accuracy on train, val and test after training from the seed's init with the seed's shuffling.

    For a given seed every optimizer sees the same init and batch order.
    """
    splits = _splits()
    torch.manual_seed(run.seed)
    model = SmallCNN()
    opt = make_optimizer(run, model.parameters())
    gen = torch.Generator().manual_seed(run.seed)
    train = splits["train"]
    for _ in range(run.epochs):
        for idx in torch.randperm(len(train.y), generator=gen).split(run.batch):
            opt.zero_grad()
            F.cross_entropy(model(train.x[idx]), train.y[idx]).backward()
            opt.step()
    return {name: accuracy(model, split) for name, split in splits.items()}


@lru_cache(maxsize=1)
def _splits() -> dict[str, Split]:
    return digits_splits()
