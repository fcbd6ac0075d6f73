"""``adamlab bench --sections compile``: compiled optimizer steps, adamlab's beside torch.optim's, in one process.

Four contenders step the same parameter tensors (each keeps its own state) under the same LambdaLR
schedule, so the lr changes every step:

* ``adamlab``: ``adamlab.AdamW`` eager;
* ``adamlab-compiled``: ``torch.compile(opt.step, fullgraph=True)``;
* ``torch``: ``torch.optim.AdamW`` eager (its default, foreach);
* ``torch-compiled``: ``torch.compile(opt.step)``, the pattern of torch's compiled-optimizer tutorial
  (not fullgraph: Dynamo skips the LR scheduler's wrapper around torch's step, and torch.optim places a
  graph break of its own).

Reported per layout: compilations (a counting backend in front of inductor) and graph breaks
(``torch._dynamo``'s counters) over all steps, the time of the warm-up steps (compiles included), and
the median step time over the timed steps, contenders alternating within each repeat. Then a compiled
training step (forward, backward, ``opt.step()``, ``zero_grad``) for each library: the total time of its
first steps, compiles included, and its median step after them.
"""

from __future__ import annotations

import statistics
import time
import warnings

import torch
from torch._dynamo.testing import CompileCounterWithBackend
from torch._dynamo.utils import counters
from torch.optim.lr_scheduler import LambdaLR

import adamlab

from .cases import gpt2_shapes, many_small_shapes
from .timing import in_turn

WARMUP = 3  # steps before timing: the first compile, the recompile that makes lr symbolic, one more
TRAIN_STEPS = 12  # the compiled training step's first steps, compiles included
LR, WD = 1e-3, 1e-2

LAYOUTS = {
    "mlp": ("MLP 64-256-256-10", lambda: [(256, 64), (256,), (256, 256), (256,), (10, 256), (10,)]),
    "gpt": ("GPT-2 layout, d_model 128, 2 layers, vocab 8192",
            lambda: gpt2_shapes(128, 2, vocab=8192, context=256)),
    "many": ("200 tensors of 1000 elements (torch's compile takes minutes)",
             lambda: many_small_shapes(200, 1000, 1000)),
}


def schedule(t: int) -> float:
    """Warmup then a slow decay: a new lr every step, as a scheduled run has."""
    return min(1.0, (t + 1) / 10) * (0.5 + 0.5 / (1 + 0.01 * t))


# name -> (optimizer class, torch.compile's keywords, or None for eager)
CONTENDERS = {
    "adamlab": (adamlab.AdamW, None),
    "adamlab-compiled": (adamlab.AdamW, {"fullgraph": True}),
    "torch": (torch.optim.AdamW, None),
    "torch-compiled": (torch.optim.AdamW, {}),
}


def _params(shapes, seed=0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * 1e-2
    return params


def _stepper(cls, compile_kw, params):
    """(step, its scheduler, the counting backend or None): the scheduler is built before compiling."""
    opt = cls(params, lr=LR, weight_decay=WD)
    sched = LambdaLR(opt, schedule)
    if compile_kw is None:
        return opt.step, sched, None
    backend = CompileCounterWithBackend("inductor")
    return torch.compile(opt.step, backend=backend, **compile_kw), sched, backend


def time_steps(shapes, repeats: int) -> dict:
    params = _params(shapes)
    runs, out = {}, {}
    torch._dynamo.reset()
    for name, (cls, compile_kw) in CONTENDERS.items():
        step, sched, backend = _stepper(cls, compile_kw, params)
        t = time.perf_counter()
        for _ in range(WARMUP):
            step()
            sched.step()
        out[name] = {"warmup_s": time.perf_counter() - t}
        runs[name] = (step, sched, backend)
    times = _alternate({name: run[:2] for name, run in runs.items()}, repeats)
    for name, (_, _, backend) in runs.items():
        out[name].update(step_ms=times[name], compilations=backend.frame_count if backend else 0)
    return {"params": sum(p.numel() for p in params), "tensors": len(params), "contenders": out}


def _alternate(runs: dict, repeats: int) -> dict:
    """Median ms of each (step, scheduler) pair, the contenders stepping in turn within each repeat."""
    times = in_turn({name: step for name, (step, _) in runs.items()}, repeats,
                    advance=lambda: [sched.step() for _, sched in runs.values()])
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def count_breaks(shapes) -> dict:
    """Graph breaks of each compiled step over WARMUP + 5 steps, one contender at a time."""
    out = {}
    for name, (cls, compile_kw) in CONTENDERS.items():
        if compile_kw is None:
            continue
        torch._dynamo.reset()
        counters.clear()
        step, sched, _ = _stepper(cls, compile_kw, _params(shapes))
        for _ in range(WARMUP + 5):
            step()
            sched.step()
        out[name] = sum(counters["graph_break"].values())
    return out


def time_train_step(steps: int, repeats: int) -> dict:
    """A compiled training step per library on one MLP: total of the first ``steps``, then the median."""
    torch._dynamo.reset()
    x, y = torch.randn(32, 64), torch.randint(0, 10, (32,))
    runs, out = {}, {}
    for name, cls in (("adamlab", adamlab.AdamW), ("torch", torch.optim.AdamW)):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        opt = cls(model.parameters(), lr=LR, weight_decay=WD)
        sched = LambdaLR(opt, schedule)

        def train_step(model=model, opt=opt):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad()
            return loss

        step = torch.compile(train_step)
        t = time.perf_counter()
        for _ in range(steps):
            step()
            sched.step()
        out[name] = {"first_steps_s": time.perf_counter() - t}
        runs[name] = (step, sched)
    for name, ms in _alternate(runs, repeats).items():
        out[name]["step_ms"] = ms
    return out


def measure(layouts: list[str], repeats: int) -> dict:
    report = {"torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": repeats,
              "train_steps": TRAIN_STEPS, "layouts": {}}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*lr_scheduler.step.*")
        for key in layouts:
            label, shapes = LAYOUTS[key]
            result = time_steps(shapes(), repeats)
            result["graph_breaks"] = count_breaks(shapes())
            report["layouts"][key] = {"label": label, **result}
        report["train_step"] = time_train_step(TRAIN_STEPS, repeats)
    return report


def report_lines(report: dict) -> list[str]:
    lines = [f"torch {report['torch']}, {report['threads']} threads; medians over {report['repeats']} timed steps"]
    for key, r in report["layouts"].items():
        lines += ["", f"{key}: {r['label']} ({r['params'] / 1e6:.2f}M params, {r['tensors']} tensors)",
                  f"  {'contender':<18}{'step ms':>9}{'vs eager':>10}{'warm-up s':>11}{'compiles':>10}{'breaks':>8}"]
        c = r["contenders"]
        for name, v in c.items():
            eager = c[name.replace("-compiled", "")]["step_ms"]
            breaks = r["graph_breaks"].get(name, "")
            lines.append(f"  {name:<18}{v['step_ms']:>9.3f}{eager / v['step_ms']:>9.2f}x{v['warmup_s']:>11.2f}"
                         f"{v['compilations']:>10}{breaks:>8}")
        ratio = c["torch-compiled"]["step_ms"] / c["adamlab-compiled"]["step_ms"]
        lines.append(f"  compiled adamlab vs compiled torch: {ratio:.2f}x")
    lines += ["", "compiled training step (forward, backward, opt.step, zero_grad), MLP 64-256-10:"]
    for name, v in report["train_step"].items():
        lines.append(f"  {name:<8} first {report['train_steps']} steps: {v['first_steps_s']:.2f} s, "
                     f"then {v['step_ms']:.3f} ms per step")
    return lines
