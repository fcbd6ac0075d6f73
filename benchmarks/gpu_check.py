"""The Triton backend on a GPU: exactness, throughput, peak memory and a CUDA-graph capture, in one run.

On a machine with one CUDA GPU (about 3-5 minutes; a CUDA build of torch brings triton):

    pip install torch -e ".[gpu]"
    python benchmarks/gpu_check.py --json gpu_check.json

1. exactness: the Triton kernel on the GPU against the C loop on the same inputs copied to the CPU
   (bitwise expected, NaNs compared as NaNs), for ten configurations in fp64/fp32/fp16/bf16, for the
   capturable device step and for AMP; against torch's fused CUDA AdamW over 100 steps (tolerance); and
   the compiled PTX read back for approximate division or square root and flush-to-zero;
2. throughput: ms per step, GB/s and % of the measured copy bandwidth for adamlab, torch fused=True and
   torch foreach=True on (a) one 256M-param fp32 tensor, (b) GPT-2 medium's tensors, (c) 10,000 tensors
   of 1k-20k elements, (d) GPT-2 medium in bf16 (adamlab keeps fp32 state, torch bf16), plus a sweep of
   the kernel's block size on (a);
3. peak memory during step() above the memory before it, for each contender;
4. a training step with capturable=True and a Tensor lr captured in a CUDA graph and replayed, against
   the same steps run eagerly.

``--cpu`` runs the same code with tiny sizes in Triton's interpreter on CPU tensors: CI runs it
(tests/test_gpu_check.py) so that the first GPU run measures instead of debugging. Its timings are
not measurements.
"""

from __future__ import annotations

import os
import sys

CPU_MODE = "--cpu" in sys.argv
if CPU_MODE:
    os.environ["TRITON_INTERPRET"] = "1"  # must be set before triton is imported

import argparse  # noqa: E402
import copy  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
import warnings  # noqa: E402

import torch  # noqa: E402

import adamlab  # noqa: E402
from adamlab.backends import triton_launch  # noqa: E402
from adamlab.bench.cases import gpt2_shapes, many_small_shapes  # noqa: E402

DEVICE = torch.device("cpu" if CPU_MODE else "cuda")
CUDA = DEVICE.type == "cuda"
BACKEND = "triton"  # on CUDA this is also the default; named so that a fallback cannot pass unnoticed

SIZES = {
    "gpu": dict(exact=[1, 1000, (1 << 16) + 5, 3 * (1 << 16) + 2048 + 7], exact_steps=10, configs=None,
                torch_steps=100, torch_numel=1 << 20, repeats=3,
                cases={"a": ("one 256M-param fp32 tensor", [(256 * 2**20,)], torch.float32),
                       "b": ("GPT-2 medium (355M params, 294 tensors)", gpt2_shapes(1024, 24), torch.float32),
                       "c": ("10,000 tensors of 1k-20k elements", many_small_shapes(10000), torch.float32),
                       "d": ("GPT-2 medium, bf16 params", gpt2_shapes(1024, 24), torch.bfloat16)},
                sweep=[(1024, 4), (2048, 4), (2048, 8), (4096, 8)], graph_steps=20),
    "cpu": dict(exact=[1, 300, 2 * 2048 + 3], exact_steps=3, configs=3, torch_steps=5, torch_numel=600,
                repeats=1,
                cases={"a": ("one tensor", [(4096,)], torch.float32),
                       "b": ("GPT-2 layout, tiny", gpt2_shapes(16, 1, vocab=64, context=16), torch.float32),
                       "c": ("many small tensors", many_small_shapes(20, 10, 50), torch.float32),
                       "d": ("GPT-2 layout, tiny, bf16", gpt2_shapes(16, 1, vocab=64, context=16), torch.bfloat16)},
                sweep=[(256, 4), (512, 4)], graph_steps=2),
}["cpu" if CPU_MODE else "gpu"]

