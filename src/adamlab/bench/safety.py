"""What ``skip_nonfinite=True`` costs: the fused AdamW step with and without it, on one large tensor.

Two optimizers step same-valued params with the same finite gradients, in
turn, and the median step of each is reported with their ratio. With the
option on, every gradient is read once more before the update (the step is
all-or-nothing, so the verdict must be known before any byte is written):
the ratio is that pass's share.
"""

from __future__ import annotations

import statistics

import torch

import adamlab

from .timing import in_turn

TARGET = 1.10  # the most the check may add to a step


def contenders(numel: int) -> dict:
    """Two AdamW optimizers, without and with the check, on equal params with the same finite gradient."""
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(numel, generator=gen)
    grad = torch.randn(numel, generator=gen) * 1e-2
    opts = {}
    for name, skip in (("plain", False), ("skip_nonfinite", True)):
        p = start.clone().requires_grad_()
        p.grad = grad
        opts[name] = adamlab.AdamW([p], lr=1e-3, weight_decay=1e-2, skip_nonfinite=skip)
    return opts


def measure(numel: int = 32 << 20, repeats: int = 15) -> dict:
    opts = contenders(numel)
    for opt in opts.values():
        opt.step()  # state and kernels, not timed
    times = in_turn({name: opt.step for name, opt in opts.items()}, repeats)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    ratio = med["skip_nonfinite"] / med["plain"]
    return {"numel": numel, "repeats": repeats, "threads": torch.get_num_threads(), "step_s": med,
            "ratio": ratio, "target": TARGET, "met": ratio <= TARGET}


def report_lines(report: dict) -> list[str]:
    s = report["step_s"]
    return [f"skip_nonfinite on one tensor of {report['numel'] / 1e6:.1f}M fp32 params, median of "
            f"{report['repeats']} steps, {report['threads']} threads",
            f"  plain {s['plain'] * 1e3:.2f} ms, skip_nonfinite {s['skip_nonfinite'] * 1e3:.2f} ms: "
            f"{report['ratio']:.3f}x (target <= {report['target']:.2f}: {'met' if report['met'] else 'NOT met'})"]
