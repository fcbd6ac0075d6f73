"""``adamlab bench``: optimizer-step throughput, side by side with torch, against the memory ceiling.

Every contender steps the same parameter and gradient tensors (each keeps
its own state). Contenders alternate within each repeat, the first step
(build, state allocation) is excluded, and the median over repeats is
reported, so a noisy shared machine moves all contenders alike.
"""

from __future__ import annotations

import ctypes
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import torch

import adamlab
from adamlab.backends import build

# DRAM bytes per parameter per step of one fused pass (read + write)
BYTES_PER_PARAM = {"adamw": 16 + 12, "amsgrad": 20 + 16, "bf16": 12 + 10, "no-bc": 16 + 12}


@dataclass
class Variant:
    name: str
    dtype: torch.dtype
    adamlab_kw: dict
    torch_kw: dict


VARIANTS = {
    "adamw": Variant("adamw", torch.float32, {}, {}),
    "amsgrad": Variant("amsgrad", torch.float32, {"amsgrad": True}, {"amsgrad": True}),
    "bf16": Variant("bf16", torch.bfloat16, {}, {}),
    # torch has no switch for this: compared with torch's bias-corrected AdamW
    "no-bc": Variant("no-bc", torch.float32, {"bias_correction": False}, {}),
}


def gpt2_shapes(d_model=384, n_layer=6, vocab=50257, context=1024) -> list[tuple[int, ...]]:
    """GPT-2 small's tensor layout (tied embedding, biases, two LayerNorms per block), scaled down."""
    block = [(d_model,), (d_model,), (3 * d_model, d_model), (3 * d_model,), (d_model, d_model), (d_model,),
             (d_model,), (d_model,), (4 * d_model, d_model), (4 * d_model,), (d_model, 4 * d_model), (d_model,)]
    return [(vocab, d_model), (context, d_model)] + block * n_layer + [(d_model,), (d_model,)]


def many_small_shapes(n=2000, low=1000, high=20000, seed=0) -> list[tuple[int, ...]]:
    gen = torch.Generator().manual_seed(seed)
    return [(int(k),) for k in torch.randint(low, high + 1, (n,), generator=gen)]


CASES = {
    "a": ("one 32M-param tensor", lambda quick: [(8 * 2**20 if quick else 32 * 2**20,)]),
    "b": ("GPT-2 small layout at d_model 384, 6 layers (~30M params, 76 tensors)",
          lambda quick: gpt2_shapes(256, 2) if quick else gpt2_shapes()),
    "c": ("2000 tensors of 1k-20k elements", lambda quick: many_small_shapes(500 if quick else 2000)),
}


def contenders(variant: Variant) -> dict:
    lr, wd = 1e-3, 1e-2
    return {
        "adamlab": lambda ps: adamlab.AdamW(ps, lr=lr, weight_decay=wd, **variant.adamlab_kw),
        "torch-loop": lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=wd, foreach=False, **variant.torch_kw),
        "torch-foreach": lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=wd, foreach=True, **variant.torch_kw),
        "torch-fused": lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=wd, fused=True, **variant.torch_kw),
    }


def last_level_cache_bytes() -> int:
    for index in (3, 2):
        try:
            with open(f"/sys/devices/system/cpu/cpu0/cache/index{index}/size") as f:
                text = f.read().strip()
            return int(text[:-1]) * {"K": 2**10, "M": 2**20}[text[-1]]
        except (OSError, ValueError, KeyError):
            continue
    return 32 * 2**20


STREAMS = r"""
#include <stdint.h>
/* STREAM's triad: 2 reads, 1 write per element */
void triad(float* restrict a, const float* restrict b, const float* restrict c, float s, int64_t n, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
}
/* Adam's traffic without its arithmetic: read p, g, m, v; write p, m, v */
void adam_traffic(float* restrict p, const float* restrict g, float* restrict m, float* restrict v, float s,
                  int64_t n, int threads) {
    #pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; i++) { p[i] += s * g[i]; m[i] += s * g[i]; v[i] += s * g[i]; }
}
"""


