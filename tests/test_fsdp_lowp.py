"""Low-precision state of FSDP2-sharded params (DTensors), 2 gloo ranks on CPU, against one process.

How blocks meet shard boundaries: each rank quantizes its own shard, in
blocks of 256 that start at the shard's first element; the last block of a
shard may be short, and no block straddles two ranks. The codes (and a bf16
param's compensation) are DTensors sharded like the param; the absmax of a
shard's blocks is a plain tensor local to its rank. Where the shard
boundaries fall on whole blocks (the first weight, 4096 elements per rank)
the sharded run keeps the blocks of one process and matches it as closely
as fp32 state does; where they do not (the second weight, 3200 per rank),
the blocks differ and so do the codes, by the code's own resolution.
"""

from __future__ import annotations

import pytest
import torch
from two_ranks import single_and_sharded

from adamlab.backends import quantized

pytestmark = pytest.mark.slow  # two ranks in subprocesses

CASES = ["8bit:none", "8bit:false", "bf16:none", "kahan:none"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return single_and_sharded("fsdp2_lowp.py", CASES, tmp_path_factory.mktemp("fsdp2_lowp"))


def test_8bit_blocks_start_at_each_shard_and_codes_are_sharded_like_the_param(runs):
    weight, second = runs["sharded"]["8bit:none"]["state"][0], runs["sharded"]["8bit:none"]["state"][2]
    assert weight["exp_avg_codes"] == ("DTensor", [4096, 4096])
    assert weight["exp_avg_absmax"] == ("Tensor", [16, 16])
    assert second["exp_avg_sq_codes"] == ("DTensor", [3200, 3200])
    assert second["exp_avg_sq_absmax"] == ("Tensor", [quantized.blocks(3200)] * 2)  # 13: the last one short


def test_shard_boundaries_on_whole_blocks_keep_one_process_blocks(runs):
    """After one step from zero state (gradients equal up to the order of FSDP's reduction)."""
    single, sharded = runs["single"]["8bit:none"]["first"], runs["sharded"]["8bit:none"]["first"]
    for key in ("exp_avg_absmax", "exp_avg_sq_absmax"):
        # first weight, 4096 elements per rank: rank 1's blocks are one process's blocks 16..31
        assert torch.allclose(sharded[0][key], single[0][key], rtol=1e-5, atol=0), key
        # second weight, 3200 per rank: rank 0's 13th block is short and rank 1's start 128 elements later
        assert sharded[2][key].numel() == 26 and single[2][key].numel() == 25
        assert torch.allclose(sharded[2][key][:12], single[2][key][:12], rtol=1e-5, atol=0)
        assert not torch.allclose(sharded[2][key][13:], single[2][key][12:], rtol=1e-2, atol=0)
    same_codes = (sharded[0]["exp_avg_codes"] == single[0]["exp_avg_codes"]).float().mean()
    assert same_codes > 0.999


@pytest.mark.parametrize("case", ["8bit:none", "8bit:false"])
def test_8bit_sharded_training_stays_close_to_one_process(runs, case):
    """Over 12 steps a code that rounds the other way for an ulp of gradient moves an element by part of lr."""
    single, sharded = runs["single"][case]["params"], runs["sharded"][case]["params"]
    for a, b in zip(sharded, single):
        assert (a - b).abs().max() < 0.3 * 1e-2 and (a - b).abs().mean() < 0.03 * 1e-2


def test_bf16_state_and_kahan_params_shard_alike(runs):
    for a, b in zip(runs["sharded"]["bf16:none"]["params"], runs["single"]["bf16:none"]["params"]):
        assert (a - b).abs().max() < 0.01 * 1e-2  # bf16 moments round ulp-different gradients apart, rarely
    state = runs["sharded"]["kahan:none"]["state"][0]
    assert state["kahan_comp"] == ("DTensor", [4096, 4096]) and state["exp_avg"][0] == "DTensor"
    for a, b in zip(runs["sharded"]["kahan:none"]["params"], runs["single"]["kahan:none"]["params"]):
        # bf16 params: the gradients are averaged in bf16 across ranks, so they differ at bf16's precision
        assert (a.float() - b.float()).abs().max() < 2e-2
