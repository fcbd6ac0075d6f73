"""A small CNN for 8x8 digit images, and its training recipe (claim C5)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .data_digits import Split


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


def train_cnn(make_opt, splits: dict[str, Split], epochs: int, seed: int, batch: int = 64) -> dict:
    """Train from the seed's init with the seed's shuffling; ``make_opt(params)`` builds the optimizer.

    Every optimizer sees the same init and batch order for a given seed.
    """
    torch.manual_seed(seed)
    model = SmallCNN()
    opt = make_opt(model.parameters())
    gen = torch.Generator().manual_seed(seed)
    train = splits["train"]
    for _ in range(epochs):
        for idx in torch.randperm(len(train.y), generator=gen).split(batch):
            opt.zero_grad()
            F.cross_entropy(model(train.x[idx]), train.y[idx]).backward()
            opt.step()
    return {name: accuracy(model, split) for name, split in splits.items()}
