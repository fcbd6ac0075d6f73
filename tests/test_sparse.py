"""Sparse gradients, as torch handles them: SGD and Adagrad take them, the rest refuse (test_errors)."""

from __future__ import annotations

import pytest
import torch
from cases import ALL_CASES, params

import adamlab

SPARSE_CASES = [c for c in ALL_CASES if c.info.sparse and c.torch_name]


def run(make, steps=6, coalesce=False):
    """An embedding with sparse grads beside a dense param; returns params, state and any error's type."""
    torch.manual_seed(0)
    emb = torch.nn.Embedding(10, 3, sparse=True).double()
    dense = torch.nn.Parameter(torch.randn(4, dtype=torch.float64))
    opt = make([emb.weight, dense])
    gen = torch.Generator().manual_seed(1)
    try:
        for t in range(steps):
            opt.zero_grad()
            ids = torch.randint(0, 10, (5,), generator=gen)  # repeats: an uncoalesced gradient
            (emb(ids).pow(2).sum() + dense.pow(2).sum() * (t + 1)).backward()
            if coalesce:
                emb.weight.grad = emb.weight.grad.coalesce()
            opt.step()
    except Exception as e:  # noqa: BLE001 - the type is what torch and adamlab must share
        return None, None, type(e)
    return [emb.weight.detach(), dense.detach()], opt.state_dict()["state"], None


@pytest.mark.parametrize("coalesce", [False, True])
@pytest.mark.parametrize("case", params(SPARSE_CASES))
def test_sparse_gradients_follow_torch(case, coalesce):
    expected, expected_state, expected_error = run(case.make_torch, coalesce=coalesce)
    actual, actual_state, actual_error = run(case.make, coalesce=coalesce)
    assert actual_error is expected_error
    if expected_error is not None:
        return
    assert all(torch.allclose(a, b, rtol=1e-12, atol=1e-14) for a, b in zip(actual, expected))
    assert actual_state.keys() == expected_state.keys()
    for i, state in expected_state.items():
        assert actual_state[i].keys() == state.keys()
        for key, value in state.items():
            got = actual_state[i][key]
            assert got.is_sparse == value.is_sparse, key
            dense = (lambda t: t.to_dense() if t.is_sparse else t)  # noqa: E731
            assert torch.allclose(dense(got).double(), dense(value).double(), rtol=1e-12, atol=1e-14), key


def test_sgd_without_momentum_keeps_no_state_entries():
    for lib in (torch.optim, adamlab):
        p = torch.nn.Parameter(torch.ones(3))
        q = torch.nn.Parameter(torch.ones(3))
        opt = lib.SGD([p, q], lr=0.1)
        for _ in range(3):
            p.grad = torch.ones(3)
            opt.step()
        assert opt.state_dict()["state"] == {}
