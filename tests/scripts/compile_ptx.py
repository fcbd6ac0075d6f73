"""Compile the generated Triton kernels ahead of time for an H100/H200 (sm_90) and read their PTX.

Needs no GPU: Triton's compiler and ptxas build for a named target. Run without TRITON_INTERPRET
(tests/test_triton.py starts it in a subprocess). Prints one JSON object: the kernels compiled, the
instructions found that are approximate, flush denormals to zero or leave ptxas free to fuse a
multiply and an add (add/sub/mul without an explicit rounding), and whether the aligned variant of an
fp32 kernel got 16-byte vector loads. ``--all``: every distinct kernel of the case table in four dtypes
(aligned variant only); by default a sample in fp32 and bf16, both variants.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cases import ALL_CASES, by_name, traced_programs  # noqa: E402

from adamlab.backends import triton_launch, triton_print  # noqa: E402

SIGNATURE = {"work": "*i64", "numels": "*i64", "ptrs": "*i64", "sc": "*fp64", "sc_stride": "i64", "skip": "*fp32",
             "BLOCK": "constexpr", "CHUNK": "constexpr", "ALIGNED": "constexpr"}
INEXACT = re.compile(r"\b(?:div\.full|div\.approx|sqrt\.approx|rsqrt|ex2\.approx|lg2\.approx"
                     r"|(?:add|sub|mul)\.f(?:32|64)\b|\w+\.ftz)")
SUBSET = ["adamw_amsgrad", "radam"]  # radam: its device step selects between its two updates per param


def programs(cases, dtypes):
    """(label, source) of each distinct kernel of these cases and dtypes."""
    seen = set()
    for case in cases:
        for dtype in dtypes:
            for label, program, codecs in traced_programs(case, dtype):
                source = triton_print.source(program, codecs)
                if source not in seen:
                    seen.add(source)
                    yield label, source


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
