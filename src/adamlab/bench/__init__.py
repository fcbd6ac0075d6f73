"""``adamlab bench``: optimizer-step throughput, side by side with torch, against the step's own memory ceiling.

``adamlab bench --compile`` times ``torch.compile``'d steps instead (:mod:`.compiled`).
Needs only torch and a C compiler. Run ``adamlab bench --help``, or
``python benchmarks/bench_step.py`` (``benchmarks/bench_compile.py``); timings come from medians of
contenders stepping in turn in one process, never from tests.
"""

from __future__ import annotations

import argparse
import json

# the names only (cases.py holds what they mean), so that building the command line imports no torch
CASE_KEYS = ("a", "b", "c")
VARIANTS = ("adamw", "amsgrad", "bf16", "no-bc")
COMPILE_LAYOUTS = ("mlp", "gpt", "many")  # compiled.py's LAYOUTS
REPEATS, COMPILE_REPEATS = 10, 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cases", default=",".join(CASE_KEYS),
                        help="which cases: a (one large tensor), b (GPT-2 layout), c (many small tensors)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"from {','.join(VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed steps per contender, >= 1 (median reported; default {REPEATS}, "
                             f"{COMPILE_REPEATS} with --compile)")
    parser.add_argument("--quick", action="store_true", help="smaller tensors, at most 5 repeats, no first-step timing")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON only")
    parser.add_argument("--compile", action="store_true",
                        help="time torch.compile'd steps instead: adamlab and torch, eager and compiled, under a "
                             "LambdaLR schedule, with compile counts, graph breaks and a compiled training step")
    parser.add_argument("--layouts", default="mlp,gpt",
                        help=f"with --compile: from {','.join(COMPILE_LAYOUTS)} (many: torch compiles for minutes)")


def _listed(text: str, known, flag: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in items if x not in known]
    if unknown or not items:
        raise ValueError(f"{flag}: unknown {', '.join(unknown) or 'empty list'} (choose from {', '.join(known)})")
    return items


def check_arguments(args) -> None:
    """ValueError naming the flag for any bad argument; turns --cases, --variants and --layouts into lists."""
    args.cases = _listed(args.cases, CASE_KEYS, "--cases") if isinstance(args.cases, str) else args.cases
    args.variants = _listed(args.variants, VARIANTS, "--variants") if isinstance(args.variants, str) \
        else args.variants
    if args.repeats is None:
        args.repeats = COMPILE_REPEATS if args.compile else REPEATS
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")
    if isinstance(args.layouts, str):
        args.layouts = _listed(args.layouts, COMPILE_LAYOUTS, "--layouts")


def run(args) -> int:
    from .cases import cases
    from .measure import measure
    from .text import progress_line, report_lines

    check_arguments(args)
    repeats = min(args.repeats, 5) if args.quick else args.repeats
    if args.compile:
        from . import compiled

        report = compiled.measure(args.layouts, repeats)
        print(json.dumps(report, indent=2) if args.json else "\n".join(compiled.report_lines(report)))
        return 0
    chosen = [cases(args.quick)[key] for key in args.cases]
    report = measure(chosen, args.variants, repeats, args.quick, None if args.json else progress_line())
    print(json.dumps(report, indent=2) if args.json else "\n".join(report_lines(report)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_step.py", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
    except ValueError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    return run(args)
