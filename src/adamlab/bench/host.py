"""The step's host work on many tiny tensors, where the arithmetic is nothing and the bookkeeping is all.

2000 params of 16 elements each: every contender steps the same tensors in
turn (each keeps its own state), and the median step is reported. adamlab's
per-step check of every array against what its kernels were built for
(counts, dtypes, contiguity, pointers) is then timed alone, both as it runs
(one C++ call, :mod:`adamlab.backends.hostcheck`) and asked in Python, beside
the bare reading of the same arrays' pointers in Python that any launch of a
fused kernel needs. The target: the whole check costs no more than that bare
reading.
"""

from __future__ import annotations

import statistics

import numpy as np
import torch

import adamlab

from .timing import in_turn, median_seconds

TENSORS, NUMEL = 2000, 16


def _params(tensors: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(NUMEL, generator=gen).requires_grad_() for _ in range(tensors)]
    for p in params:
        p.grad = torch.randn(NUMEL, generator=gen) * 1e-2
    return params


def check_seconds(opt, repeats: int) -> dict:
    """The per-launch check of group 0's arrays as the CPU backend runs it each step (counts, dtypes,
    contiguity, pointers against those its kernels were built for), and the bare pointer reading beside it."""
    from types import SimpleNamespace

    from adamlab.backends import cpu, hostcheck
    from adamlab.backends.dispatch import Bucket
    from adamlab.optim.counters import Counters

    helper = hostcheck.wait()  # built (once per machine) or loaded before anything is timed
    group = opt.param_groups[0]
    plan = opt.algorithm.plan(group, Counters({"step": 2.0}, torch.float32), False)
    names = plan.config.state_names()
    flat = [a for p in group["params"] for a in (p, p.grad, *(opt.state[p][n] for n in names))]
    memo, scalars = {}, SimpleNamespace(**{k: float(v) for k, v in plan.scalars.items()})

    def check():
        bucket = Bucket(plan.config, None, flat, 2 + len(names), memo, None)
        bucket.scalars = scalars
        cpu._contiguous_layout(bucket, False)

    def pointers():
        np.array(list(map(torch.Tensor.data_ptr, flat)), dtype=np.int64)

    check()  # kernels found and the layout built once, as on a step's first launch
    with hostcheck.using(False):
        python_s = median_seconds(check, repeats)
    return {"check_s": median_seconds(check, repeats), "python_check_s": python_s,
            "pointers_s": median_seconds(pointers, repeats), "arrays": len(flat),
            "helper": helper, "helper_failure": hostcheck.failure}


def measure(repeats: int = 50, tensors: int = TENSORS) -> dict:
    from adamlab.backends import hostcheck

    hostcheck.wait()  # built (once per machine) or loaded before anything is timed
    params = _params(tensors)
    contenders = {
        "adamlab": adamlab.AdamW(params, lr=1e-3, weight_decay=1e-2),
        "torch-fused": torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, fused=True),
        "torch-foreach": torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-2, foreach=True),
    }
    for opt in contenders.values():
        opt.step()  # state allocation and kernel build, not timed
    times = in_turn({name: opt.step for name, opt in contenders.items()}, repeats)
    steps = {name: statistics.median(ts) for name, ts in times.items()}
    return {"tensors": tensors, "numel": NUMEL, "repeats": repeats, "step_s": steps,
            **check_seconds(contenders["adamlab"], repeats),
            "vs_torch_fused": steps["torch-fused"] / steps["adamlab"],
            "vs_torch_foreach": steps["torch-foreach"] / steps["adamlab"]}


def report_lines(report: dict) -> list[str]:
    lines = [f"Host work: {report['tensors']} tensors of {report['numel']} elements, median of "
             f"{report['repeats']} steps"]
    for name, sec in report["step_s"].items():
        lines.append(f"  {name:14s} {sec * 1e3:8.3f} ms/step")
    lines.append(f"  adamlab is {report['vs_torch_fused']:.2f}x torch fused and {report['vs_torch_foreach']:.2f}x "
                 "torch foreach (above 1: faster)")
    check, python, bare = (report[k] * 1e3 for k in ("check_s", "python_check_s", "pointers_s"))
    how = "one C++ call" if report["helper"] else f"asked in Python: helper unavailable, {report['helper_failure']}"
    lines.append(f"  adamlab's per-step check of its {report['arrays']} arrays (counts, dtypes, contiguity, "
                 f"pointers): {check:.3f} ms ({how}); asked in Python {python:.3f} ms")
    lines.append(f"  bare reading of their pointers in Python (any launch needs them): {bare:.3f} ms")
    lines.append(f"  Target: the check costs no more than the bare reading: {check / bare:.2f}x "
                 f"{'met' if check <= bare else 'NOT met'}")
    return lines
