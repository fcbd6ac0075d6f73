"""Checks shared by the lab's tests: well-formed outcomes, verdict flips, and running the command line."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

from adamlab.lab.framework.runner import judge_parts
from adamlab.lab.framework.values import as_stored, plain

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def leaves(value):
    """Every scalar in a nested dict/list of metrics."""
    if isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from leaves(v)
    else:
        yield value


def quick_outcome(claim, tmp_path_factory):
    """The claim's quick run (seed 0) in a fresh directory: the module-scoped outcome its tests share."""
    from adamlab.lab.framework.claim import Context

    return claim.run(Context(tmp_path_factory.mktemp(claim.id.lower()), quick=True, seed=0))


def assert_well_formed(outcome, finite: bool = True) -> None:
    """Metrics become strict JSON in results.json and, unless a non-finite value is the finding
    (``finite=False``), are finite; every figure is a real PNG with a caption and alt text."""
    json.dumps(plain(outcome.metrics), allow_nan=False)
    if finite:
        numbers = [x for x in leaves(outcome.metrics) if isinstance(x, (int, float)) and not isinstance(x, bool)]
        assert all(math.isfinite(x) for x in numbers)
    assert outcome.figures
    for figure in outcome.figures:
        assert figure.path.read_bytes().startswith(PNG_MAGIC)
        sentences = re.findall(r"[.!?](?=\s|$)", figure.caption)
        assert len(figure.caption) > 40 and 1 <= len(sentences) <= 2, figure.caption  # one or two sentences
        assert figure.alt and figure.alt != figure.path.name


def part_verdicts(claim, metrics: dict) -> dict[str, str]:
    """Each part's verdict, judged as the runner judges: on the metrics as results.json stores them."""
    return {p.part.key: p.verdict for p in judge_parts(claim, as_stored(metrics))}


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 300):
    """Run the installed ``adamlab`` console script as a user would; output is a pipe, not a terminal."""
    script = Path(sys.executable).with_name("adamlab")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "adamlab.lab.cli"]
    environment = {**os.environ, **(env or {})}
    return subprocess.run([*command, *args], capture_output=True, text=True, env=environment, cwd=cwd,
                          timeout=timeout)
