"""Train an MLP with low-precision adamlab state under FSDP2 on 2 gloo CPU ranks, or in one process.

Usage: python fsdp2_lowp.py OUT_DIR {sharded,single} CASE [CASE ...], CASE = STORAGE:FUSED
Writes OUT_DIR/<mode>.pt: {case: {"params": full final params, "state": per param, per key:
(type name, the local element counts of both ranks), "first": the state after the first step, per param,
per key, in full (DTensors gathered, each rank's local absmax end to end)}}.
"""

import sys

import torch
import torch.distributed as dist
from two_ranks import spawn

import adamlab

STEPS, BATCH, LR = 12, 16, 1e-2
STORAGE = {"8bit": dict(state_precision="8bit"), "bf16": dict(state_precision="bf16"),
           "kahan": dict(state_precision="bf16", param_update="kahan")}
FUSED = {"none": None, "true": True, "false": False}


def make_model(storage):
    torch.manual_seed(0)
    # first weight: 128 x 64 = 8192 elements, 4096 per rank = 16 whole blocks each;
    # second: 50 x 128 = 6400, 3200 per rank = 12.5 blocks, so rank 1's blocks start mid-way of one process's
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.Tanh(), torch.nn.Linear(128, 50))
    return model.to(torch.bfloat16) if storage == "kahan" else model


def batches():
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(BATCH, 64, generator=gen), torch.randn(BATCH, 50, generator=gen)) for _ in range(STEPS)]


def train(model, opt, rank=0, world=1):
    """Train; returns the state after the first step, in full."""
    dtype = next(model.parameters()).dtype
    first = None
    for x, y in batches():
        shard = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
        loss = torch.nn.functional.mse_loss(model(x[shard].to(dtype)).float(), y[shard])
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or gathered(opt, world)
    return first


def gathered(opt, world):
    out = []
    for p in (p for g in opt.param_groups for p in g["params"]):
        entry = {}
        for key, value in opt.state[p].items():
            if hasattr(value, "full_tensor"):
                entry[key] = value.full_tensor().clone()
            elif world > 1 and value.dim():
                parts = [None] * world
                dist.all_gather_object(parts, value)
                entry[key] = torch.cat(parts)
            else:
                entry[key] = value.clone()
        out.append(entry)
    return out


def describe(opt, world):
    """Per param, per state key: the tensor's type and each rank's local element count."""
    out = []
    for p in (p for g in opt.param_groups for p in g["params"]):
        entry = {}
        for key, value in opt.state[p].items():
            local = value.to_local() if hasattr(value, "to_local") else value
            counts = [None] * world
            if world > 1:
                dist.all_gather_object(counts, local.numel())
            else:
                counts = [local.numel()]
            entry[key] = (type(value).__name__, counts)
        out.append(entry)
    return out


def sharded(rank, out, cases):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    mesh = init_device_mesh("cpu", (2,))
    results = {}
    for case in cases:
        storage, fused = case.split(":")
        model = make_model(storage)
        for layer in model:
            if isinstance(layer, torch.nn.Linear):
                fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        opt = adamlab.AdamW(model.parameters(), lr=LR, fused=FUSED[fused], **STORAGE[storage])
        first = train(model, opt, rank, 2)
        results[case] = {"params": [p.full_tensor() for p in model.parameters()], "state": describe(opt, 2),
                         "first": first}
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
        storage, fused = case.split(":")
        model = make_model(storage)
        opt = adamlab.AdamW(model.parameters(), lr=LR, fused=FUSED[fused], **STORAGE[storage])
        first = train(model, opt)
        results[case] = {"params": [p.detach() for p in model.parameters()], "state": describe(opt, 1),
                         "first": first}
    torch.save(results, f"{out}/single.pt")


if __name__ == "__main__":
    main()