CONFIGS = [
    ("adamw_amsgrad_maximize", "AdamW", dict(amsgrad=True, maximize=True, weight_decay=0.1)),
    ("radam_decoupled", "RAdam", dict(weight_decay=0.1, decoupled_weight_decay=True)),
    ("nadam_l2", "NAdam", dict(weight_decay=0.1)),
    ("adam", "Adam", {}),
    ("adam_amsgrad_l2", "Adam", dict(amsgrad=True, weight_decay=0.1)),
    ("adamw_schedule_no_bc", "AdamW", dict(decay_scale="schedule", bias_correction=False, weight_decay=0.05)),
    ("adamax", "Adamax", {}),
    ("adagrad", "Adagrad", dict(lr_decay=1e-3)),
    ("sgd_nesterov_l2", "SGD", dict(momentum=0.9, nesterov=True, weight_decay=0.1)),
    ("rmsprop_centered_momentum", "RMSprop", dict(centered=True, momentum=0.9)),
][: SIZES["configs"]]
DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
# grads that probe the conversions: zeros of both signs, denormals, values between bf16/fp16 neighbours,
# fp16's largest and an overflow; and a tensor of non-finite grads (NaNs compared as NaNs)
SPECIAL = [0.0, -0.0, 1e-45, -3e-39, 1e-20, 1e-8, 3.14, 0.26914, 1 + 2**-8, 1 + 3 * 2**-9, 65504.0, 7e4, -1e-5]
NONFINITE = [float("inf"), float("-inf"), float("nan"), 1.0]


def sync() -> None:
    if CUDA:
        torch.cuda.synchronize()


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


# ------------------------------------------------------------------ 1. exactness


def trajectory(make, dtype, steps, device, backend, amp=False, capturable=False):
    """Params, states (and grads) on the CPU after `steps` seeded steps with the lr changing each step."""
    gen = torch.Generator().manual_seed(0)
    host = [torch.randn(n, generator=gen) for n in SIZES["exact"]] + [torch.randn(len(SPECIAL), generator=gen),
                                                                    torch.randn(len(NONFINITE), generator=gen)]
    ps = [h.to(dtype).to(device).requires_grad_() for h in host]
    kw = {"capturable": True} if capturable else {}
    opt = make(ps, backend=backend, **kw)
    base = opt.param_groups[0]["lr"]
    for t in range(1, steps + 1):
        opt.param_groups[0]["lr"] = base * (1.0 + 0.5 * torch.sin(torch.tensor(0.7 * t)).item())
        scale = 1024.0 if amp else 1.0
        for k, p in enumerate(ps):
            g = torch.randn(p.shape, generator=gen)
            if k == len(ps) - 2:
                g = torch.tensor(SPECIAL)
            if k == len(ps) - 1:
                g = torch.tensor(NONFINITE) if t == 2 else g
            p.grad = (g * scale).to(dtype).to(device)
        if amp:
            opt.grad_scale = torch.tensor(scale, device=device)
            opt.found_inf = torch.tensor(1.0 if t == 3 else 0.0, device=device)
        opt.step()
    sync()
    arrays = [p.detach().cpu() for p in ps] + [p.grad.cpu() for p in ps]
    for p in ps:
        arrays += [v.detach().cpu() for k, v in sorted(opt.state[p].items()) if torch.is_tensor(v)]
    return arrays


def difference(a: torch.Tensor, b: torch.Tensor) -> tuple[int, int]:
    """(elements whose bits differ, NaNs counted equal; the largest distance in ulps)."""
    if a.dtype != b.dtype or a.shape != b.shape:
        return max(a.numel(), 1), -1
    if not a.is_floating_point():
        return int((a != b).sum()), 0
    nan = torch.isnan(a) & torch.isnan(b)
    a, b = a[~nan], b[~nan]
    ints = {8: torch.int64, 4: torch.int32, 2: torch.int16}[a.element_size()]
    ia, ib = a.view(ints).long(), b.view(ints).long()
    bits = 8 * a.element_size() - 1
    mag = (1 << bits) - 1
    oa, ob = torch.where(ia < 0, -(ia & mag), ia), torch.where(ib < 0, -(ib & mag), ib)
    return int((ia != ib).sum()), int((oa - ob).abs().max()) if len(oa) else 0