def _median_seconds(fn, args, repeats) -> float:
    fn(*args)  # first touch of every page
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def stream_bandwidth(repeats=10) -> dict:
    """Bytes/s over fp32 arrays >= 4x the last-level cache, by OpenMP C loops built like the kernels.

    ``triad`` is STREAM's a = b + s c, counted as 16 bytes per element: its 12
    plus the read a write-allocate cache makes of a. ``adam_traffic`` moves
    Adam's 28 bytes (4 arrays read, 3 written) with no arithmetic: on a small
    core count it keeps more streams in flight than the triad, so it is the
    tighter ceiling for an optimizer step. Both are reported.
    """
    n = max(4 * last_level_cache_bytes() // 4, 16 * 2**20)
    lib = build.load_library(STREAMS)
    threads = torch.get_num_threads()
    a, b, c, d = torch.rand(n), torch.rand(n), torch.rand(n), torch.rand(n)
    lib.triad.argtypes = [ctypes.c_void_p] * 3 + [ctypes.c_float, ctypes.c_int64, ctypes.c_int]
    lib.adam_traffic.argtypes = [ctypes.c_void_p] * 4 + [ctypes.c_float, ctypes.c_int64, ctypes.c_int]
    triad = _median_seconds(lib.triad, (a.data_ptr(), b.data_ptr(), c.data_ptr(), 0.5, n, threads), repeats)
    adam = _median_seconds(
        lib.adam_traffic, (a.data_ptr(), b.data_ptr(), c.data_ptr(), d.data_ptr(), 0.0, n, threads), repeats
    )
    return {"triad": 16 * n / triad, "adam_traffic": 28 * n / adam}


def time_case(shapes, variant: Variant, repeats: int, progress=None) -> dict:
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen).to(variant.dtype).requires_grad_() for s in shapes]
    for p in params:
        p.grad = (torch.randn(p.shape, generator=gen) * 1e-2).to(variant.dtype)
    opts = {name: make(params) for name, make in contenders(variant).items()}
    first = {}
    for name, opt in opts.items():  # warm-up: state allocation, kernel build
        t = time.perf_counter()
        opt.step()
        first[name] = time.perf_counter() - t
    times = {name: [] for name in opts}
    for _ in range(repeats):
        for name, opt in opts.items():
            t = time.perf_counter()
            opt.step()
            times[name].append(time.perf_counter() - t)
        if progress:
            progress()
    n = sum(p.numel() for p in params)
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "params": n,
        "tensors": len(params),
        "mparams_per_s": {name: n / t / 1e6 for name, t in med.items()},
        "ratio_vs_torch_fused": med["torch-fused"] / med["adamlab"],
        "first_step_s": first,
    }


# torch.optim.Optimizer's constructor imports torch._dynamo (seconds, for torch as well),
# so the optimizer is built before the clock starts: the time is adamlab's own.
FIRST_STEP = (
    "import time, torch, adamlab\n"
    "p = torch.randn(1000, requires_grad=True); p.grad = torch.randn(1000)\n"
    "opt = adamlab.AdamW([p], amsgrad=True, weight_decay=0.05)\n"
    "t = time.perf_counter(); opt.step(); print(time.perf_counter() - t)\n"
)


def first_step_times() -> dict:
    """The first step in a fresh process: cold (empty kernel cache), then warm (built before)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "ADAMLAB_CACHE_DIR": cache}
        run = lambda: float(subprocess.run([sys.executable, "-c", FIRST_STEP], env=env, capture_output=True,  # noqa: E731
                                           text=True, check=True).stdout)
        return {"cold_s": run(), "warm_s": run()}


def add_arguments(parser) -> None:
    parser.add_argument("--cases", default="a,b,c", help="which cases: a (one big tensor), b (GPT-2 layout), c (many small)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"from {','.join(VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per contender (median reported)")
    parser.add_argument("--quick", action="store_true", help="smaller tensors, 5 repeats")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON only")


def measure(cases, variants, repeats, quick, progress_factory=None) -> dict:
    streams = stream_bandwidth()
    bandwidth = max(streams.values())  # the best the memory system was seen to deliver
    results = []
    for key in cases:
        label, shapes_for = CASES[key]
        for vname in variants:
            variant = VARIANTS[vname]
            advance = progress_factory(f"case {key} / {vname}", repeats) if progress_factory else None
            r = time_case(shapes_for(quick), variant, repeats, advance)
            ceiling = bandwidth / BYTES_PER_PARAM[vname] / 1e6
            results.append({"case": key, "label": label, "variant": vname, "bytes_per_param": BYTES_PER_PARAM[vname],
                            "ceiling_mparams_per_s": ceiling,
                            "adamlab_fraction_of_ceiling": r["mparams_per_s"]["adamlab"] / ceiling, **r})
    return {"bandwidth_gb_per_s": {k: v / 1e9 for k, v in streams.items()}, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "first_step": first_step_times(), "results": results}


def run(args) -> int:
    from .bench_report import print_report, progress_bars

    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    bad = [c for c in cases if c not in CASES] + [v for v in variants if v not in VARIANTS]
    if bad:
        print(f"unknown case or variant: {', '.join(bad)} (cases: {','.join(CASES)}; variants: {','.join(VARIANTS)})",
              file=sys.stderr)
        return 2
    if args.repeats < 1:
        print("--repeats must be >= 1", file=sys.stderr)
        return 2
    repeats = min(args.repeats, 5) if args.quick else args.repeats
    if args.json:
        print(json.dumps(measure(cases, variants, repeats, args.quick), indent=2))
        return 0
    with progress_bars() as factory:
        report = measure(cases, variants, repeats, args.quick, factory)
    print_report(report)
    return 0
