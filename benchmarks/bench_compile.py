"""Compiled optimizer steps, adamlab's beside torch.optim's, measured side by side in one process.

Four contenders step the same parameter tensors (each keeps its own state) under the same LambdaLR
schedule, so the lr changes every step:

* ``adamlab``: ``adamlab.AdamW`` eager;
* ``adamlab-compiled``: ``torch.compile(opt.step, fullgraph=True)``;
* ``torch``: ``torch.optim.AdamW`` eager (its default, foreach);
* ``torch-compiled``: ``torch.compile(opt.step)``, the pattern of torch's compiled-optimizer tutorial
  (torch's step graph-breaks by design, so not fullgraph).

Reported per layout: compilations (a counting backend in front of inductor) and graph breaks
(``torch._dynamo``'s counters) over all steps, the time of the warm-up steps (compiles included), and
the median step time over the timed steps, contenders alternating within each repeat. Then a compiled
training step (forward, backward, ``opt.step()``, ``zero_grad``) for each library: the total time of its
first steps, compiles included, and its median step after them.

    python benchmarks/bench_compile.py [--layouts mlp,gpt] [--repeats 30] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings

import torch
from torch._dynamo.testing import CompileCounterWithBackend
from torch._dynamo.utils import counters
from torch.optim.lr_scheduler import LambdaLR

import adamlab

WARMUP = 3  # steps before timing: the first compile, the recompile that makes lr symbolic, one more


def mlp_shapes() -> list[tuple[int, ...]]:
    """A 3-layer MLP, 256 wide: few small tensors, where per-step overhead dominates."""
    return [(256, 64), (256,), (256, 256), (256,), (10, 256), (10,)]


def gpt_shapes(d_model=128, n_layer=2, vocab=8192, context=256) -> list[tuple[int, ...]]:
    """GPT-2's tensor layout (embeddings, 12 tensors per block, final LayerNorm), scaled down."""
    block = [(d_model,), (d_model,), (3 * d_model, d_model), (3 * d_model,), (d_model, d_model), (d_model,),
             (d_model,), (d_model,), (4 * d_model, d_model), (4 * d_model,), (d_model, 4 * d_model), (d_model,)]
    return [(vocab, d_model), (context, d_model)] + block * n_layer + [(d_model,), (d_model,)]


def many_shapes(n=200, size=1000) -> list[tuple[int, ...]]:
    return [(size,)] * n


LAYOUTS = {
    "mlp": ("MLP 64-256-256-10", mlp_shapes),
    "gpt": ("GPT-2 layout, d_model 128, 2 layers, vocab 8192", gpt_shapes),
    "many": ("200 tensors of 1000 elements (torch's compile takes minutes)", many_shapes),
}


def schedule(t: int) -> float:
    return min(1.0, (t + 1) / 10) * (0.5 + 0.5 / (1 + 0.01 * t))


def contenders():
    lr, wd = 1e-3, 1e-2
    return {
        "adamlab": (lambda ps: adamlab.AdamW(ps, lr=lr, weight_decay=wd), None),
        "adamlab-compiled": (lambda ps: adamlab.AdamW(ps, lr=lr, weight_decay=wd), {"fullgraph": True}),
        "torch": (lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=wd), None),
        "torch-compiled": (lambda ps: torch.optim.AdamW(ps, lr=lr, weight_decay=wd), {}),
    }


def _breaks() -> int:
    return sum(counters["graph_break"].values())


def time_steps(shapes, repeats: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-2
    runs, out = {}, {}
    torch._dynamo.reset()
    for name, (make, compile_kw) in contenders().items():
        opt = make(params)
        sched = LambdaLR(opt, schedule)
        step, backend = opt.step, None
        if compile_kw is not None:
            backend = CompileCounterWithBackend("inductor")
            step = torch.compile(opt.step, backend=backend, **compile_kw)
        t = time.perf_counter()
        for _ in range(WARMUP):
            step()
            sched.step()
        out[name] = {"warmup_s": time.perf_counter() - t}
        runs[name] = (step, sched, backend)
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (step, sched, _) in runs.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)
            sched.step()
    for name, (_, _, backend) in runs.items():
        out[name].update(step_ms=statistics.median(times[name]) * 1e3,
                         compilations=backend.frame_count if backend else 0)
    return {"params": sum(p.numel() for p in params), "tensors": len(params), "contenders": out}


