"""C2, AdamW against Adam + L2: the claim (claim.py), its BatchNorm network (bn_net.py), the lr x wd grid (grid.py)
and the figures (figures.py)."""

from .claim import CLAIM

__all__ = ["CLAIM"]
