"""The ``adamlab`` command: reproduce the claims, benchmark the kernels, draw a schedule.

Exit status: 0 on success (a claim that does not reproduce is a result, not
an error), 1 when a claim raised, 2 for bad usage or a missing component.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rich.console import Console

USAGE_ERROR = 2


def _bench():
    """adamlab.lab.bench, or None while it is not installed."""
    name = f"{__package__}.bench"
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name != name:  # bench exists but something it needs is missing
            raise
        return None


def _schedules():
    try:
        from adamlab.schedules import plot, untuned_warmup_steps, warmup_cosine
    except ImportError:
        return None
    return warmup_cosine, plot, untuned_warmup_steps


def claim_ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("expected claim ids such as C1,C4")
    return ids


def warmup_arg(text: str):
    if text == "untuned":
        return text
    try:
        steps = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of steps or 'untuned', got {text!r}") from None
    if steps < 0:
        raise argparse.ArgumentTypeError(f"warmup must be >= 0, got {steps}")
    return steps


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adamlab", description="The Adam family of optimizers and its lab.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{reproduce,bench,schedule}")

    rep = sub.add_parser("reproduce", help="run the claims and write an HTML report")
    rep.add_argument("--out", default="adamlab-report", help="report folder (default: ./adamlab-report)")
    rep.add_argument("--quick", action="store_true", help="smaller settings, about a minute in all")
    rep.add_argument("--only", type=claim_ids, metavar="C1,C4", help="run only these claims")
    rep.add_argument("--seed", type=int, default=0, help="base seed (default 0)")

    bench_parser = sub.add_parser("bench", help="time the optimizer kernels")
    bench = _bench()
    if bench is not None:
        bench.add_arguments(bench_parser)

    sch = sub.add_parser("schedule", help="draw a warmup + cosine schedule to a PNG")
    sch.add_argument("--warmup", type=warmup_arg, required=True, help="warmup steps, or 'untuned' (2/(1-beta2))")
    sch.add_argument("--total", type=int, required=True, help="total optimizer steps")
    sch.add_argument("--min-ratio", type=float, default=0.0, help="final lr / base lr (default 0)")
    sch.add_argument("--beta2", type=float, default=0.999, help="beta2 for --warmup untuned (default 0.999)")
    sch.add_argument("--out", default="schedule.png", help="image file (default: schedule.png)")
    return parser


def cmd_reproduce(args, console: Console) -> int:
    from .report import ERROR
    from .reproduce import reproduce

    try:
        results = reproduce(args.out, quick=args.quick, only=args.only, seed=args.seed, console=console)
    except ValueError as e:  # unknown claim ids
        console.print(f"[red]error:[/] {e}")
        return USAGE_ERROR
    return 1 if any(r.verdict == ERROR for r in results) else 0


def cmd_bench(args, console: Console) -> int:
    bench = _bench()
    if bench is None:
        console.print("[red]error:[/] adamlab bench is unavailable in this installation")
        return USAGE_ERROR
    return bench.run(args) or 0


def cmd_schedule(args, console: Console) -> int:
    found = _schedules()
    if found is None:
        console.print("[red]error:[/] adamlab.schedules is unavailable in this installation")
        return USAGE_ERROR
    warmup_cosine, plot, untuned_warmup_steps = found
    try:
        warmup = untuned_warmup_steps(args.beta2) if args.warmup == "untuned" else args.warmup
        schedule = warmup_cosine(warmup, args.total, args.min_ratio)
        plot(schedule, args.total, path=args.out)
    except ValueError as e:
        console.print(f"[red]error:[/] {e}")
        return USAGE_ERROR
    console.print(f"warmup {warmup} steps, {args.total} total, min ratio {args.min_ratio:g}: wrote {args.out}")
    return 0


COMMANDS = {"reproduce": cmd_reproduce, "bench": cmd_bench, "schedule": cmd_schedule}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args, Console())


if __name__ == "__main__":
    sys.exit(main())