def compare_runs(got, want) -> tuple[int, int]:
    worst = [difference(x, y) for x, y in zip(got, want)]
    return sum(w[0] for w in worst) + abs(len(got) - len(want)), max((w[1] for w in worst), default=0)


def exactness(results: dict) -> bool:
    section("1a. Triton kernel on the device vs the C loop on CPU copies (bits differing, max ulps)")
    rows, ok = [], True
    variants = [("plain", {}), ("capturable", {"capturable": True}), ("amp", {"amp": True})]
    for name, cls, kw in CONFIGS:
        make = lambda ps, _cls=cls, _kw=kw, **more: getattr(adamlab, _cls)(ps, lr=1e-2, **_kw, **more)  # noqa: E731
        for dtype in DTYPES:
            for variant, extra in variants:
                no_capturable = cls in ("Adagrad", "SGD") and variant == "capturable"  # no such argument
                if variant != "plain" and (dtype == torch.float64 or no_capturable):
                    continue
                steps, row = SIZES["exact_steps"], {"config": name, "dtype": str(dtype)[6:], "variant": variant}
                try:
                    got = trajectory(make, dtype, steps, DEVICE, BACKEND, **extra)
                    want = trajectory(make, dtype, steps, torch.device("cpu"), "c", amp=extra.get("amp", False))
                    differ, ulps = compare_runs(got, want)
                    row.update(bits_differ=differ, max_ulps=ulps)
                    print(f"  {name:28s} {row['dtype']:9s} {variant:10s} bits differ: {differ:6d}  max ulps: {ulps}")
                except Exception as e:  # one configuration's failure must not hide the others' results
                    traceback.print_exc()
                    row.update(bits_differ=-1, error=f"{type(e).__name__}: {e}")
                ok &= row["bits_differ"] == 0
                rows.append(row)
    results["exact_vs_c"] = rows
    print(f"  -> {'all bitwise equal' if ok else 'DIFFERENCES (see above)'}")

    section("1b. adamlab AdamW vs torch AdamW(fused=True) on the device, fp32")
    gen = torch.Generator().manual_seed(1)
    init = torch.randn(SIZES["torch_numel"], generator=gen)
    ps = [init.clone().to(DEVICE).requires_grad_(), init.clone().to(DEVICE).requires_grad_()]
    opts = [adamlab.AdamW([ps[0]], lr=1e-3, weight_decay=0.1, backend=BACKEND),
            torch.optim.AdamW([ps[1]], lr=1e-3, weight_decay=0.1, fused=True)]
    for _ in range(SIZES["torch_steps"]):
        g = torch.randn(init.shape, generator=gen).to(DEVICE)
        for p, opt in zip(ps, opts):
            p.grad = g.clone()
            opt.step()
    sync()
    a, b = ps[0].detach().double(), ps[1].detach().double()
    rel = float((a - b).abs().max() / b.abs().max())
    frac = float((a != b).double().mean())
    results["vs_torch_fused"] = {"steps": SIZES["torch_steps"], "max_rel_diff": rel, "fraction_differing": frac}
    print(f"  {SIZES['torch_steps']} steps: max |diff| / max |p| = {rel:.3g}; elements differing: {100 * frac:.2f}%"
          f" ({'within' if rel <= 1e-5 else 'OUTSIDE'} 1e-5)")

    section("1c. PTX of the compiled kernels")
    counts: dict = {}
    for kernel in triton_launch.compiled.values():
        ptx = getattr(kernel, "asm", {}).get("ptx", "") if kernel is not None else ""
        for needle in ("div.full", "div.approx", "sqrt.approx", "rsqrt", "ex2.approx", ".ftz", "div.rn", "sqrt.rn",
                       "fma.rn"):
            counts[needle] = counts.get(needle, 0) + ptx.count(needle)
    banned = sum(counts.get(k, 0) for k in ("div.full", "div.approx", "sqrt.approx", "rsqrt", "ex2.approx", ".ftz"))
    results["ptx"] = {"kernels": len(triton_launch.compiled), "counts": counts, "approximate_or_ftz": banned}
    if not triton_launch.compiled:
        print("  no compiled kernels (the interpreter compiles nothing)")
    else:
        print(f"  {len(triton_launch.compiled)} kernels; instruction counts: {counts}")
        print(f"  -> {'no approximate or flush-to-zero instruction' if banned == 0 else 'APPROXIMATE INSTRUCTIONS'}")
        ok &= banned == 0
    return ok


