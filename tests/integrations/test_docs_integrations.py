"""Every python snippet in docs/integrations.md runs as it stands, each in a fresh interpreter,
and the page's claim that one param_groups call groups as timm's optimizer factory does.

A snippet that starts a process group runs under torchrun on 2 ranks, as the page says.
Snippets that import a package of the ``integrations`` extra skip where it is absent.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import adamlab

pytestmark = pytest.mark.slow  # trainers and process groups: minutes, run in CI

PAGE = Path(__file__).parents[2] / "docs" / "integrations.md"
SECTIONS = re.findall(r"^## ([^\n]+)\n(.*?)(?=^## |\Z)", PAGE.read_text(), flags=re.S | re.M)
SNIPPETS = {re.sub(r"\W+", "-", head).strip("-").lower() + (f"-{i}" if i else ""): code  # id -> code
            for head, body in SECTIONS
            for i, code in enumerate(re.findall(r"^```python\n(.*?)^```", body, flags=re.S | re.M))}
EXTRA = ("transformers", "lightning")


def test_the_page_has_its_snippets():
    assert len(SNIPPETS) >= 5


@pytest.mark.parametrize("name", SNIPPETS)
def test_snippet_runs(name, tmp_path):
    code = SNIPPETS[name]
    for package in EXTRA:
        if re.search(rf"^(from|import) {package}\b", code, flags=re.M) and importlib.util.find_spec(package) is None:
            pytest.skip(f"{package} is not installed (pip install torch==2.13.0 -e '.[integrations]')")
    script = tmp_path / "snippet.py"
    script.write_text(code)
    if "init_process_group" in code:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", str(script)]
    else:
        cmd = [sys.executable, str(script)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


class _Encoder(torch.nn.Module):
    """Every kind of param timm's rule tells apart: matrices, biases (one of them 2-d), norms, a scalar,
    tokens named by no_weight_decay(), and a frozen one."""

    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.pos_embed = torch.nn.Parameter(torch.zeros(1, 5, 4))
        self.cls_token = torch.nn.Parameter(torch.zeros(1, 1, 4))
        self.norm = torch.nn.LayerNorm(4)
        self.proj = torch.nn.Linear(4, 4)
        self.proj.bias = torch.nn.Parameter(torch.zeros(2, 2))  # a 2-d ".bias"
        self.logit_scale = torch.nn.Parameter(torch.tensor(1.0))
        self.frozen = torch.nn.Parameter(torch.ones(3, 3), requires_grad=False)

    def no_weight_decay(self):
        return {"pos_embed", "cls_token"}


def _timm_rule(model, weight_decay):
    """timm's param_groups_weight_decay as its documentation states it: no decay where
    ndim <= 1, or the name ends in ".bias", or the name is in model.no_weight_decay()."""
    skip = model.no_weight_decay()
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") or name in skip else decay).append(p)
    return {weight_decay: decay, 0.0: no_decay}


def test_the_timm_equivalent_groups_as_timm_does():
    model = _Encoder()
    groups = adamlab.param_groups(model, weight_decay=0.05, no_decay=("*.bias", *model.no_weight_decay()))
    got = {g["weight_decay"]: [id(p) for p in g["params"]] for g in groups}
    want = {wd: [id(p) for p in ps] for wd, ps in _timm_rule(model, 0.05).items()}
    assert got == want
