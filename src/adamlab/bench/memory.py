"""Low-precision state on one large tensor: bytes per param, step throughput, and each storage's own ceiling.

Every contender steps the same params and gradients (each keeps its own
state); contenders alternate within each repeat and the median over repeats
is reported, so a noisy shared machine moves them all alike. The ceiling of
a storage is a C loop that reads and writes exactly the step's arrays (the
param, the gradient, the state buffers: fp32, bf16, or 8-bit codes with one
fp32 absmax per 256) with no arithmetic, shared out across threads as the
step is: a step cannot beat it, so "of ceiling" is how close a step comes
to moving only bytes. State bytes per param are measured from the state
tensors (``Optimizer.memory_report``).

Run ``python -m adamlab.bench.memory`` or ``python benchmarks/bench_memory.py``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch

import adamlab
from adamlab.backends.build import load_library

CHUNK = 1 << 15  # elements per work item, as the step's kernel shares them out
BLOCK = 256  # elements per absmax of 8-bit state

TRAFFIC = r"""
#include <stdint.h>
#include <stdlib.h>
/* One pass over a tensor's arrays: p and g (4 or 2 bytes), two states (4, 2 or 1 byte, 1 with an fp32 absmax
   per 256), each read and written back (g only read). "zero" is 0 at run time, so nothing changes. */
