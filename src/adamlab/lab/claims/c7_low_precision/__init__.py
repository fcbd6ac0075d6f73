"""C7, low-precision state: the training runs (training.py), the one-step check (one_step.py) with the paper's
dynamic map for comparison (dynamic_map.py), the page (page.py) and the claim with its verdict (claim.py)."""

from .claim import CLAIM

__all__ = ["CLAIM"]
