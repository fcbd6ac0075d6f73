"""The constructed least-squares problem of Wilson et al. 2017, section 3.3.

Labels are +1 with probability p > 1/2. Each example i has three shared
features (its own label, then 1, 1) and a block of private features: one 1
for a positive example, five for a negative one. Minimising ||Xw - y||^2 from
w = 0, adaptive methods go to w proportional to sign(X^T y), which predicts +1
for every new point; gradient descent goes to the minimum-norm solution,
which labels new points correctly.
"""

from __future__ import annotations

import torch

SHARED = 3  # label, 1, 1
BLOCK = 5  # private columns reserved per example


def private_count(y: torch.Tensor) -> torch.Tensor:
    """1 private feature for a positive example, 5 for a negative one: 1 + 2(1 - y)."""
    return (1 + 2 * (1 - y)).long()


def constructed_problem(n: int, p: float, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """X (n x (3 + 5n)) and y in {-1, +1}^n, redrawn until sum(y) > 0 as the construction assumes."""
    while True:
        y = torch.where(torch.rand(n, generator=gen, dtype=torch.float64) < p, 1.0, -1.0).double()
        if y.sum() > 0:
            break
    X = torch.zeros(n, SHARED + BLOCK * n, dtype=torch.float64)
    X[:, 0], X[:, 1], X[:, 2] = y, 1.0, 1.0
    for i, count in enumerate(private_count(y).tolist()):
        start = SHARED + BLOCK * i
        X[i, start : start + count] = 1.0
    return X, y


def fresh_labels(count: int, p: float, gen: torch.Generator) -> torch.Tensor:
    return torch.where(torch.rand(count, generator=gen, dtype=torch.float64) < p, 1.0, -1.0).double()


def predict_fresh(w: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Predicted labels of new points with labels ``y``.

    A new point's private features sit in columns no training example uses;
    their gradient is always zero, so every method started at 0 keeps those
    weights at 0, and only the shared features count: y*w1 + w2 + w3.
    """
    score = y * w[0] + w[1] + w[2]
    return torch.where(score > 0, 1.0, -1.0).double()
