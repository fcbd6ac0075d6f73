"""What the 2-rank gloo scripts share: the process group, a small model, the data, the training loop.

Each rank sees its half of every batch; DDP, ZeRO and FSDP average the
gradients, so two ranks must match one process on the whole batch.
"""

import os
import sys

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by the spawned ranks

STEPS, BATCH, LR = 12, 16, 1e-2


def make_model():
    torch.manual_seed(0)
    # odd sizes give uneven shards and partitions across the two ranks
    return torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.Tanh(), torch.nn.Linear(9, 3))


def batches():
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(BATCH, 6, generator=gen), torch.randn(BATCH, 3, generator=gen)) for _ in range(STEPS)]


def train(model, opt, steps, rank=0, world=1, sched=None):
    """Run the given steps (a range over batches()) on this rank's half of each batch."""
    data = batches()
    for step in steps:
        x, y = data[step]
        shard = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
        loss = torch.nn.functional.mse_loss(model(x[shard]), y[shard])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()


def full(tensors):
    """Whole tensors from DTensors (a collective), plain tensors as they are, detached."""
    return [(t.full_tensor() if hasattr(t, "full_tensor") else t).detach().clone() for t in tensors]


def spawn(fn, out, *args):
    """Run fn(rank, out, *args) on 2 ranks of a gloo group with a file rendezvous in out."""
    mp.spawn(_rank, args=(fn, out, args), nprocs=2, join=True)


def _rank(rank, fn, out, args):
    torch.set_num_threads(1)  # two ranks on two cores
    dist.init_process_group("gloo", init_method=f"file://{out}/rendezvous", rank=rank, world_size=2)
    try:
        fn(rank, out, *args)
        dist.barrier()  # no rank closes its connections while the other still uses them
    finally:
        dist.destroy_process_group()
    # The rank's work and files are done. Skip interpreter teardown, where gloo's
    # worker threads can rarely abort the process (SIGABRT) after a clean run.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

