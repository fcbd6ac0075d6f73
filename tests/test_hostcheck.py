"""The per-step array check as one C++ call: it answers what the tensors themselves answer in Python.

The oracle is torch's own Python API (numel, dtype, is_contiguous, device, data_ptr) on the same tensors.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import adamlab
from adamlab.backends import hostcheck
from adamlab.backends.dispatch import Bucket


def python_answers(arrays):
    """(numels, dtypes, pointers if every array is a contiguous tensor with storage on the first one's device,
    else None)."""
    plain = all(a.layout == torch.strided and a.device == arrays[0].device and a.is_contiguous() for a in arrays)
    return [a.numel() for a in arrays], [a.dtype for a in arrays], ([a.data_ptr() for a in arrays] if plain else None)


def zoo():
    base = torch.arange(48.0)
    return {
        "float32": torch.randn(7),
        "float64": torch.randn(5, dtype=torch.float64),
        "bfloat16": torch.randn(9).bfloat16(),
        "uint8": torch.zeros(300, dtype=torch.uint8),
        "int64 step": torch.tensor(3),
        "offset view": base[5:20],
        "empty": torch.empty(0),
        "param": torch.nn.Parameter(torch.randn(4, 3)),
        "transposed": base.view(6, 8).t(),
        "strided": base[::3],
        "channels_last": torch.randn(2, 3, 4, 4).to(memory_format=torch.channels_last),
        "meta": torch.empty(6, device="meta"),
        "sparse": torch.eye(3).to_sparse(),
    }


@pytest.fixture(scope="module")
def helper():
    assert hostcheck.wait(), f"the C++ array check could not be built here: {hostcheck.failure}"


PLAIN = ["float32", "float64", "bfloat16", "uint8", "int64 step", "offset view", "empty", "param"]


@pytest.mark.parametrize("odd", [None, "transposed", "strided", "channels_last", "meta", "sparse", "all on meta"])
def test_pointers_are_those_torch_reports_and_only_for_contiguous_arrays_on_one_device(helper, odd):
    tensors = zoo()
    arrays = [tensors[k] for k in PLAIN] + ([tensors[odd]] if odd in tensors else [])
    if odd == "all on meta":
        arrays = [a.to("meta") for a in arrays]
    signature, pointers = hostcheck.scan(arrays)
    numels, _, expected = python_answers(arrays)
    assert (pointers is None) == (expected is None)
    if expected is not None:
        assert pointers.tolist() == expected
    assert signature[: 8 * len(arrays)] == torch.tensor(numels, dtype=torch.int64).numpy().tobytes()


@pytest.mark.parametrize("change", ["shrink in place", "dtype view", "another size", "another dtype", "swap two"])
def test_the_signature_changes_exactly_when_a_count_or_dtype_does(helper, change):
    arrays = [torch.randn(16), torch.randn(16), torch.zeros(16, dtype=torch.int32), torch.randn(8)]
    before = hostcheck.scan(arrays)[0]
    assert hostcheck.scan(list(arrays))[0] == before  # the same tensors: the same signature
    assert hostcheck.scan([a.clone() for a in arrays])[0] == before  # other memory, same counts and dtypes
    if change == "shrink in place":
        arrays[0].resize_(10)  # the same pointer, fewer elements
    elif change == "dtype view":
        arrays[1].data = arrays[1].data.view(torch.int32)  # the same pointer and count, another dtype
    elif change == "another size":
        arrays[3].data = torch.randn(9)
    elif change == "another dtype":
        arrays[3].data = arrays[3].data.double()
    else:
        arrays[2], arrays[3] = arrays[3], arrays[2]
    numels, dtypes, _ = python_answers(arrays)
    assert (numels, dtypes) != ([16, 16, 16, 8], [torch.float32, torch.float32, torch.int32, torch.float32])
    assert hostcheck.scan(arrays)[0] != before  # torch's answers changed: so did the signature


def test_objects_that_are_not_tensors_are_left_to_the_python_check(helper):
    assert hostcheck.scan([torch.randn(3), None]) is None
    assert hostcheck.scan([torch.randn(3), 1.5]) is None


def test_a_bucket_reads_the_same_signature_and_pointers_either_way(helper):
    arrays = [torch.randn(12) for _ in range(8)]
    fast = Bucket(None, None, arrays, 4)
    with hostcheck.using(False):
        slow = Bucket(None, None, arrays, 4)
        assert slow.pointers() is None  # asked in Python, the layout reads pointers itself
        python_signature = slow.signature()
    assert fast.pointers().tolist() == [a.data_ptr() for a in arrays]
    assert python_signature == ([12] * 8, [torch.float32] * 8)
    assert fast.numels() == slow.numels() == [12] * 8


@pytest.mark.parametrize("mutation", ["a shorter view", "a state viewed as int32", "a transposed param"])
def test_steps_with_either_check_match_torch_or_refuse_alike(helper, mutation):
    """Mutations the pointer alone cannot see: both checks must notice them, as torch.optim would."""
    results = {}
    for path in ("c++", "python"):
        with hostcheck.using(path == "c++"):
            ps = [torch.nn.Parameter(torch.linspace(-1, 1, 16).reshape(4, 4)) for _ in range(3)]
            opt = adamlab.AdamW(ps, lr=1e-2)
            for p in ps:
                p.grad = torch.ones_like(p)
            opt.step()
            if mutation == "a shorter view":
                ps[1].data = ps[1].data[:2]  # the same pointer, half the elements
                ps[1].grad = torch.ones(2, 4)
            elif mutation == "a state viewed as int32":  # the same pointer and count
                exp_avg = opt.state[ps[1]]["exp_avg"]
                exp_avg.data = exp_avg.data.view(torch.int32)
            else:
                ps[1].data = ps[1].data.t()
                ps[1].grad = torch.ones(4, 4).t()
            try:
                opt.step()
                results[path] = ("ok", [p.detach().clone() for p in ps])
            except Exception as e:  # noqa: BLE001 - the two checks must refuse with the same error
                results[path] = (type(e).__name__, str(e))
    assert results["c++"][0] == results["python"][0]
    if results["c++"][0] == "ok":
        assert all(torch.equal(a, b) for a, b in zip(results["c++"][1], results["python"][1]))
    else:
        assert results["c++"][1] == results["python"][1]


def _run(body: str, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(body)], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.mark.slow  # builds the helper from nothing in a subprocess: about 15 s
def test_a_large_bucket_builds_the_helper_in_the_background_and_a_warm_cache_needs_no_compiler(tmp_path):
    import os

    env = {**os.environ, "ADAMLAB_CACHE_DIR": str(tmp_path)}
    body = """
        import threading, warnings, torch, adamlab
        from adamlab.backends import hostcheck
        warnings.simplefilter("error")
        print(hostcheck.cached())
        ps = [torch.nn.Parameter(torch.ones(4)) for _ in range(200)]  # 800 arrays: over MIN_ARRAYS
        opt = adamlab.AdamW(ps, lr=1e-2)
        for p in ps:
            p.grad = torch.ones(4)
        opt.step()  # does not wait for the build
        building = any(t.name == "adamlab-hostcheck-build" for t in threading.enumerate())
        print(building, hostcheck.wait(), hostcheck.failure)
    """
    first = _run(body, env)
    assert first.returncode == 0, first.stderr
    assert first.stdout.split() == ["False", "True", "True", "None"]
    again = _run(body.replace("opt.step()", "opt.step(); assert hostcheck._scan is not None"),
                 {**env, "CXX": "/nonexistent/c++", "CC": "/nonexistent/cc"})
    assert again.returncode == 0, again.stderr
    assert again.stdout.split() == ["True", "False", "True", "None"]  # loaded from the cache: nothing built


@pytest.mark.slow  # a subprocess
def test_a_helper_that_cannot_be_built_leaves_steps_correct_and_silent(tmp_path):
    import os

    env = {**os.environ, "ADAMLAB_CACHE_DIR": str(tmp_path), "CXX": "false"}
    body = """
        import warnings, torch, adamlab
        from adamlab.backends import hostcheck
        warnings.simplefilter("error")
        ps = [torch.nn.Parameter(torch.linspace(-1, 1, 4)) for _ in range(200)]
        qs = [torch.nn.Parameter(p.detach().clone()) for p in ps]
        ours, theirs = adamlab.AdamW(ps, lr=1e-2), torch.optim.AdamW(qs, lr=1e-2)
        for _ in range(3):
            for p, q in zip(ps, qs):
                p.grad = torch.cos(p.detach()); q.grad = torch.cos(q.detach())
            ours.step(); theirs.step()
        print(hostcheck.wait(), "failed (exit 1)" in hostcheck.failure)
        torch.testing.assert_close([p.detach() for p in ps], [q.detach() for q in qs])
    """
    done = _run(body, env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "True"]
