"""Compile the generated Triton kernels ahead of time for an H100/H200 (sm_90) and read their PTX.

Needs no GPU: Triton's compiler and ptxas build for a named target. Run without TRITON_INTERPRET
(tests/test_triton.py starts it in a subprocess). Prints one JSON object: the kernels compiled, the
instructions found that are approximate, flush denormals to zero or leave ptxas free to fuse a
multiply and an add (add/sub/mul without an explicit rounding), and whether the aligned variant of an
fp32 kernel got 16-byte vector loads. ``--all``: every distinct kernel of the case table in four dtypes
(aligned variant only); by default a sample in fp32 and bf16, both variants.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cases import ALL_CASES, by_name  # noqa: E402

from adamlab.backends import triton_launch, triton_print  # noqa: E402
from adamlab.backends.trace import trace  # noqa: E402
from adamlab.optim.counters import Counters  # noqa: E402

SIGNATURE = {"work": "*i64", "numels": "*i64", "ptrs": "*i64", "sc": "*fp64", "sc_stride": "i64", "skip": "*fp32",
             "BLOCK": "constexpr", "CHUNK": "constexpr", "ALIGNED": "constexpr"}
INEXACT = re.compile(r"\b(?:div\.full|div\.approx|sqrt\.approx|rsqrt|ex2\.approx|lg2\.approx"
                     r"|(?:add|sub|mul)\.f(?:32|64)\b|\w+\.ftz)")
SUBSET = ["adamw_amsgrad", "radam"]  # radam: its device step selects between its two updates per param


def programs(cases, dtypes):
    """(name, source) of each distinct kernel: host and device steps, with and without AMP unscaling."""
    seen = set()
    for case in cases:
        opt = case.make([torch.zeros(3, requires_grad=True)])
        group, record = opt.param_groups[0], opt.algorithm
        host = Counters({n: record.counter_start[n] + (n == "step") for n in record.counters}, torch.float32)
        device = Counters({n: torch.tensor([v]) for n, v in host.items()}, torch.float32)
        for counters in (host, device):
            plan = record.plan(group, counters, False)
            for cfg in (plan.config, dataclasses.replace(plan.config, unscale=True)):
                names = tuple(plan.scalars) + (("grad_scale",) if cfg.unscale else ())
                for dtype in dtypes:
                    state = "float64" if dtype == "float64" else "float32"
                    codecs = {"p": dtype, "g": dtype, **{n: state for n in cfg.state_names()}}
                    source = triton_print.source(trace(cfg, names), codecs)
                    if source not in seen:
                        seen.add(source)
                        yield f"{case.name}/{dtype}/{'unscale' if cfg.unscale else 'plain'}", source


def compile_ptx(source: str, aligned: bool) -> str:
    kernel = triton.compile(
        ASTSource(fn=triton_launch._import(source), signature=SIGNATURE,
                  constexprs={"BLOCK": triton_launch.GPU["block"], "CHUNK": triton_launch.GPU["chunk"],
                              "ALIGNED": aligned}),
        target=GPUTarget("cuda", 90, 32),
        options={"num_warps": triton_launch.GPU["num_warps"], "enable_fp_fusion": False},
    )
    return kernel.asm["ptx"]


def main() -> None:
    everything = "--all" in sys.argv
    cases = ALL_CASES if everything else [by_name(n) for n in SUBSET]
    dtypes = ("float64", "float32", "float16", "bfloat16") if everything else ("float32", "bfloat16")
    inexact, count = {}, 0
    for name, source in programs(cases, dtypes):
        for aligned in (True,) if everything else (True, False):
            found = sorted(set(INEXACT.findall(compile_ptx(source, aligned))))
            count += 1
            if found:
                inexact[f"{name}/aligned={aligned}"] = found
    sample = next(s for n, s in programs([by_name("adamw")], ("float32",)))
    vector = "ld.global.v4" in compile_ptx(sample, True)
    print(json.dumps({"kernels": count, "inexact": inexact, "vector_loads_when_aligned": vector}))


if __name__ == "__main__":
    main()
