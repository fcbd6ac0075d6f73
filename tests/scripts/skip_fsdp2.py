"""2 gloo ranks, FSDP2: a NaN in one rank's gradient shard must make both ranks skip the step.

Usage: python skip_fsdp2.py OUT_DIR; writes OUT_DIR/skip.pt with each rank's view.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from two_ranks import full, make_model, spawn  # noqa: E402

import adamlab  # noqa: E402


def run(rank, out):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    model = make_model()
    mesh = init_device_mesh("cpu", (2,))
    for layer in model:
        if any(True for _ in layer.parameters()):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    opt = adamlab.AdamW(model.parameters(), lr=1e-2, skip_nonfinite=True)
    x, y = torch.randn(8, 6, generator=torch.Generator().manual_seed(1)), torch.randn(8, 3)
    history = []
    for step in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        if step == 1 and rank == 0:  # only rank 0's shard of the first weight's gradient is bad
            model[0].weight.grad.to_local()[0, 0] = float("nan")
        opt.step()
        history.append({"skipped": opt.last_step_skipped, "params": full(model.parameters())})
    torch.save({"history": history, "skips": opt.param_groups[0]["nonfinite_skips"]}, Path(out) / f"skip{rank}.pt")


if __name__ == "__main__":
    spawn(run, sys.argv[1])