#define PASS(TP, TS) do { \
    TP* p = (TP*)t[0]; const TP* g = (const TP*)t[1]; TS* m = (TS*)t[2]; TS* v = (TS*)t[3]; \
    for (int64_t j = lo; j < hi; j++) { const TP d = g[j] & (TP)zero; p[j] ^= d; m[j] ^= (TS)d; v[j] ^= (TS)d; } \
} while (0)
void traffic(int64_t n_tensors, const int64_t* numels, char** ptrs, int param_bytes, int state_bytes,
             uint32_t zero, int n_threads, int64_t chunk) {
    int64_t n = 0;
    for (int64_t i = 0; i < n_tensors; i++) n += (numels[i] + chunk - 1) / chunk;
    int64_t* owner = (int64_t*)malloc(sizeof(int64_t) * (n + 1));
    int64_t* first = (int64_t*)malloc(sizeof(int64_t) * (n + 1));
    for (int64_t i = 0, c = 0; i < n_tensors; i++)
        for (int64_t s = 0; s < numels[i]; s += chunk, c++) { owner[c] = i; first[c] = s; }
    const int width = state_bytes == 1 ? 6 : 4;
    #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
    for (int64_t c = 0; c < n; c++) {
        const int64_t i = owner[c], lo = first[c], hi = lo + chunk < numels[i] ? lo + chunk : numels[i];
        char** t = ptrs + i * width;
        if (param_bytes == 4 && state_bytes == 4) PASS(uint32_t, uint32_t);
        else if (param_bytes == 4 && state_bytes == 2) PASS(uint32_t, uint16_t);
        else if (param_bytes == 4 && state_bytes == 1) PASS(uint32_t, uint8_t);
        else if (param_bytes == 2 && state_bytes == 2) PASS(uint16_t, uint16_t);
        if (state_bytes == 1) {
            uint32_t* am = (uint32_t*)t[4]; uint32_t* av = (uint32_t*)t[5];
            for (int64_t b = lo / 256; b < (hi + 255) / 256; b++) { am[b] ^= zero; av[b] ^= zero; }
        }
    }
    free(owner); free(first);
}
"""

_lib = None


def _library():
    global _lib
    if _lib is None:
        _lib = load_library(TRAFFIC)
        _lib.traffic.argtypes = [ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                                 ctypes.c_uint32, ctypes.c_int, ctypes.c_int64]
        _lib.traffic.restype = None
    return _lib


class Ceiling:
    """Stepped like an optimizer: the loads and stores of a step with ``state_bytes`` per state element."""

    def __init__(self, params: list[torch.Tensor], state_bytes: int):
        self.params, self.state_bytes = params, state_bytes
        dtype = {4: torch.int32, 2: torch.int16, 1: torch.uint8}[state_bytes]
        self.states = [[torch.zeros(p.numel(), dtype=dtype) for _ in range(2)] for p in params]
        if state_bytes == 1:
            for p, st in zip(params, self.states):
                st.extend(torch.zeros(-(-p.numel() // BLOCK), dtype=torch.int32) for _ in range(2))
        self.numels = (ctypes.c_int64 * len(params))(*(p.numel() for p in params))

    def bytes_per_param(self) -> float:
        p = self.params[0]
        per = 3 * p.element_size() + 4 * self.state_bytes
        return per + (16 / BLOCK if self.state_bytes == 1 else 0)

    def step(self) -> None:
        ptrs = np.array([t.data_ptr() for p, st in zip(self.params, self.states) for t in (p, p.grad, *st)],
                        dtype=np.int64)
        _library().traffic(len(self.params), self.numels, ptrs.ctypes.data, self.params[0].element_size(),
                           self.state_bytes, 0, torch.get_num_threads(), CHUNK)


@dataclass(frozen=True)
class Contender:
    label: str
    make: object  # params -> something with step()
    ceiling: str | None = None  # the label of its ceiling row


def fp32_params_case() -> dict[str, Contender]:
    lr, wd = 1e-3, 1e-2
    return {
        "adamlab fp32 state": Contender("adamlab fp32 state", lambda ps: adamlab.AdamW(ps, lr=lr, weight_decay=wd),
                                        "ceiling 28 B"),
        "adamlab bf16 state": Contender("adamlab bf16 state", lambda ps: adamlab.AdamW(
            ps, lr=lr, weight_decay=wd, state_precision="bf16"), "ceiling 20 B"),
        "adamlab 8-bit state": Contender("adamlab 8-bit state", lambda ps: adamlab.AdamW(
            ps, lr=lr, weight_decay=wd, state_precision="8bit"), "ceiling 16.06 B"),
        "torch fused": Contender("torch fused", lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=wd, fused=True)),
        "ceiling 28 B": Contender("ceiling 28 B", lambda ps: Ceiling(ps, 4)),
        "ceiling 20 B": Contender("ceiling 20 B", lambda ps: Ceiling(ps, 2)),
        "ceiling 16.06 B": Contender("ceiling 16.06 B", lambda ps: Ceiling(ps, 1)),
    }


def bf16_params_case() -> dict[str, Contender]:
    lr, wd = 1e-3, 1e-2
    return {
        "adamlab bf16 state": Contender("adamlab bf16 state", lambda ps: adamlab.AdamW(
            ps, lr=lr, weight_decay=wd, state_precision="bf16"), "ceiling 14 B"),
        "adamlab fp32 state": Contender("adamlab fp32 state", lambda ps: adamlab.AdamW(ps, lr=lr, weight_decay=wd)),
        "torch fused": Contender("torch fused", lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=wd, fused=True),
                                 "ceiling 14 B"),
        "ceiling 14 B": Contender("ceiling 14 B", lambda ps: Ceiling(ps, 2)),
    }


def time_case(numel: int, dtype: torch.dtype, contenders: dict[str, Contender], repeats: int,
              clock=time.perf_counter) -> dict:
    gen = torch.Generator().manual_seed(0)
    p = torch.randn(numel, generator=gen).to(dtype).requires_grad_()
    p.grad = (torch.randn(numel, generator=gen) * 1e-2).to(dtype)
    steppers = {name: c.make([p]) for name, c in contenders.items()}
    for s in steppers.values():  # state allocation, kernel builds
        s.step()
    times = {name: [] for name in steppers}
    for _ in range(repeats):
        for name, s in steppers.items():
            t = clock()
            s.step()
            times[name].append(clock() - t)
    mps = {name: numel / statistics.median(ts) / 1e6 for name, ts in times.items()}
    rows = {}
    for name, c in contenders.items():
        row = {"mparams_per_s": mps[name]}
        stepper = steppers[name]
        if isinstance(stepper, Ceiling):
            row["bytes_per_param"] = stepper.bytes_per_param()
        elif isinstance(stepper, adamlab.Optimizer):
            row["state_bytes_per_param"] = stepper.memory_report()["bytes_per_param"]
        if c.ceiling in mps:
            row["of_ceiling"] = mps[name] / mps[c.ceiling]
        rows[name] = row
    return {"params": numel, "dtype": str(dtype).replace("torch.", ""), "rows": rows}


TARGETS = (  # (case, contender, against, minimum ratio of throughputs) from the low-precision issue
    ("fp32_params", "adamlab bf16 state", "adamlab fp32 state", 1.3),
    ("fp32_params", "adamlab 8-bit state", "adamlab fp32 state", 1.5),
    ("bf16_params", "adamlab bf16 state", "torch fused", 1.0),
)
MIN_OF_CEILING = 0.85


IN_CACHE = 1 << 19  # elements: the arrays of every storage fit the last-level cache


def compute_cost(repeats: int) -> dict:
    """ns per element of each storage's step on one thread, the arrays in cache: what it costs besides memory.

    Timed in the thread's CPU time, so other work on a shared machine does not count.
    """
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = time_case(IN_CACHE, torch.float32, {k: v for k, v in fp32_params_case().items()
                                                   if k.startswith("adamlab")}, 4 * repeats, time.thread_time)["rows"]
    finally:
        torch.set_num_threads(old)
    return {name: 1e3 / r["mparams_per_s"] for name, r in rows.items()}


def measure(quick: bool = False, repeats: int = 10, numel: int | None = None) -> dict:
    """Both cases, ratios and targets; JSON-ready."""
    numel = numel or (8 << 20 if quick else 32 << 20)
    repeats = min(repeats, 5) if quick else repeats
    cases = {"fp32_params": time_case(numel, torch.float32, fp32_params_case(), repeats),
             "bf16_params": time_case(numel, torch.bfloat16, bf16_params_case(), repeats)}
    checks = []
    for case, name, against, minimum in TARGETS:
        rows = cases[case]["rows"]
        ratio = rows[name]["mparams_per_s"] / rows[against]["mparams_per_s"]
        checks.append({"case": case, "contender": name, "against": against, "ratio": ratio, "minimum": minimum,
                       "met": ratio >= minimum})
    for name in ("adamlab bf16 state", "adamlab 8-bit state"):
        share = cases["fp32_params"]["rows"][name]["of_ceiling"]
        checks.append({"case": "fp32_params", "contender": name, "against": "its ceiling", "ratio": share,
                       "minimum": MIN_OF_CEILING, "met": share >= MIN_OF_CEILING})
    return {"threads": torch.get_num_threads(), "torch": torch.__version__, "repeats": repeats, "cases": cases,
            "targets": checks, "ns_per_element_in_cache": compute_cost(repeats)}


def report_lines(report: dict) -> list[str]:
    lines = [f"Low-precision state, one tensor, {report['threads']} threads, median of {report['repeats']} steps "
             f"(torch {report['torch']})"]
    for key, case in report["cases"].items():
        rows = case["rows"]
        base = rows["adamlab fp32 state"]["mparams_per_s"]
        fused = rows["torch fused"]["mparams_per_s"]
        lines.append(f"\n{key}: {case['params'] / 1e6:.1f}M {case['dtype']} params")
        lines.append(f"  {'contender':22s} {'Mparams/s':>10s} {'vs fp32':>8s} {'vs fused':>9s} {'of ceil.':>9s} "
                     f"{'state B/param':>14s}")
        for name, r in rows.items():
            ceiling = f"{100 * r['of_ceiling']:.0f}%" if "of_ceiling" in r else ""
            state = r.get("state_bytes_per_param", r.get("bytes_per_param"))
            state = f"{state:.3f}" + (" (moved)" if "bytes_per_param" in r else "") if state is not None else ""
            lines.append(f"  {name:22s} {r['mparams_per_s']:10.0f} {r['mparams_per_s'] / base:7.2f}x "
                         f"{r['mparams_per_s'] / fused:8.2f}x {ceiling:>9s} {state:>14s}")
    cost = report["ns_per_element_in_cache"]
    lines.append(f"\nOne thread, {IN_CACHE >> 10}k params in cache (the step's cost besides memory): "
                 + ", ".join(f"{name} {ns:.2f} ns/param" for name, ns in cost.items()))
    lines.append("\nTargets:")
    for t in report["targets"]:
        lines.append(f"  {t['case']}: {t['contender']} vs {t['against']}: {t['ratio']:.2f} "
                     f"(needs >= {t['minimum']:.2f}) {'met' if t['met'] else 'NOT met'}")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per contender, >= 1 (median reported)")
    parser.add_argument("--quick", action="store_true", help="an 8M-param tensor, at most 5 repeats")
    parser.add_argument("--numel", type=int, default=None, help="params in the tensor (default 32M, quick 8M)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON only")


def run(args) -> int:
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    if args.numel is not None and args.numel < 1:
        raise ValueError(f"--numel must be >= 1, got {args.numel}")
    report = measure(args.quick, args.repeats, args.numel)
    print(json.dumps(report, indent=2) if args.json else "\n".join(report_lines(report)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="adamlab.bench.memory", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except ValueError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")


if __name__ == "__main__":
    sys.exit(main())
