"""C1, bias correction: the claim, its training proxy and its figures (all in claim.py)."""

from .claim import CLAIM

__all__ = ["CLAIM"]