# ------------------------------------------------------------------ 2-3. throughput and memory


def copy_bandwidth() -> float:
    """Bytes per second of a device-to-device copy (read + write), median of 10, arrays >> L2."""
    n = (1 << 29) if CUDA else (1 << 20)
    pair = [torch.empty(n, device=DEVICE), torch.empty(n, device=DEVICE)]
    ms = timed(lambda: pair[1].copy_(pair[0]))[0]
    pair.clear()
    return 2 * 4 * n / (ms / 1e3)


def timed(fn) -> tuple[float, float]:
    """(median ms per call on the device timeline, L2 flushed; median host µs per call)."""
    fn()
    sync()
    if CUDA:
        import triton.testing

        ms = triton.testing.do_bench(fn, warmup=10, rep=200, return_mode="median")
    else:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
        ms = statistics.median(times)
    host = []
    for _ in range(10):
        t = time.perf_counter()
        fn()
        host.append((time.perf_counter() - t) * 1e6)
    sync()
    return ms, statistics.median(host)


def contenders(dtype):
    lr, wd = 1e-3, 1e-2
    return {
        "adamlab": lambda ps: adamlab.AdamW(ps, lr=lr, weight_decay=wd, backend=BACKEND),
        "torch-fused": lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=wd, fused=True),
        "torch-foreach": lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=wd, foreach=True),
    }


def bytes_per_param(name: str, dtype) -> int:
    """Read p, g, m, v and write p, m, v; adamlab keeps fp32 state for bf16 params, torch bf16 state."""
    width = 2 if dtype == torch.bfloat16 else 4
    state = 4 if name == "adamlab" else width
    return 2 * width + 2 * state + width + 2 * state


def peak_extra_bytes(opt) -> int:
    """Memory allocated during one step above the memory before it."""
    if not CUDA:
        return -1
    sync()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    opt.step()
    sync()
    return torch.cuda.max_memory_allocated() - before


def throughput(results: dict, bandwidth: float) -> None:
    section(f"2-3. Step throughput and peak memory (copy bandwidth {bandwidth / 1e9:.0f} GB/s)")
    print(f"  {'case':4s} {'contender':14s} {'params':>8s} {'tensors':>7s} {'ms':>8s} {'host us':>8s} {'GB/s':>7s} "
          f"{'% copy':>6s} {'vs fused':>8s} {'peak MB':>8s}")
    rows = []
    for key, (label, shapes, dtype) in SIZES["cases"].items():
        try:
            rows += measure_case(key, label, shapes, dtype, bandwidth)
        except Exception as e:  # report it and measure the other cases
            traceback.print_exc()
            rows.append({"case": key, "label": label, "error": f"{type(e).__name__}: {e}"})
        if CUDA:
            torch.cuda.empty_cache()
    results["throughput"] = rows
    goals(results, rows)


