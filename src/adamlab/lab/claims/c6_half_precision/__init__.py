"""C6, half precision: one step and one running average in each format, and the claim (all in claim.py)."""

from .claim import CLAIM

__all__ = ["CLAIM"]
