"""scikit-learn's 8x8 handwritten digits (shipped with scikit-learn; no download), in stratified parts.

Claims that use the digits choose their own part sizes; the split is fixed by
``split_seed``, so every run and every seed sees the same images in each part.
"""

from __future__ import annotations

import numpy as np
import torch


def load(images: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """All 1797 digits: pixels in [0, 1], as (n, 1, 8, 8) images or (n, 64) rows, and class ids 0-9."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images if images else data.data, dtype=torch.float32) / 16.0
    return (x.unsqueeze(1) if images else x), torch.tensor(data.target, dtype=torch.long)


def stratified_parts(labels: torch.Tensor, sizes: dict[str, int], split_seed: int = 0) -> dict[str, torch.Tensor]:
    """Disjoint index sets of the given sizes, each with the class mix of the whole; a size of -1 takes the rest.

    The parts are drawn in the order given, each from what the earlier ones left.
    """
    from sklearn.model_selection import train_test_split

    rest = np.arange(len(labels))
    parts = {}
    for name, size in sizes.items():
        if size == -1 or size == len(rest):
            parts[name], rest = rest, rest[:0]
            continue
        take, rest = train_test_split(rest, train_size=size, stratify=labels[rest].numpy(), random_state=split_seed)
        parts[name] = take
    return {name: torch.as_tensor(np.sort(idx)) for name, idx in parts.items()}
