"""DCP in one process: a torch.optim checkpoint into an adamlab optimizer with one of adamlab's own options set.

The option's key is in adamlab's param groups and not in torch's checkpoint: the default (strict) planner
refuses the load naming that key, and ``allow_partial_load=True`` loads torch's state and keeps the option,
as docs/integrations.md says.
"""

import warnings

import pytest
import torch

import adamlab

dcp = pytest.importorskip("torch.distributed.checkpoint")
from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict, set_optimizer_state_dict  # noqa: E402


@pytest.fixture
def torch_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 2)
    model(torch.randn(3, 4)).sum().backward()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    opt.step()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DCP warns that no process group is initialised
        dcp.save({"optim": get_optimizer_state_dict(model, opt)}, checkpoint_id=tmp_path)
    return tmp_path, opt.state_dict()["state"]


def load(path, partial: bool):
    model = torch.nn.Linear(4, 2)
    opt = adamlab.AdamW(model.parameters(), lr=1e-3, skip_nonfinite=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sd = {"optim": get_optimizer_state_dict(model, opt)}
        dcp.load(sd, checkpoint_id=path, planner=dcp.DefaultLoadPlanner(allow_partial_load=partial))
    set_optimizer_state_dict(model, opt, sd["optim"])
    return opt


def test_a_strict_load_names_the_key_torch_lacks(torch_checkpoint):
    with pytest.raises(dcp.api.CheckpointException, match="param_groups.0.skip_nonfinite"):
        load(torch_checkpoint[0], partial=False)


def test_a_partial_load_takes_torchs_state_and_keeps_the_option(torch_checkpoint):
    path, theirs = torch_checkpoint
    opt = load(path, partial=True)
    assert opt.param_groups[0]["skip_nonfinite"] is True
    ours = opt.state_dict()["state"]
    for i, state in theirs.items():
        for key, value in state.items():
            assert torch.equal(ours[i][key], value), (i, key)
