"""The ``adamlab`` command: reproduce the claims, benchmark the step, draw a schedule.

Every argument, the output paths included, is checked before any work
starts, and a bad one ends the command with one line that names the flag.
Nothing from the lab extra (matplotlib, scipy, scikit-learn, rich) is
imported until a command that needs it has checked it is there, so
``adamlab --version``, ``adamlab bench`` and the one-line message for a
missing extra work on a plain ``pip install adamlab``.

Exit status: 0 on success (a claim that does not reproduce is a result, not
an error), 1 when a claim raised, 2 for bad usage or a missing component.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import tempfile
from pathlib import Path

USAGE_ERROR = 2
LAB_EXTRA = {"matplotlib": "matplotlib", "scipy": "scipy", "sklearn": "scikit-learn", "rich": "rich"}
INSTALL = 'pip install "adamlab[lab]"'


class UsageError(Exception):
    """A bad argument, said in one line."""


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad argument in one line (and the --help hint), not a usage block."""

    def error(self, message: str):
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------ checks


def missing_lab_extra() -> list[str]:
    """The lab extra's distributions that are not installed."""
    missing = []
    for module, dist in LAB_EXTRA.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(dist)
    return missing


def require_lab_extra(command: str) -> None:
    missing = missing_lab_extra()
    if missing:
        raise UsageError(f"adamlab {command} needs the lab extra ({', '.join(missing)} missing): {INSTALL}")


