"""skip_nonfinite: a step whose gradients hold inf or NaN is skipped whole, and counted.

The decision is made once per step, for every group, before anything is
written, by one read-only pass over the gradients (:mod:`adamlab.backends.finite`).
Under FSDP2 each rank holds a shard of every gradient, so the verdict is
all-reduced (MAX) over the default process group whenever params are
DTensors; under DDP the gradients are already identical on every rank.

The counters live in every param group, so they survive ``state_dict``,
torch.distributed.checkpoint and a resume:

* ``nonfinite_skips``: steps skipped in all;
* ``nonfinite_streak``: steps skipped in a row, up to now;
* ``last_good_step``: how many steps had been applied at the last applied one.
"""

from __future__ import annotations

import torch

from ..backends import finite

COUNTERS = ("nonfinite_skips", "nonfinite_streak", "last_good_step")


def enabled(opt) -> bool:
    return any(g.get("skip_nonfinite") for g in opt.param_groups)


def gradients_are_finite(opt) -> bool:
    grads = [p.grad for g in opt.param_groups for p in g["params"] if p.grad is not None]
    ok = finite.all_finite(grads)
    params = [p for g in opt.param_groups for p in g["params"]]
    if any(hasattr(p, "to_local") for p in params) and torch.distributed.is_initialized():
        flag = torch.tensor([0 if ok else 1], device=params[0].to_local().device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        ok = not bool(flag.item())
    return ok


def counters(opt) -> dict[str, int]:
    group = opt.param_groups[0]
    return {k: int(group.get(k, 0)) for k in COUNTERS}


def record_skip(opt) -> None:
    """Count a skipped step, or refuse it once max_consecutive_skips is reached (nothing changes then)."""
    now = counters(opt)
    limit = min((g["max_consecutive_skips"] for g in opt.param_groups if g.get("max_consecutive_skips")),
                default=None)
    if limit is not None and now["nonfinite_streak"] >= limit:
        raise RuntimeError(
            f"{type(opt).__name__}: the last {now['nonfinite_streak']} steps all had inf or NaN gradients and "
            f"were skipped (max_consecutive_skips={limit}); this one has them too. The run is not recovering: "
            "look for the source of the non-finite values (lr too high, a loss that overflows, bad data)."
        )
    _set(opt, nonfinite_skips=now["nonfinite_skips"] + 1, nonfinite_streak=now["nonfinite_streak"] + 1,
         last_good_step=now["last_good_step"])


def record_applied(opt) -> None:
    now = counters(opt)
    _set(opt, nonfinite_skips=now["nonfinite_skips"], nonfinite_streak=0, last_good_step=now["last_good_step"] + 1)


def _set(opt, **values) -> None:
    for group in opt.param_groups:
        group.update(values)