def measure_case(key, label, shapes, dtype, bandwidth) -> list:
    """One case's rows: every contender steps the same params and grads, each with its own state."""
    rows = []
    gen = torch.Generator(device=DEVICE).manual_seed(0)
    params = [torch.randn(s, generator=gen, device=DEVICE).to(dtype).requires_grad_() for s in shapes]
    for p in params:
        p.grad = (torch.randn(p.shape, generator=gen, device=DEVICE) * 1e-2).to(dtype)
    n = sum(p.numel() for p in params)
    opts = {name: make(params) for name, make in contenders(dtype).items()}
    for opt in opts.values():
        opt.step()  # state, kernel compilation
    samples: dict = {name: [] for name in opts}
    for _ in range(SIZES["repeats"]):  # contenders alternate, so drift on the machine moves them alike
        for name, opt in opts.items():
            samples[name].append(timed(opt.step))
    peaks = {name: peak_extra_bytes(opt) for name, opt in opts.items()}
    med = {name: tuple(statistics.median(s[k] for s in v) for k in (0, 1)) for name, v in samples.items()}
    for name, (ms, host_us) in med.items():
        gbs = bytes_per_param(name, dtype) * n / (ms / 1e3) / 1e9
        row = {"case": key, "label": label, "contender": name, "params": n, "tensors": len(params), "ms": ms,
               "host_us": host_us, "gb_per_s": gbs, "fraction_of_copy": gbs * 1e9 / bandwidth,
               "vs_torch_fused": med["torch-fused"][0] / ms, "peak_extra_bytes": peaks[name],
               "bytes_per_param": bytes_per_param(name, dtype)}
        rows.append(row)
        print(f"  {key:4s} {name:14s} {n / 1e6:7.1f}M {len(params):7d} {ms:8.3f} {host_us:8.0f} {gbs:7.0f} "
              f"{100 * row['fraction_of_copy']:5.0f}% {row['vs_torch_fused']:7.2f}x {peaks[name] / 2**20:8.1f}")
    return rows


def goals(results: dict, rows: list) -> None:
    def get(case, name):
        return next((r for r in rows if r["case"] == case and r.get("contender") == name), None)

    checks = []
    for case, need in (("a", 1.0), ("b", 1.0), ("c", 2.0)):
        r = get(case, "adamlab")
        if r:
            checks.append((f"({case}) adamlab >= {need}x torch fused", r["vs_torch_fused"] >= need,
                           f"{r['vs_torch_fused']:.2f}x"))
    r = get("a", "adamlab")
    if r:
        checks.append(("(a) adamlab >= 85% of copy bandwidth", r["fraction_of_copy"] >= 0.85,
                       f"{100 * r['fraction_of_copy']:.0f}%"))
    results["goals"] = [{"goal": g, "met": bool(m), "value": v} for g, m, v in checks]
    print("  goals" + (" (timings in --cpu mode are not measurements)" if CPU_MODE else "") + ":")
    for goal, met, value in checks:
        print(f"    {'met   ' if met else 'NOT met'} {goal}: {value}")


def block_sweep(results: dict, bandwidth: float) -> None:
    section("2b. Kernel block size and warps on case (a) (the default is triton_launch.GPU)")
    label, shapes, dtype = SIZES["cases"]["a"]
    p = torch.randn(shapes[0], device=DEVICE).requires_grad_()
    p.grad = torch.randn_like(p) * 1e-2
    opt = adamlab.AdamW([p], lr=1e-3, weight_decay=1e-2, backend=BACKEND)
    settings = triton_launch.settings()
    saved = dict(settings)
    rows = []
    try:
        for block, warps in SIZES["sweep"]:
            settings.update(block=block, num_warps=warps)
            ms, _ = timed(opt.step)
            gbs = 28 * p.numel() / (ms / 1e3) / 1e9
            rows.append({"block": block, "num_warps": warps, "ms": ms, "gb_per_s": gbs})
            print(f"  BLOCK {block:5d}  num_warps {warps}: {ms:8.3f} ms  {gbs:6.0f} GB/s  "
                  f"{100 * gbs * 1e9 / bandwidth:4.0f}% of copy")
    finally:
        settings.clear()
        settings.update(saved)
    results["block_sweep"] = rows


# ------------------------------------------------------------------ 4. CUDA graph


