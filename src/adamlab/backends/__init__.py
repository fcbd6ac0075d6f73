"""Backends apply a traced or executed update to a bucket of params; they know nothing of optimizers.

* :mod:`.reference` runs the update with torch ops (readable, differentiable, any device);
* :mod:`.cpu` prints the traced program (:mod:`.trace`) as C (:mod:`.c`), built and cached by :mod:`.build`;
* :mod:`.dispatch` chooses per bucket and resolves every kernel before anything is written.
"""

from .dispatch import Bucket, prepare

__all__ = ["Bucket", "prepare"]
