"""Claim 3: see claim.py."""

from .claim import CLAIM

__all__ = ["CLAIM"]
