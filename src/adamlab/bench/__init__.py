"""``adamlab bench``: the optimizer step measured side by side with torch, in sections.

* ``step``: throughput against torch's loop, foreach and fused AdamW and the step's own memory ceiling;
* ``memory``: bf16 and 8-bit state, bytes per param and throughput (:mod:`.memory`);
* ``host``: the host work of a step on 2000 tiny tensors, the per-step array check included (:mod:`.host`);
* ``safety``: what ``skip_nonfinite=True`` adds to a step (:mod:`.safety`);
* ``monitor``: what an attached :class:`adamlab.Monitor` adds (:mod:`adamlab.monitor.bench`);
* ``compile``: eager and ``torch.compile``'d steps of adamlab and torch under a LambdaLR schedule, compile
  counts, graph breaks and a compiled training step (:mod:`.compiled`).

Needs only torch and a C compiler. Run ``adamlab bench --help``, or
``python benchmarks/bench_step.py``; timings come from medians of contenders
stepping in turn in one process, never from tests.
"""

from __future__ import annotations

import argparse
import json

# the names only (cases.py holds what they mean), so that building the command line imports no torch
CASE_KEYS = ("a", "b", "c")
VARIANTS = ("adamw", "amsgrad", "bf16", "no-bc")
COMPILE_LAYOUTS = ("mlp", "gpt", "many")  # compiled.py's LAYOUTS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"which sections, from {','.join(SECTIONS)}")
    parser.add_argument("--cases", default=",".join(CASE_KEYS),
                        help="step section's cases: a (one large tensor), b (GPT-2 layout), c (many small tensors)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"from {','.join(VARIANTS)}")
    parser.add_argument("--repeats", type=int, default=10, help="timed steps per contender, >= 1 (median reported)")
    parser.add_argument("--quick", action="store_true", help="smaller tensors, at most 5 repeats, no first-step timing")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON only")
    parser.add_argument("--layouts", default="mlp,gpt",
                        help=f"compile section's layouts, from {','.join(COMPILE_LAYOUTS)} (many: torch compiles "
                             "for minutes); --quick takes mlp only")


def _listed(text: str, known, flag: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in items if x not in known]
    if unknown or not items:
        raise ValueError(f"{flag}: unknown {', '.join(unknown) or 'empty list'} (choose from {', '.join(known)})")
    return items


def check_arguments(args) -> None:
    """ValueError naming the flag for any bad argument; turns --sections, --cases, --variants and --layouts into
    lists."""
    for attr, known in (("sections", SECTIONS), ("cases", CASE_KEYS), ("variants", VARIANTS),
                        ("layouts", COMPILE_LAYOUTS)):
        if isinstance(getattr(args, attr), str):
            setattr(args, attr, _listed(getattr(args, attr), known, f"--{attr}"))
    if args.repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {args.repeats}")


def run(args) -> int:
    from .text import progress_line

    check_arguments(args)
    repeats = min(args.repeats, 5) if args.quick else args.repeats
    progress = None if args.json else progress_line()
    _ready_host_check(progress)
    reports = {}
    for name in args.sections:
        report, lines = SECTION_RUNNERS[name](args, repeats, progress)
        reports[name] = report
        if not args.json:
            print("\n".join(lines) + "\n", flush=True)
    if args.json:
        print(json.dumps(reports, indent=2))
    return 0


def _ready_host_check(progress) -> None:
    """The per-step array check's helper, built (once per machine, ~15 s) before anything is timed: a build
    started in the background by a large case would share the cores with the contenders."""
    from adamlab.backends import hostcheck

    if hostcheck.cached() or not hostcheck.enabled:
        return
    advance = progress("building the per-step array check (once per machine)", 1) if progress else None
    hostcheck.wait()
    if advance:
        advance()


def _step(args, repeats, progress):
    from .cases import cases
    from .measure import measure
    from .text import report_lines

    report = measure([cases(args.quick)[key] for key in args.cases], args.variants, repeats, args.quick, progress)
    return report, report_lines(report)


def _memory(args, repeats, progress):
    from . import memory

    report = memory.measure(args.quick, repeats)
    return report, memory.report_lines(report)


def _host(args, repeats, progress):
    from . import host

    report = host.measure(10 if args.quick else 50, 500 if args.quick else host.TENSORS)
    return report, host.report_lines(report)


def _safety(args, repeats, progress):
    from . import safety

    report = safety.measure(8 << 20 if args.quick else 32 << 20, 5 if args.quick else 15)
    return report, safety.report_lines(report)


def _monitor(args, repeats, progress):
    from adamlab.monitor import bench

    rows = bench.overhead(args.quick, 5 if args.quick else None)
    return rows, [bench.table(rows)]


def _compile(args, repeats, progress):
    from . import compiled

    report = compiled.measure(["mlp"] if args.quick else args.layouts, repeats)
    return report, compiled.report_lines(report)


SECTION_RUNNERS = {"step": _step, "memory": _memory, "host": _host, "safety": _safety, "monitor": _monitor,
                   "compile": _compile}
SECTIONS = tuple(SECTION_RUNNERS)  # the --sections choices, in report order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_step.py", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        check_arguments(args)
    except ValueError as e:
        parser.exit(2, f"{parser.prog}: error: {e}\n")
    return run(args)
