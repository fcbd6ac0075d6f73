"""adamlab.AdamW under DDP and under ZeroRedundancyOptimizer (optimizer_class=adamlab.AdamW, with and
without parameters_as_bucket_view), 2 gloo CPU ranks each seeing half of every batch, against one process
on the whole batch, and against torch.optim.AdamW in one process (the oracle).
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import adamlab

pytestmark = pytest.mark.slow  # trainers and process groups: minutes, run in CI

dist = pytest.importorskip("torch.distributed")
if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with gloo is not available", allow_module_level=True)

SCRIPT = Path(__file__).parents[1] / "scripts" / "ddp_zero_train.py"
CASES = ["ddp", "zero:bucket", "zero:plain"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    for mode in ("single", "ranks"):
        subprocess.run([sys.executable, str(SCRIPT), str(out), mode], check=True, timeout=300)
    return {mode: torch.load(out / f"{mode}.pt", weights_only=True) for mode in ("single", "ranks")}


def assert_close(got, want):
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()


@pytest.mark.parametrize("case", CASES)
def test_two_ranks_equal_one_process(runs, case):
    got = runs["ranks"][case]["params"]
    assert_close(got, runs["single"]["adamlab"]["params"])
    assert_close(got, runs["single"]["torch"]["params"])


@pytest.mark.parametrize("case", ["zero:bucket", "zero:plain"])
@pytest.mark.parametrize("lib", [adamlab.AdamW, torch.optim.AdamW])
def test_zero_consolidated_checkpoint_loads_in_one_process(runs, case, lib):
    """The consolidated ZeRO state dict loads into one optimizer and holds one process's state."""
    model = torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.Tanh(), torch.nn.Linear(9, 3))
    opt = lib(adamlab.param_groups(model, weight_decay=0.1))
    opt.load_state_dict(runs["ranks"][case]["state_dict"])
    want = runs["single"]["torch"]["state_dict"]
    assert [g["weight_decay"] for g in opt.param_groups] == [g["weight_decay"] for g in want["param_groups"]]
    for pid, p in enumerate(p for g in opt.param_groups for p in g["params"]):
        assert sorted(opt.state[p]) == sorted(want["state"][pid])
        for key, value in want["state"][pid].items():
            assert torch.allclose(opt.state[p][key], value, rtol=1e-5, atol=1e-7), key
