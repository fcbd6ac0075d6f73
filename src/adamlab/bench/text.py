"""What ``adamlab bench`` prints: a progress line on a terminal, then a plain table nothing cuts short."""

from __future__ import annotations

import sys

CONTENDERS = ("adamlab", "torch-loop", "torch-foreach", "torch-fused")
COLUMNS = ("case", "variant", "params", "tensors", "adamlab", "loop", "foreach", "fused", "vs fused", "ceiling",
           "of ceil.")


def progress_line(stream=None):
    """``factory(description, total) -> advance``: a line redrawn in place on a terminal, silent elsewhere.

    It redraws only between timed steps, so drawing never takes a core from a kernel being timed.
    """
    stream = stream or sys.stderr
    live = stream.isatty()

    def factory(description: str, total: int):
        done = [0]

        def advance():
            done[0] += 1
            if live:
                end = "\n" if done[0] == total else ""
                stream.write(f"\r{description}: {done[0]}/{total}{end}")
                stream.flush()

        return advance

    return factory


def table(rows: list[list[str]], columns=COLUMNS) -> list[str]:
    """Right-aligned columns as wide as their widest cell: every value printed in full."""
    widths = [max(len(str(x)) for x in col) for col in zip(columns, *rows)]
    return ["  ".join(str(x).rjust(w) for x, w in zip(row, widths)) for row in [list(columns), *rows]]


def report_lines(report: dict) -> list[str]:
    bw = report["bandwidth_gb_per_s"]
    lines = [
        f"Streaming bandwidth (arrays >= 4x the last-level cache): triad {bw['triad']:.1f} GB/s, Adam-shaped "
        f"{bw['adam_traffic']:.1f} GB/s; {report['threads']} threads, torch {report['torch']}"
        + ("; quick settings" if report["quick"] else ""),
        f"AdamW step throughput in Mparams/s, median of {report['repeats']} steps per contender (higher is better)",
    ]
    rows = []
    for r in report["results"]:
        mps = r["mparams_per_s"]
        rows.append([r["case"], r["variant"], f"{r['params'] / 1e6:.1f}M", str(r["tensors"]),
                     *(f"{mps[c]:.0f}" for c in CONTENDERS), f"{r['ratio_vs_torch_fused']:.2f}x",
                     f"{r['ceiling_mparams_per_s']:.0f}", f"{100 * r['adamlab_fraction_of_ceiling']:.0f}%"])
    lines += table(rows)
    lines.append("ceiling = the same loads and stores as adamlab's step (p, g and its fp32 state: 28 B/param, "
                 "36 with AMSGrad, 22 for bf16 params) with no arithmetic, on the same tensors and threads, timed "
                 "in turn with the contenders (its fastest repeat); no-bc is compared with torch's bias-corrected "
                 "AdamW")
    if report["rows_over_ceiling"]:
        lines.append(f"warning: adamlab beat the measured ceiling in {', '.join(report['rows_over_ceiling'])}: "
                     "the ceiling is wrong there (noise on a shared machine); rerun with more --repeats")
    fs = report["first_step"]
    if fs:
        lines.append(f"First adamlab step in a fresh process: {fs['cold_s']:.2f} s cold (kernel built), "
                     f"{fs['warm_s']:.2f} s warm (cached build)")
    lines += [f"  case {key}: {label}" for key, label in report["cases"].items()]
    return lines
