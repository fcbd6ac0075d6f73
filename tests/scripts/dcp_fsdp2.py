"""DCP checkpoints of FSDP2-sharded training on 2 gloo CPU ranks, across torch.optim.AdamW and adamlab.AdamW.

Usage: python dcp_fsdp2.py OUT_DIR
Writes OUT_DIR/results.pt (rank 0):
  straight/<lib>         params after STEPS uninterrupted steps
  saved/<lib>            optimizer state (whole tensors) and keys of the checkpoint written at step HALF
  resumed/<saver>-><loader>  state and group options right after the strict load (and the fresh optimizer's
                         options before it), and params after the remaining steps
  primed/<lib>, first/<lib>  priming by get_optimizer_state_dict on a fresh optimizer, then one real step
<lib> is "torch" or "adamlab". The checkpoints are in OUT_DIR/ckpt-<lib>.
"""

import sys

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.optim.lr_scheduler import LambdaLR
from two_ranks import LR, STEPS, full, make_model, spawn, train

import adamlab

HALF, WD = 6, 0.1
LIBS = {"torch": torch.optim.AdamW, "adamlab": adamlab.AdamW}


def build(lib, mesh):
    model = make_model()
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    opt = LIBS[lib](adamlab.param_groups(model, weight_decay=WD), lr=LR)
    sched = LambdaLR(opt, adamlab.schedules.warmup_cosine(3, STEPS, min_ratio=0.1))
    return model, opt, sched


def state_of(model, opt):
    """The optimizer state per param name, whole tensors (collective)."""
    out = {}
    for name, p in model.named_parameters():
        out[name] = dict(zip(opt.state[p], full(opt.state[p].values())))
    return out


def save(model, opt, sched, path):
    state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt),
             "sched": sched.state_dict()}
    dcp.save(state, checkpoint_id=path)
    return state


def load(model, opt, sched, path):
    """The usual resume: state dicts of the fresh objects as templates, a strict load, then set."""
    state = {"model": get_model_state_dict(model), "optim": get_optimizer_state_dict(model, opt),
             "sched": sched.state_dict()}
    dcp.load(state, checkpoint_id=path)  # default planner: every key of `state` must be in the checkpoint
    set_model_state_dict(model, state["model"])
    set_optimizer_state_dict(model, opt, state["optim"])
    sched.load_state_dict(state["sched"])


def run(rank, out):
    mesh = init_device_mesh("cpu", (2,))
    res = {}
    for lib in LIBS:
        model, opt, sched = build(lib, mesh)
        train(model, opt, range(STEPS), rank, 2, sched)
        res[f"straight/{lib}"] = {"params": full(model.parameters())}

        model, opt, sched = build(lib, mesh)
        train(model, opt, range(HALF), rank, 2, sched)
        written = save(model, opt, sched, f"{out}/ckpt-{lib}")
        res[f"saved/{lib}"] = {"state": state_of(model, opt), "group_keys": [sorted(g) for g in
                               written["optim"]["param_groups"]], "keys": _checkpoint_keys(f"{out}/ckpt-{lib}")}
    for saver in LIBS:
        for loader in LIBS:
            model, opt, sched = build(loader, mesh)
            fresh = _options(opt)
            load(model, opt, sched, f"{out}/ckpt-{saver}")
            entry = {"state": state_of(model, opt), "options": _options(opt), "fresh_options": fresh}
            train(model, opt, range(HALF, STEPS), rank, 2, sched)
            entry["params"] = full(model.parameters())
            res[f"resumed/{saver}->{loader}"] = entry
    for lib in LIBS:
        model, opt, _ = build(lib, mesh)
        before = full(model.parameters())
        get_optimizer_state_dict(model, opt)  # on a fresh optimizer: DCP's step at lr 0
        entry = {"before": before, "after_priming": full(model.parameters()), "state": state_of(model, opt),
                 "lr": [g["lr"] for g in opt.param_groups]}
        train(model, opt, range(1), rank, 2)
        entry["grads"] = full(p.grad for p in model.parameters())
        entry["after_first"] = full(model.parameters())
        res[f"primed/{lib}"] = entry

        model, opt, _ = build(lib, mesh)
        train(model, opt, range(1), rank, 2)
        res[f"first/{lib}"] = {"after_first": full(model.parameters())}
    if rank == 0:
        torch.save(res, f"{out}/results.pt")
    dist.barrier()


def _options(opt):
    """Each group's options but lr, which the schedule sets."""
    return [{k: v for k, v in g.items() if k not in ("params", "lr")} for g in opt.param_groups]


def _checkpoint_keys(path):
    return sorted(dcp.FileSystemReader(path).read_metadata().state_dict_metadata)


if __name__ == "__main__":
    spawn(run, sys.argv[1])
