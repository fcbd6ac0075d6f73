"""param_groups: matrices decay; biases, norm weights and other <2-d params do not; patterns override."""

from __future__ import annotations

import pytest
import torch
from cases import rel_diff
from torch import nn

import adamlab
from adamlab import param_groups


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(10, 4)
        self.conv = nn.Conv1d(4, 6, 3)
        self.norm = nn.LayerNorm(6)
        self.head = nn.Linear(6, 2)
        self.scale = nn.Parameter(torch.tensor(1.5))  # 0-d
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)

    def forward(self, tokens):
        h = self.conv(self.emb(tokens).transpose(1, 2)).transpose(1, 2)
        return self.scale * self.head(torch.tanh(self.norm(h))).mean()


def names(model, group):
    ids = {id(p) for p in group["params"]}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def split(model, groups):
    """(decayed names, non-decayed names), checking every trainable param appears exactly once."""
    listed = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(listed) == sorted(trainable)
    decayed = set().union(*(names(model, g) for g in groups if g["weight_decay"] > 0))
    plain = set().union(*(names(model, g) for g in groups if g["weight_decay"] == 0))
    return decayed, plain


MATRICES = {"emb.weight", "conv.weight", "head.weight"}
VECTORS = {"conv.bias", "norm.weight", "norm.bias", "head.bias", "scale"}


def test_matrices_decay_and_the_rest_does_not():
    model = Net()
    groups = param_groups(model, 0.1, lr=3e-4, betas=(0.9, 0.95))
    assert split(model, groups) == (MATRICES, VECTORS)
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]
    assert all(g["lr"] == 3e-4 and g["betas"] == (0.9, 0.95) for g in groups)


def test_patterns_override_the_rule():
    model = Net()
    groups = param_groups(model, 0.1, no_decay=("emb.*",), decay=("norm.weight",))
    assert split(model, groups) == (
        MATRICES - {"emb.weight"} | {"norm.weight"},
        VECTORS - {"norm.weight"} | {"emb.weight"},
    )


def test_decay_pattern_wins_over_no_decay_pattern():
    model = Net()
    groups = param_groups(model, 0.1, no_decay=("head.*",), decay=("head.*",))
    decayed, _ = split(model, groups)
    assert {"head.weight", "head.bias"} <= decayed


def test_empty_groups_are_left_out():
    model = nn.LayerNorm(4)
    groups = param_groups(model, 0.1)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0


def test_negative_weight_decay_is_refused():
    with pytest.raises(ValueError, match="weight_decay"):
        param_groups(Net(), -0.1)


def test_adamw_end_to_end_as_torch_with_hand_made_groups():
    tokens = torch.randint(0, 10, (8, 5), generator=torch.Generator().manual_seed(1))
    ours_model, torch_model = Net().double(), Net().double()
    ours = adamlab.AdamW(param_groups(ours_model, 0.1), lr=1e-2)
    named = dict(torch_model.named_parameters())
    theirs = torch.optim.AdamW(
        [
            {"params": [named[n] for n in sorted(MATRICES)], "weight_decay": 0.1},
            {"params": [named[n] for n in sorted(VECTORS)], "weight_decay": 0.0},
        ],
        lr=1e-2,
    )
    for _ in range(20):
        for model, opt in ((ours_model, ours), (torch_model, theirs)):
            opt.zero_grad()
            model(tokens).backward()
            opt.step()
    ours_named = dict(ours_model.named_parameters())
    assert rel_diff([ours_named[n] for n in sorted(named)], [named[n] for n in sorted(named)]) <= 1e-12


def test_only_the_decay_group_shrinks():
    """With zero gradients AdamW's only effect is the decay: theta *= 1 - lr*wd, on matrices only."""
    model = Net()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = adamlab.AdamW(param_groups(model, 0.5), lr=0.1)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.zeros_like(p)
    opt.step()
    for n, p in model.named_parameters():
        expected = before[n] * (1 - 0.1 * 0.5) if n in MATRICES else before[n]
        assert torch.equal(p, expected), n
