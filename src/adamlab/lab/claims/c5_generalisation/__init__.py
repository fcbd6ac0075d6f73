"""C5, generalisation: the constructed problem (constructed.py), the digits CNN and its recipe (cnn.py, study.py)
and the claim with its figures (claim.py)."""

from .claim import CLAIM

__all__ = ["CLAIM"]
