"""Stop a run at step k, save it, resume in a fresh process: the params end bitwise identical.

The fresh process is this file run as a script: it loads each checkpoint with
``torch.load(weights_only=True)`` into a model, AdamW and LambdaLR built from
a different seed, continues to the end and saves what it got.
"""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch.optim.lr_scheduler import LambdaLR

import adamlab
from adamlab import schedules

BASE_LR, WARMUP, TOTAL, STEPS = 1e-2, 6, 20, 24
STOPS = (3, WARMUP, 14)  # inside warmup, where it ends, after it


def build(seed):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    opt = adamlab.AdamW(adamlab.param_groups(model, 0.1), lr=BASE_LR)
    sched = LambdaLR(opt, schedules.warmup_cosine(WARMUP, TOTAL, min_ratio=0.1))
    return model, opt, sched


def batch(step):
    """Data that depends only on the step, as a resumable loader would give."""
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(5, 4, generator=g), torch.randn(5, 2, generator=g)


def train(model, opt, sched, start, stop):
    for step in range(start, stop):
        x, y = batch(step)
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        opt.step()
        sched.step()


def resume_all(folder: Path):
    """Run in the fresh process: load every checkpoint, finish its run, save the params."""
    for k in STOPS:
        saved = torch.load(folder / f"stop_{k}.pt", weights_only=True)
        model, opt, sched = build(seed=1)
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
        at_load = {"last_epoch": sched.last_epoch, "lr": opt.param_groups[0]["lr"]}
        train(model, opt, sched, k, STEPS)
        torch.save({"params": list(model.parameters()), "at_load": at_load}, folder / f"final_{k}.pt")


@pytest.mark.slow  # fresh processes
def test_resume_in_a_fresh_process_is_bitwise_identical(tmp_path):
    model, opt, sched = build(seed=0)
    for k, start in zip(STOPS, (0,) + STOPS):
        train(model, opt, sched, start, k)
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
        torch.save(state, tmp_path / f"stop_{k}.pt")
    train(model, opt, sched, STOPS[-1], STEPS)
    uninterrupted = [p.detach() for p in model.parameters()]

    subprocess.run([sys.executable, __file__, str(tmp_path)], check=True, timeout=120)

    f = schedules.warmup_cosine(WARMUP, TOTAL, min_ratio=0.1)
    for k in STOPS:
        final = torch.load(tmp_path / f"final_{k}.pt", weights_only=True)
        assert final["at_load"]["last_epoch"] == k
        assert final["at_load"]["lr"] == BASE_LR * f(k)
        assert len(final["params"]) == len(uninterrupted)
        for got, want in zip(final["params"], uninterrupted):
            assert torch.equal(got, want), f"stopped at step {k}"


if __name__ == "__main__":
    resume_all(Path(sys.argv[1]))