def writable_folder(path: Path, flag: str) -> Path:
    """Create ``path`` if needed and prove it writable by writing a scratch file into it."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".adamlab-write-check-"):
            pass
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot create or write this folder ({e.strerror or e})") from None
    return path


def writable_file(path: Path, flag: str, suffixes) -> Path:
    """A file path whose folder exists and is writable and whose suffix names a format in ``suffixes``."""
    suffix = path.suffix.lower().lstrip(".")
    if suffix not in suffixes:
        known = ", ".join(sorted(suffixes))
        raise UsageError(f"{flag} {path}: unknown image format {path.suffix!r} (use one of: {known})")
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder, not a file")
    folder = path.parent
    if not folder.is_dir():
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".adamlab-write-check-"):
            pass
    except OSError as e:
        raise UsageError(f"{flag} {path}: cannot write into {folder} ({e.strerror or e})") from None
    return path


def number(kind, low=None, high=None, open_low=False, open_high=False):
    """An argparse type: ``kind`` (int or float) within the given bounds, said with the flag by argparse."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if isinstance(value, float) and math.isnan(value):
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
        below = low is not None and (value <= low if open_low else value < low)
        above = high is not None and (value >= high if open_high else value > high)
        if below or above:
            left = "-inf" if low is None else f"{low:g}"
            right = "inf" if high is None else f"{high:g}"
            opening = "(" if open_low or low is None else "["
            closing = ")" if open_high or high is None else "]"
            bounds = f"{opening}{left}, {right}{closing}"
            raise argparse.ArgumentTypeError(f"must be in {bounds}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def claim_ids(text: str) -> list[str]:
    from .claims import PACKAGES  # a plain dict: no claim is imported

    ids = [part.strip().upper() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("expected claim ids such as C1,C4")
    unknown = [i for i in ids if i not in PACKAGES]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown claim {', '.join(unknown)} (known: {', '.join(PACKAGES)})")
    return ids


def warmup_arg(text: str):
    if text == "untuned":
        return text
    try:
        return number(int, low=0)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a number of steps >= 0 or 'untuned', got {text!r}") from None


# ------------------------------------------------------------------ parser


def version() -> str:
    try:
        from importlib.metadata import version as installed

        return installed("adamlab")
    except Exception:  # running from a source tree that was never installed
        from adamlab import __version__

        return __version__


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="adamlab", description="The Adam family of optimizers and its lab.")
    parser.add_argument("--version", action="version", version=f"adamlab {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{reproduce,bench,schedule}",
                                parser_class=Parser)

    rep = sub.add_parser("reproduce", help="run the claims and write an HTML report (needs the lab extra)")
    rep.add_argument("--out", type=Path, default=Path("adamlab-report"),
                     help="report folder, created if missing (default: ./adamlab-report)")
    rep.add_argument("--quick", action="store_true", help="smaller settings, about a minute in all")
    rep.add_argument("--only", type=claim_ids, metavar="C1,C4", help="run only these claims")
    rep.add_argument("--seed", type=number(int, low=0), default=0, help="base seed, >= 0 (default 0)")

    from adamlab import bench  # standard library and torch only

    bench.add_arguments(sub.add_parser("bench", help="time the optimizer step against torch and the memory ceiling"))

    sch = sub.add_parser("schedule", help="draw a warmup + cosine schedule to an image (needs the lab extra)")
    sch.add_argument("--warmup", type=warmup_arg, required=True, help="warmup steps, or 'untuned' (2/(1-beta2))")
    sch.add_argument("--total", type=number(int, low=1), required=True, help="total optimizer steps, >= 1")
    sch.add_argument("--min-ratio", type=number(float, low=0.0, high=1.0), default=0.0,
                     help="final lr / base lr, in [0, 1] (default 0)")
    sch.add_argument("--beta2", type=number(float, low=0.0, high=1.0, open_low=True, open_high=True), default=0.999,
                     help="beta2 for --warmup untuned, in (0, 1) (default 0.999)")
    sch.add_argument("--out", type=Path, default=Path("schedule.png"), help="image file (default: schedule.png)")
    return parser


# ------------------------------------------------------------------ commands


def cmd_reproduce(args) -> int:
    require_lab_extra("reproduce")
    writable_folder(args.out, "--out")
    from .framework.runner import reproduce
    from .framework.verdicts import ERROR

    results = reproduce(args.out, quick=args.quick, only=args.only, seed=args.seed)
    return 1 if any(r.verdict == ERROR for r in results) else 0


def cmd_bench(args) -> int:
    from adamlab import bench

    try:
        bench.check_arguments(args)
    except ValueError as e:
        raise UsageError(str(e)) from None
    return bench.run(args)


# the library's names for what the command line calls flags
FLAGS = {"warmup_steps": "--warmup", "total_steps": "--total", "min_ratio": "--min-ratio", "beta2": "--beta2"}


def in_flags(message: str) -> str:
    for name, flag in FLAGS.items():
        message = message.replace(name, flag)
    return message


def cmd_schedule(args) -> int:
    require_lab_extra("schedule")
    from matplotlib.figure import Figure

    from adamlab.schedules import untuned_warmup_steps, warmup_cosine

    from .schedule_plot import draw

    warmup = untuned_warmup_steps(args.beta2) if args.warmup == "untuned" else args.warmup
    if warmup > args.total:
        shown = f"{warmup} = 2/(1 - --beta2)" if args.warmup == "untuned" else str(warmup)
        raise UsageError(f"--warmup ({shown}) must not exceed --total ({args.total})")
    writable_file(args.out, "--out", Figure().canvas.get_supported_filetypes())
    try:
        schedule = warmup_cosine(warmup, args.total, args.min_ratio)
    except ValueError as e:
        raise UsageError(in_flags(str(e))) from None
    try:
        draw(schedule, warmup, args.total, args.min_ratio).savefig(args.out, dpi=120)
    except OSError as e:
        raise UsageError(f"--out {args.out}: cannot write it ({e.strerror or e})") from None
    print(f"warmup {warmup} steps, {args.total} total, min ratio {args.min_ratio:g}: wrote {args.out}")
    return 0


COMMANDS = {"reproduce": cmd_reproduce, "bench": cmd_bench, "schedule": cmd_schedule}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except UsageError as e:
        print(f"adamlab {args.command}: error: {e}", file=sys.stderr)
        return USAGE_ERROR


if __name__ == "__main__":
    sys.exit(main())
