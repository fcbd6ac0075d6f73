"""The constructed least-squares problem of Wilson et al. 2017, section 3.3.

Labels are +1 with probability p > 1/2. Each example i has three shared
features (its own label, then 1, 1) and a block of private features: one 1
for a positive example, five for a negative one. Minimising ||Xw - y||^2 from
w = 0, adaptive methods go to w proportional to sign(X^T y), which predicts +1
for every new point; gradient descent goes to the minimum-norm solution,
which labels new points correctly.
"""

from __future__ import annotations

import numpy as np
import torch

import adamlab

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


# ---------------------------------------------------------------- the experiment


def adagrad():
    """adamlab's Adagrad where the installed adamlab has one, else torch.optim.Adagrad as a labelled comparison."""
    own = getattr(adamlab, "Adagrad", None)
    return (own, "adamlab.Adagrad") if own is not None else (torch.optim.Adagrad, "torch.optim.Adagrad")


def methods(lr_gd: float) -> dict:
    """How each method is built; GD-family lrs are 1/lambda_max of the Hessian 2 X^T X (larger diverges)."""
    adagrad_class, _ = adagrad()
    return {
        "gd": lambda p: adamlab.SGD(p, lr=lr_gd),
        "sgd": lambda p: adamlab.SGD(p, lr=lr_gd),
        "heavy_ball": lambda p: adamlab.SGD(p, lr=lr_gd, momentum=0.9),
        "adam": lambda p: adamlab.Adam(p, lr=1e-2),
        "rmsprop": lambda p: adamlab.RMSprop(p, lr=1e-3),
        "adagrad": lambda p: adagrad_class(p, lr=0.1),
    }


def labels() -> dict[str, str]:
    return {"gd": "GD", "sgd": "SGD (batch 10)", "heavy_ball": "heavy ball (0.9)", "adam": "Adam (1e-2)",
            "rmsprop": "RMSprop (1e-3)", "adagrad": f"AdaGrad (0.1, {adagrad()[1]})"}


def constructed_example(n: int, p: float, n_fresh: int, steps: int, seed: int) -> tuple[dict, dict]:
    """Every method from w = 0 on ||Xw - y||^2: where it ends, how it labels fresh points, its path's direction."""
    gen = torch.Generator().manual_seed(seed)
    X, y = constructed_problem(n, p, gen)
    y_new = fresh_labels(n_fresh, p, gen)
    min_norm = torch.linalg.pinv(X) @ y
    sign_dir = torch.sign(X.T @ y)
    lr_gd = 1.0 / torch.linalg.eigvalsh(2 * X @ X.T).max().item()

    def cos(a, b):
        return (a @ b / (a.norm() * b.norm() + 1e-300)).item()

    record = sorted({int(t) for t in np.geomspace(1, steps, 40).round()})
    metrics, curves = {}, {}
    for name, make in methods(lr_gd).items():
        w = torch.zeros(X.shape[1], dtype=torch.float64)
        opt = make([w])
        order = torch.Generator().manual_seed(seed + 1)
        curves[name] = {"t": [], "cos_sign": []}
        for t in range(1, steps + 1):
            rows = torch.randperm(n, generator=order)[:10] if name == "sgd" else slice(None)
            Xb, yb = X[rows], y[rows]
            w.grad = 2 * Xb.T @ (Xb @ w - yb)  # gradient of ||Xw - y||^2 on the batch
            opt.step()
            if t in record:
                curves[name]["t"].append(t)
                curves[name]["cos_sign"].append(cos(w, sign_dir))
        metrics[name] = {
            "train_error": (torch.where(X @ w > 0, 1.0, -1.0) != y).double().mean().item(),
            "test_error": (predict_fresh(w, y_new) != y_new).double().mean().item(),
            "cos_sign_direction": cos(w, sign_dir),
            "relative_distance_to_min_norm": ((w - min_norm).norm() / min_norm.norm()).item(),
            "max_abs_diff_to_sign_over_4": (w - sign_dir / 4).abs().max().item(),
        }
    shared = {"p": p, "n_train": n, "n_fresh": n_fresh, "steps": steps, "lr_gd": lr_gd,
              "fresh_negative_fraction": (y_new < 0).double().mean().item()}
    return {"constructed": metrics, "constructed_setup": shared}, curves
