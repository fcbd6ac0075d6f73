"""adamlab on FSDP2-sharded params (DTensors), 2 gloo ranks on CPU, against one process.

Recipe from torch's FSDP2 docs: gloo with a file rendezvous, a 1-d CPU device
mesh, fully_shard per layer and at the root. Each rank sees half of every
batch; FSDP averages the gradients, so the sharded run must match a single
process on the whole batch. The fused path runs on the local shards.
"""

from __future__ import annotations

import pytest
import torch
from two_ranks import single_and_sharded

pytestmark = pytest.mark.slow  # two ranks in subprocesses

CASES = ["adamw:true", "sgd:none", "rmsprop:none", "radam:false"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return single_and_sharded("fsdp2_train.py", CASES, tmp_path_factory.mktemp("fsdp2"))


@pytest.mark.parametrize("case", CASES)
def test_sharded_training_matches_one_process(runs, case):
    single, sharded = runs["single"][case], runs["sharded"][case]
    assert sharded["state_types"] == ["DTensor"]  # zeros_like(p) gave sharded state
    for a, b in zip(sharded["params"], single["params"]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()
