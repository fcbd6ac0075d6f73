"""docs/adding-an-optimizer.md: its example record, run as written, is a working optimizer on every backend.

Oracle: a float64 NumPy transcription of AdaBelief's Algorithm 1 (Zhuang et al. 2020), written here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

DOC = Path(__file__).parents[1] / "docs" / "adding-an-optimizer.md"


@pytest.fixture(scope="module")
def adabelief():
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    return namespace["AdaBelief"]


def numpy_adabelief(p, grads, lr, b1, b2, eps, wd):
    m, s = np.zeros_like(p), np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g + wd * p
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * (g - m) ** 2 + eps
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(s / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("fused", [False, True])
def test_the_documented_record_is_adabelief(adabelief, fused):
    rng = np.random.default_rng(0)
    init = rng.standard_normal(50)
    grads = [rng.standard_normal(50) * 10 ** rng.uniform(-2, 1) for _ in range(60)]
    p = torch.tensor(init, requires_grad=True)
    opt = adabelief([p], lr=1e-2, betas=(0.9, 0.99), eps=1e-12, weight_decay=0.1, fused=fused)
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
    expected = numpy_adabelief(init, grads, 1e-2, 0.9, 0.99, 1e-12, 0.1)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-10, atol=1e-12)
    assert set(opt.state[p]) == {"exp_avg", "exp_avg_var", "step"}


def test_the_documented_class_has_a_signature_and_args(adabelief):
    import inspect

    assert list(inspect.signature(adabelief).parameters)[:6] == [
        "params", "lr", "betas", "eps", "weight_decay", "decoupled_weight_decay"]
    assert "Args:" in adabelief.__doc__ and "betas" in adabelief.__doc__
