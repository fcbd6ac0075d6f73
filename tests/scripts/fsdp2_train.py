"""Train a small MLP with adamlab under FSDP2 on 2 gloo CPU ranks, or in one process.

Usage: python fsdp2_train.py OUT_DIR {sharded,single} CASE [CASE ...], CASE = OPTIMIZER:FUSED
Writes OUT_DIR/<mode>.pt: {case: {"params": full final params, "state_types": [...]}}.
"""

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from two_ranks import spawn  # noqa: E402

import adamlab  # noqa: E402

STEPS, BATCH = 12, 16


def make_model():
    torch.manual_seed(0)
    # odd sizes give uneven shards across the two ranks
    return torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.Tanh(), torch.nn.Linear(9, 3))


def make_optimizer(name, params, fused):
    kw = {"adamw": dict(lr=1e-2, weight_decay=0.1, amsgrad=True), "sgd": dict(lr=1e-2, momentum=0.9, nesterov=True),
          "rmsprop": dict(lr=1e-3, centered=True), "radam": dict(lr=1e-2)}[name]
    cls = {"adamw": adamlab.AdamW, "sgd": adamlab.SGD, "rmsprop": adamlab.RMSprop, "radam": adamlab.RAdam}[name]
    return cls(params, fused=fused, **kw)


def batches():
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(BATCH, 6, generator=gen), torch.randn(BATCH, 3, generator=gen)) for _ in range(STEPS)]


def train(model, opt, rank=0, world=1):
    for x, y in batches():
        shard = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
        loss = torch.nn.functional.mse_loss(model(x[shard]), y[shard])
        opt.zero_grad()
        loss.backward()
        opt.step()


FUSED = {"none": None, "true": True, "false": False}


def sharded(rank, out, cases):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (2,))
    results = {}
    for case in cases:
        name, fused = case.split(":")
        model = make_model()
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        opt = make_optimizer(name, model.parameters(), FUSED[fused])
        assert all(type(p).__name__ == "DTensor" for p in model.parameters())
        train(model, opt, rank, 2)
        kinds = sorted({type(v).__name__ for s in opt.state.values() for k, v in s.items() if k != "step"})
        results[case] = {"params": [p.full_tensor() for p in model.parameters()], "state_types": kinds}
    if rank == 0:
        torch.save(results, f"{out}/sharded.pt")


def main():
    out, mode, cases = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "sharded":
        spawn(sharded, out, cases)
        return
    torch.set_num_threads(1)
    results = {}
    for case in cases:
        name, fused = case.split(":")
        model = make_model()
        train(model, make_optimizer(name, model.parameters(), FUSED[fused]))
        results[case] = {"params": [p.detach() for p in model.parameters()]}
    torch.save(results, f"{out}/single.pt")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