def graph_capture(results: dict) -> bool:
    section("4. A capturable training step captured in a CUDA graph and replayed")
    if not CUDA:
        print("  needs CUDA (skipped in --cpu mode)")
        results["cuda_graph"] = "skipped"
        return True
    torch.manual_seed(0)
    base = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.GELU(), torch.nn.Linear(512, 256)).to(DEVICE)
    steps = SIZES["graph_steps"]
    xs, ys = torch.randn(steps + 3, 64, 256, device=DEVICE), torch.randn(steps + 3, 64, 256, device=DEVICE)
    lrs = [1e-3 * (1 + 0.5 * (t % 4)) for t in range(steps + 3)]

    def setup():
        model = copy.deepcopy(base)
        lr = torch.tensor(lrs[0], device=DEVICE)
        return model, adamlab.AdamW(model.parameters(), lr=lr, weight_decay=0.01, capturable=True), lr

    def train_step(model, opt, x, y, set_to_none):
        opt.zero_grad(set_to_none=set_to_none)
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    def feed(sx, sy, lr, t):
        sx.copy_(xs[t])
        sy.copy_(ys[t])
        lr.fill_(lrs[t])

    eager, opt_e, lr_e = setup()
    for t in range(steps + 3):
        lr_e.fill_(lrs[t])
        train_step(eager, opt_e, xs[t], ys[t], True)
    sync()
    outcome, ok = {}, True
    for pattern, set_to_none in (("static grads (zero_grad(set_to_none=False))", False),
                                 ("torch's recipe (grads set to None before capture)", True)):
        try:
            model, opt, lr = setup()
            sx, sy = xs[0].clone(), ys[0].clone()
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                for t in range(3):
                    feed(sx, sy, lr, t)
                    train_step(model, opt, sx, sy, True)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            if set_to_none:
                opt.zero_grad(set_to_none=True)
            with torch.cuda.graph(graph):
                train_step(model, opt, sx, sy, set_to_none)
            start = time.perf_counter()
            for t in range(3, steps + 3):
                feed(sx, sy, lr, t)
                graph.replay()
            sync()
            replay_us = (time.perf_counter() - start) / steps * 1e6
            differ = sum(difference(a.detach().cpu(), b.detach().cpu())[0]
                         for a, b in zip(model.parameters(), eager.parameters()))
            counted = float(next(iter(opt.state.values()))["step"])
            outcome[pattern] = {"bits_differ_from_eager": differ, "step_count": counted, "replay_us": replay_us}
            good = differ == 0 and counted == steps + 3
            print(f"  {pattern}: {'equal to eager' if differ == 0 else f'{differ} elements differ'}, "
                  f"step count {counted:.0f} (expected {steps + 3}), {replay_us:.0f} us per replay")
        except Exception as e:  # report and go on: the other pattern and sections still measure
            outcome[pattern] = {"error": f"{type(e).__name__}: {e}"}
            good = False
            print(f"  {pattern}: FAILED: {type(e).__name__}: {e}")
        ok &= good if not set_to_none else True  # torch's recipe is reported; static grads must work
    results["cuda_graph"] = outcome
    return ok


# ------------------------------------------------------------------ main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cpu", action="store_true", help="tiny sizes in Triton's interpreter (no timing claims)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--skip", default="", help="sections to skip: exact,throughput,sweep,graph")
    args = parser.parse_args()
    reason = triton_launch.unavailable(DEVICE)
    if reason:
        print(f"gpu_check: the Triton backend cannot run on {DEVICE}: {reason}", file=sys.stderr)
        return 2
    skip = set(filter(None, args.skip.split(",")))
    if CPU_MODE:  # numpy's warnings for the NaN grads of the special-value tensor, in the interpreter
        warnings.filterwarnings("ignore", category=RuntimeWarning)
    results = {"device": torch.cuda.get_device_name() if CUDA else "cpu (Triton interpreter)",
               "torch": torch.__version__, "triton": triton_launch._module().__version__, "cpu_mode": CPU_MODE,
               "settings": dict(triton_launch.settings())}
    print(f"gpu_check on {results['device']}, torch {results['torch']}, triton {results['triton']}")
    failures = []
    bandwidth = None
    steps = [("exact", lambda: exactness(results)),
             ("throughput", lambda: throughput(results, bandwidth)),
             ("sweep", lambda: block_sweep(results, bandwidth)),
             ("graph", lambda: graph_capture(results))]
    for name, run in steps:
        if name in skip:
            continue
        try:
            if bandwidth is None and name in ("throughput", "sweep"):
                bandwidth = results["copy_bandwidth_gb_per_s"] = copy_bandwidth() / 1e9
                bandwidth *= 1e9
            if run() is False:
                failures.append(name)
        except Exception:
            traceback.print_exc()
            failures.append(name)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print(f"\ngpu_check: {'all sections ran' if not failures else 'problems in: ' + ', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
