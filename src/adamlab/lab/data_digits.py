"""scikit-learn's 8x8 handwritten digits (shipped with scikit-learn; no download), split three ways."""

from __future__ import annotations

from dataclasses import dataclass

import torch

TEST_SIZE, VAL_SIZE, SPLIT_SEED = 500, 297, 0


@dataclass
class Split:
    x: torch.Tensor  # (n, 1, 8, 8), pixel values scaled to [0, 1]
    y: torch.Tensor  # (n,) class ids 0-9


def digits_splits() -> dict[str, Split]:
    """Stratified train (1000) / validation (297) / test (500), the same for every run and seed.

    Learning rates are chosen on validation; the test split is only read for the final numbers.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    idx = list(range(len(y)))
    rest, test = train_test_split(idx, test_size=TEST_SIZE, stratify=y, random_state=SPLIT_SEED)
    train, val = train_test_split(rest, test_size=VAL_SIZE, stratify=y[rest], random_state=SPLIT_SEED)
    return {name: Split(x[ids], y[ids]) for name, ids in (("train", train), ("val", val), ("test", test))}
