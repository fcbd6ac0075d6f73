"""adamlab under DDP and ZeroRedundancyOptimizer on 2 gloo CPU ranks, or in one process.

Usage: python ddp_zero_train.py OUT_DIR {ranks,single}
Writes OUT_DIR/<mode>.pt. ranks: {"ddp" | "zero:bucket" | "zero:plain": {"params": [...]},
plus "state_dict" for the ZeRO cases (consolidated on rank 0)}. single: {"adamlab" | "torch": ...}.
"""

import sys

import torch
from torch.distributed.optim import ZeroRedundancyOptimizer
from torch.nn.parallel import DistributedDataParallel
from two_ranks import LR, STEPS, full, make_model, spawn, train

import adamlab

WD = 0.1


def ranks(rank, out):
    results = {}
    for case in ("ddp", "zero:bucket", "zero:plain"):
        model = make_model()
        ddp = DistributedDataParallel(model)
        groups = adamlab.param_groups(model, weight_decay=WD)
        if case == "ddp":
            opt = adamlab.AdamW(groups, lr=LR)
        else:
            opt = ZeroRedundancyOptimizer(groups, optimizer_class=adamlab.AdamW, lr=LR,
                                          parameters_as_bucket_view=case == "zero:bucket")
        train(ddp, opt, range(STEPS), rank, 2)
        results[case] = {"params": full(model.parameters())}
        if case != "ddp":
            opt.consolidate_state_dict(to=0)
            if rank == 0:
                results[case]["state_dict"] = opt.state_dict()
    if rank == 0:
        torch.save(results, f"{out}/ranks.pt")


def single(out):
    results = {}
    for name, cls in (("adamlab", adamlab.AdamW), ("torch", torch.optim.AdamW)):
        model = make_model()
        opt = cls(adamlab.param_groups(model, weight_decay=WD), lr=LR)
        train(model, opt, range(STEPS))
        results[name] = {"params": full(model.parameters()), "state_dict": opt.state_dict()}
    torch.save(results, f"{out}/single.pt")


if __name__ == "__main__":
    torch.set_num_threads(1)
    out, mode = sys.argv[1], sys.argv[2]
    spawn(ranks, out) if mode == "ranks" else single(out)
