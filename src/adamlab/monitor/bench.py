"""The monitor's overhead: monitored and plain steps side by side, in one process, as ratios of medians.

Two optimizers step same-shaped params with the same gradients, one with a
monitor attached (``every`` steps apart). They step in turn, each first
half of the time, and every step is timed; the first ``every`` steps (kernel build, state, sampled
positions) are not. Medians of single steps resist the time slices a
shared machine takes from a run:

* ``monitored_step``: median over repeats of a monitored step / the plain step beside it;
* ``ratio``: (one monitored step + ``every - 1`` unmonitored ones) / ``every`` plain steps, from
  the medians of each kind (at ``every=100`` its noise is that of two medians of the same step);
* ``amortised``: 1 + (pairwise - 1) / every + the two hooks' cost on an unmonitored step (timed
  alone, microseconds) over the plain step: the same quantity from the steady parts.

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


def _timed_step(opt) -> float:
    start = time.perf_counter()
    opt.step()
    return time.perf_counter() - start


def measure(shapes, dtype, every: int, repeats: int, **monitor_kw) -> dict:
    """Median seconds of plain, monitored and unmonitored-but-attached steps, and the two ratios.

    The two optimizers step in turn, one step each, so that neighbouring
    steps, which a shared machine slows alike, are compared.
    """
    gen = torch.Generator().manual_seed(0)
    plain, watched = [], []
    for shape in shapes:
        p = torch.randn(shape, generator=gen).to(dtype)
        g = (torch.randn(shape, generator=gen) * 1e-3).to(dtype)
        for side in (plain, watched):  # copies each: neither finds the other's data in cache
            q = torch.nn.Parameter(p.clone())
            q.grad = g.clone()
            side.append(q)
    opts = adamlab.AdamW(plain, lr=1e-3), adamlab.AdamW(watched, lr=1e-3)
    monitor = Monitor(opts[1], every=every, **monitor_kw)
    for _ in range(every):  # not timed: kernel build, state, sampled positions
        opts[0].step(), opts[1].step()
    monitor.read()
    times = {"plain": [], "monitored": [], "attached": [], "pairs": []}
    for r in range(repeats):
        for i in range(every):  # the watched optimizer's first step of each block is monitored
            if (r + i) % 2:  # each goes first half of the time
                t_plain, t_watched = _timed_step(opts[0]), _timed_step(opts[1])
            else:
                t_watched, t_plain = _timed_step(opts[1]), _timed_step(opts[0])
            times["plain"].append(t_plain)
            times["monitored" if i == 0 else "attached"].append(t_watched)
            if i == 0:
                times["pairs"].append(t_watched / t_plain)
        monitor.read()  # outside the timing: where a training loop reads is its own choice
    monitor.close()
    med = {k: statistics.median(v) if v else 0.0 for k, v in times.items()}
    hooks = _hook_seconds(opts[1])
    return {"plain_s": med["plain"], "monitored_s": med["monitored"], "attached_s": med["attached"],
            "hooks_s": hooks, "monitored_step": med["pairs"],
            "ratio": (med["monitored"] + (every - 1) * med["attached"]) / (every * med["plain"]),
            "amortised": 1 + (med["pairs"] - 1) / every + (every - 1) / every * hooks / med["plain"],
            "repeats": repeats}


def _hook_seconds(opt, calls: int = 2000) -> float:
    """What an attached monitor adds to a step it does not monitor: its two hooks, timed alone."""
    probe = Monitor(opt, every=10**9)
    opt.step()  # the probe's one monitored step
    start = time.perf_counter()
    for _ in range(calls):
        probe._before(opt, (), {})
        probe._after(opt, (), {})
    seconds = (time.perf_counter() - start) / calls
    probe.close()
    return seconds


def overhead(quick: bool = False, repeats: int | None = None, everies=(1, 100)) -> list[dict]:
    """One row per case and ``every``."""
    rows = []
    for name, (shapes, dtype) in cases(quick).items():
        for every in everies:
            r = repeats or (25 if every == 1 else 7)
            result = measure(shapes, dtype, every, r)
            rows.append({"case": name, "params": sum(torch.Size(s).numel() for s in shapes),
                         "tensors": len(shapes), "every": every, **result})
    return rows


def table(rows: list[dict]) -> str:
    lines = [f"Monitor overhead on an AdamW step (medians of single steps; {torch.get_num_threads()} threads, "
             f"torch {torch.__version__})",
             f"{'case':>16} {'params':>7} {'tensors':>7} {'every':>5} {'plain ms':>9} {'monitored ms':>12} "
             f"{'others ms':>9} {'hooks us':>8} {'pairwise':>8} {'ratio':>7} {'amortised':>9}"]
    for r in rows:
        others = r["attached_s"] * 1e3 if r["every"] > 1 else float("nan")
        lines.append(f"{r['case']:>16} {r['params'] / 1e6:>6.1f}M {r['tensors']:>7} {r['every']:>5} "
                     f"{r['plain_s'] * 1e3:>9.2f} {r['monitored_s'] * 1e3:>12.2f} {others:>9.2f} "
                     f"{r['hooks_s'] * 1e6:>8.1f} {r['monitored_step']:>7.3f}x {r['ratio']:>6.3f}x "
                     f"{r['amortised']:>8.3f}x")
    lines.append("pairwise: monitored step / the plain step beside it; ratio: (one monitored + every-1 others) / "
                 "every plain, from medians; amortised: 1 + (pairwise-1)/every + hooks/plain")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8M-param tensors")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = overhead(args.quick, args.repeats)
    print(json.dumps(rows, indent=1) if args.json else table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
