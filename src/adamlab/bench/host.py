"""The step's host work on many tiny tensors, where the arithmetic is nothing and the bookkeeping is all.

2000 params of 16 elements each: every contender steps the same tensors in
turn (each keeps its own state), and the median step is reported. adamlab's
step is then split: its preparation (counters, plan, the check of every
array against what its kernel was built for, the launch tables), staged but
not applied, beside the bare reading of the same arrays' pointers that any
launch of a fused kernel must do.
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


def preparation_seconds(opt, repeats: int) -> dict:
    """adamlab's step preparation for group 0 (staged, never applied), and the pointer reading beside it."""
    from adamlab.optim.slots import Stage  # the step's own staging, run without its writes

    group = opt.param_groups[0]
    flat = [a for p in group["params"] for a in (p, p.grad, *opt.state[p].values()) if a.dim()]

    def prepare():
        Stage(opt).add_group(0, group, None, False)

    def pointers():
        np.array(list(map(torch.Tensor.data_ptr, flat)), dtype=np.int64)

    return {"prepare_s": median_seconds(prepare, repeats), "pointers_s": median_seconds(pointers, repeats),
            "arrays": len(flat)}


def measure(repeats: int = 50, tensors: int = TENSORS) -> dict:
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
            **preparation_seconds(contenders["adamlab"], repeats),
            "vs_torch_fused": steps["torch-fused"] / steps["adamlab"],
            "vs_torch_foreach": steps["torch-foreach"] / steps["adamlab"]}


def report_lines(report: dict) -> list[str]:
    lines = [f"Host work: {report['tensors']} tensors of {report['numel']} elements, median of "
             f"{report['repeats']} steps"]
    for name, sec in report["step_s"].items():
        lines.append(f"  {name:14s} {sec * 1e3:8.3f} ms/step")
    lines.append(f"  adamlab is {report['vs_torch_fused']:.2f}x torch fused and {report['vs_torch_foreach']:.2f}x "
                 "torch foreach (above 1: faster)")
    lines.append(f"  adamlab's preparation {report['prepare_s'] * 1e3:.3f} ms/step, of which reading the "
                 f"{report['arrays']} arrays' pointers alone takes {report['pointers_s'] * 1e3:.3f} ms")
    return lines
