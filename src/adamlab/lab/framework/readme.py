"""The README's results table, generated from a results.json, and the check that the two agree.

The table is written between two marker lines in README.md, so the rest of
the README stays hand-written. ``rejudge`` recomputes every part's verdict
and headline from the stored metrics with the claims' current code: a
change of wording needs no new run, and a change of criterion shows up as a
verdict that no longer matches.
"""

from __future__ import annotations

import copy

from . import registry
from .runner import judge_parts
from .values import revive
from .verdicts import claim_verdict

START = "<!-- results table: generated from docs/results.json by scripts/readme_results.py; do not edit by hand -->"
END = "<!-- end of results table -->"


def rejudge(data: dict) -> dict:
    """A copy of results.json whose parts and verdicts come from the current claims' judges."""
    out = copy.deepcopy(data)
    for entry in out["claims"]:
        if entry.get("error"):
            continue
        claim = registry.load(entry["id"])
        parts = judge_parts(claim, revive(entry["metrics"]))
        stored = {p["key"]: p for p in entry["parts"]}
        entry["parts"] = [{**stored.get(p.part.key, {}), "key": p.part.key, "title": p.part.title,
                           "verdict": p.verdict, "headline": p.headline, "criterion": p.part.criterion}
                          for p in parts]
        entry["verdict"] = claim_verdict([p.verdict for p in parts])
    return out


def load(env: dict) -> str:
    """How shared the cores were, where the run recorded it."""
    start, end = env.get("load average at start"), env.get("load average at end")
    if start is None or end is None:
        return ""
    return (f" with the cores shared (load average {start:g} at the start, {end:g} at the end, on "
            f"{env.get('cpu count')} cores)")


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(data: dict) -> str:
    """The markdown block: how the run was made, then one row per claim with its parts."""
    env = data["environment"]
    mode = "--quick" if env.get("quick") else "full"
    lines = [
        START,
        f"A {mode} run on this machine ({env.get('cpu count')} cores of an {env.get('cpu')}, torch "
        f"{env.get('torch')}, seed {env.get('seed')}) took {env.get('wall time (s)')} s{load(env)}. What it measured:",
        "",
        "| claim | verdict | parts: verdict, and what was measured |",
        "|---|---|---|",
    ]
    for c in data["claims"]:
        parts = "<br>".join(f"*{cell(p['title'])}*: **{p['verdict']}**. {cell(p['headline'])}" for p in c["parts"])
        lines.append(f"| {c['id']} {cell(c['title'])} | {c['verdict']} | {parts or cell(c.get('error', ''))} |")
    lines.append(END)
    return "\n".join(lines)


def replace_table(readme: str, block: str) -> str:
    """README text with the block between the markers replaced (ValueError if the markers are missing)."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise ValueError("README.md has no results-table markers")
    return readme[:start] + block + readme[end + len(END):]


def current_table(readme: str) -> str:
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise ValueError("README.md has no results-table markers")
    return readme[start:end + len(END)]
