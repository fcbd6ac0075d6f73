"""The monitor's overhead: monitored and plain steps side by side, in one process, as ratios of medians.

Two optimizers step same-shaped params with the same gradients, one with a
monitor attached. Each repeat times a block of ``every`` steps of each,
alternating (so a busy machine slows both alike); the first block (kernel
build, state, sampled positions) is not timed. A block of ``every`` steps
holds exactly one monitored step, so the ratio is the amortised cost.

    python -m adamlab.monitor.bench [--quick] [--json]

or ``overhead()`` from Python (``adamlab bench`` can call it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

import adamlab

from .core import Monitor


def cases(quick: bool) -> dict:
    """name -> (param shapes, dtype); ``measure`` takes any other layout (the lab's bench has its own)."""
    big = (8 if quick else 32) * 2**20
    return {
        "one tensor fp32": ([(big,)], torch.float32),
        "one tensor bf16": ([(big,)], torch.bfloat16),
        "64 tensors fp32": ([(big // 64,)] * 64, torch.float32),
    }


def _timed(opt, n) -> float:
    start = time.perf_counter()
    for _ in range(n):
        opt.step()
    return time.perf_counter() - start


def measure(shapes, dtype, every: int, repeats: int, **monitor_kw) -> dict:
    """Median seconds per step, plain and monitored, and the median of the per-repeat ratios."""
    gen = torch.Generator().manual_seed(0)
    plain, watched = [], []
    for shape in shapes:
        p = torch.randn(shape, generator=gen).to(dtype)
        g = (torch.randn(shape, generator=gen) * 1e-3).to(dtype)
        for side in (plain, watched):
            q = torch.nn.Parameter(p.clone())
            q.grad = g
            side.append(q)
    opts = adamlab.AdamW(plain, lr=1e-3), adamlab.AdamW(watched, lr=1e-3)
    monitor = Monitor(opts[1], every=every, **monitor_kw)
    block = every
    _timed(opts[0], block), _timed(opts[1], block)
    monitor.read()
    times = {"plain": [], "monitored": []}
    for _ in range(repeats):
        times["plain"].append(_timed(opts[0], block) / block)
        times["monitored"].append(_timed(opts[1], block) / block)
        monitor.read()  # outside the timing: where a training loop reads is its own choice
    monitor.close()
    ratios = [m / p for m, p in zip(times["monitored"], times["plain"])]
    return {"plain_s": statistics.median(times["plain"]), "monitored_s": statistics.median(times["monitored"]),
            "ratio": statistics.median(ratios), "repeats": repeats}


def overhead(quick: bool = False, repeats: int | None = None, everies=(1, 100)) -> list[dict]:
    """One row per case and ``every``: the step ratio monitored / plain (median)."""
    rows = []
    for name, (shapes, dtype) in cases(quick).items():
        for every in everies:
            r = repeats or (5 if every > 1 else 9)
            result = measure(shapes, dtype, every, r)
            rows.append({"case": name, "params": sum(torch.Size(s).numel() for s in shapes),
                         "tensors": len(shapes), "every": every, **result})
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"Monitor overhead, AdamW step (median; {torch.get_num_threads()} threads, torch {torch.__version__})",
             f"{'case':>18} {'params':>7} {'tensors':>7} {'every':>5} {'plain ms':>9} {'monitored ms':>12} "
             f"{'ratio':>6}"]
    for r in rows:
        lines.append(f"{r['case']:>18} {r['params'] / 1e6:>6.1f}M {r['tensors']:>7} {r['every']:>5} "
                     f"{r['plain_s'] * 1e3:>9.2f} {r['monitored_s'] * 1e3:>12.2f} {r['ratio']:>5.3f}x")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8M-param tensors, a smaller layout")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = overhead(args.quick, args.repeats)
    print(json.dumps(rows, indent=1) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
