"""Shared test setup; the case table lives in cases.py.

The tests step tiny tensors, where intra-op threads only add synchronisation:
on a busy 2-core machine they made each test ~30x slower. One thread keeps
the suite fast; a test that measures threading can raise it locally.
"""

import os
import tempfile

# Triton's interpreter runs the GPU backend's kernels on CPU tensors (tests/test_triton.py). Triton reads
# this when it is imported, so it is set before anything imports it.
os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
# kernels are built into a cache of this run's own (inherited by the subprocesses tests start), so no
# run depends on what an earlier one left on disk
os.environ["ADAMLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="adamlab-test-cache-")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