def count_breaks(shapes) -> dict:
    """Graph breaks of each compiled step over WARMUP + 5 steps, one contender at a time."""
    out = {}
    for name, (make, compile_kw) in contenders().items():
        if compile_kw is None:
            continue
        torch._dynamo.reset()
        counters.clear()
        ps = [torch.randn(s).requires_grad_() for s in shapes]
        for p in ps:
            p.grad = torch.randn(p.shape) * 1e-2
        opt = make(ps)
        sched = LambdaLR(opt, schedule)
        step = torch.compile(opt.step, **compile_kw)
        for _ in range(WARMUP + 5):
            step()
            sched.step()
        out[name] = _breaks()
    return out


def _train_step(model, opt, x, y):
    def train_step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        return loss

    return torch.compile(train_step)


def time_train_step(steps: int, repeats: int) -> dict:
    """A compiled training step per library on one MLP: total of the first ``steps``, then the median."""
    torch._dynamo.reset()
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    runs, out = {}, {}
    for name, cls in (("adamlab", adamlab.AdamW), ("torch", torch.optim.AdamW)):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        opt = cls(model.parameters(), lr=1e-3)
        sched = LambdaLR(opt, schedule)
        step = _train_step(model, opt, x, y)
        t = time.perf_counter()
        for _ in range(steps):
            step()
            sched.step()
        out[name] = {f"first_{steps}_steps_s": time.perf_counter() - t}
        runs[name] = (step, sched)
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (step, sched) in runs.items():
            t = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t)
            sched.step()
    for name in runs:
        out[name]["step_ms"] = statistics.median(times[name]) * 1e3
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layouts", default="mlp,gpt", help=f"from {','.join(LAYOUTS)}")
    parser.add_argument("--repeats", type=int, default=30, help="timed steps per contender (median reported)")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON only")
    args = parser.parse_args(argv)
    layouts = [k.strip() for k in args.layouts.split(",") if k.strip()]
    bad = [k for k in layouts if k not in LAYOUTS]
    if bad or args.repeats < 1:
        print(f"--layouts takes {','.join(LAYOUTS)}; --repeats must be >= 1", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "layouts": {}}
    for key in layouts:
        label, shapes = LAYOUTS[key]
        result = time_steps(shapes(), args.repeats)
        result["graph_breaks"] = count_breaks(shapes())
        report["layouts"][key] = {"label": label, **result}
    report["train_step"] = time_train_step(12, args.repeats)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


def print_report(report: dict) -> None:
    print(f"torch {report['torch']}, {report['threads']} threads; medians over the timed steps")
    for key, r in report["layouts"].items():
        print(f"\n{key}: {r['label']} ({r['params'] / 1e6:.2f}M params, {r['tensors']} tensors)")
        print(f"  {'contender':<18}{'step ms':>9}{'vs eager':>10}{'warm-up s':>11}{'compiles':>10}{'breaks':>8}")
        c = r["contenders"]
        for name, v in c.items():
            eager = c[name.replace("-compiled", "")]["step_ms"]
            breaks = r["graph_breaks"].get(name, "")
            print(f"  {name:<18}{v['step_ms']:>9.3f}{eager / v['step_ms']:>9.2f}x{v['warmup_s']:>11.2f}"
                  f"{v['compilations']:>10}{breaks:>8}")
        ratio = c["torch-compiled"]["step_ms"] / c["adamlab-compiled"]["step_ms"]
        print(f"  compiled adamlab vs compiled torch: {ratio:.2f}x")
    t = report["train_step"]
    print("\ncompiled training step (forward, backward, opt.step, zero_grad), MLP 64-256-10:")
    for name, v in t.items():
        first = next(k for k in v if k.startswith("first_"))
        print(f"  {name:<8} {first.replace('_', ' ')}: {v[first]:.2f}, then {v['step_ms']:.3f} ms per step")


if __name__ == "__main__":
    sys.exit(main())
