"""Benchmarks of the optimizer step (``adamlab bench``); :mod:`.memory` measures low-precision state."""
