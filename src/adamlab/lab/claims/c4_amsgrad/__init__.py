"""C4, AMSGrad: the online counterexamples, their figures and the claim (all in claim.py)."""

from .claim import CLAIM

__all__ = ["CLAIM"]
