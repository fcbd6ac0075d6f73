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
# Kernels go to a cache of the tests' own (inherited by the subprocesses tests start), never the user's.
# It outlives the run, as the user's cache does: a kernel's file name is the hash of its source, flags and CPU,
# and each file carries a checksum, so a later run reuses only what it would have built itself (and builds
# nothing when the code did not change). ADAMLAB_TEST_FRESH_CACHE=1 gives a run an empty cache of its own.
if os.environ.get("ADAMLAB_TEST_FRESH_CACHE") == "1":
    os.environ["ADAMLAB_CACHE_DIR"] = tempfile.mkdtemp(prefix="adamlab-test-cache-")
else:
    os.environ["ADAMLAB_CACHE_DIR"] = os.path.join(tempfile.gettempdir(), f"adamlab-test-cache-{os.getuid()}")


@pytest.fixture(scope="session", autouse=True)
def _host_check_helper():
    """Every test steps with the C++ array check, built once into the tests' cache (about 15 s cold), so no
    test depends on whether an earlier one started its background build; tests of the Python check turn it
    off (adamlab.backends.hostcheck.using(False))."""
    from adamlab.backends import hostcheck

    hostcheck.wait()
    yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
