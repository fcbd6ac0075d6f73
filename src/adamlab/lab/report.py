"""The report: one self-contained index.html, plus results.json for machines.

The page embeds every figure as a data URI and loads nothing else, so it can
be mailed, archived or opened offline. A small inline script records whether
every image decoded (read by tests/test_report_browser.py) and opens the
collapsed sections before printing.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from .core import Claim, Outcome

REPRODUCED, NOT_REPRODUCED, NOT_TESTED, ERROR = "reproduced", "not reproduced", "not tested", "error"


@dataclass
class ClaimResult:
    """One claim's run: its outcome (None if it raised), verdict and time."""

    claim: Claim
    outcome: Outcome | None
    verdict: str
    seconds: float
    error: str = ""


# ------------------------------------------------------------------ values


def plain(value: Any) -> Any:
    """A JSON-safe copy: non-finite floats become "inf", "-inf" or "nan" (strict JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy or torch scalar
        return plain(value.item())
    return value


def fmt(value: Any) -> str:
    """A value as text for the page: 5 significant digits (enough to see fp16 rounding), lists inline."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.5g}" if math.isfinite(value) else str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {fmt(v)}" for k, v in value.items())
    if hasattr(value, "item") and callable(value.item):
        return fmt(value.item())
    return str(value)


def flatten(metrics: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested metrics as (path, leaf) rows: {"a": {"b": 1}} -> [("a / b", 1)]."""
    rows = []
    for key, value in metrics.items():
        path = f"{prefix} / {key}" if prefix else str(key)
        rows.extend(flatten(value, path) if isinstance(value, dict) else [(path, value)])
    return rows


# ------------------------------------------------------------- results.json


def results_json(results: list[ClaimResult], environment: dict) -> dict:
    claims = []
    for r in results:
        entry = {
            "id": r.claim.id,
            "title": r.claim.title,
            "verdict": r.verdict,
            "metrics": r.outcome.metrics if r.outcome else {},
            "criterion": r.claim.criterion,
            "citation": r.claim.citation,
            "seconds": round(r.seconds, 3),
            "figures": [f"figures/{Path(f).name}" for f in (r.outcome.figures if r.outcome else [])],
        }
        if r.error:
            entry["error"] = r.error
        claims.append(entry)
    return plain({"claims": claims, "environment": environment})


# ------------------------------------------------------------------- html

# The inline script fills #load-status once the page has loaded: how many
# images decoded, which failed, and any resource fetched from outside the page.
PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>adamlab reproduce: $headline</title>
<style>
  body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2125;
         max-width: 62rem; margin: 2rem auto; padding: 0 1.25rem; }
  h1 { font-size: 1.6rem; margin-bottom: .2rem; }
  h2 { font-size: 1.3rem; margin-top: 2.5rem; border-top: 2px solid #d0d7de; padding-top: 1rem; }
  h3 { font-size: 1rem; margin: 1.2rem 0 .3rem; }
  .sub { color: #57606a; margin-top: 0; }
  table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .88rem; }
  th, td { border: 1px solid #d0d7de; padding: .25rem .55rem; text-align: left; vertical-align: top; }
  th { background: #f3f5f7; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  p.caption { color: #57606a; font-size: .88rem; margin: 1rem 0 0; }
  .verdict { display: inline-block; padding: .05rem .55rem; border-radius: .8rem; font-weight: 600;
             font-size: .85rem; white-space: nowrap; }
  .reproduced { background: #dafbe1; color: #116329; }
  .not-reproduced { background: #fff1c2; color: #7d4e00; }
  .error { background: #ffebe9; color: #a40e26; }
  .not-tested { background: #eaeef2; color: #424a53; }
  .criterion { background: #f6f8fa; border-left: 4px solid #8c959f; padding: .5rem .8rem; }
  .cite { color: #57606a; font-style: italic; }
  figure { margin: 1rem 0; }
  figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
  figcaption { color: #57606a; font-size: .8rem; }
  pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; font-size: .8rem; }
  details summary { cursor: pointer; color: #0969da; }
  @media print {
    body { max-width: none; margin: 0; font-size: 11pt; }
    h2 { break-before: page; }
    figure, table { break-inside: avoid; }
    details summary { display: none; }
    a { color: inherit; text-decoration: none; }
  }
</style>
<script>
  (function () {
    var failed = [];
    window.addEventListener("error", function (e) {
      if (e.target && e.target !== window) failed.push(e.target.alt || e.target.tagName);
    }, true);
    window.addEventListener("load", function () {
      var images = Array.prototype.slice.call(document.images);
      var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
      var external = performance.getEntriesByType("resource")
        .map(function (e) { return e.name; })
        .filter(function (n) { return n.indexOf("data:") !== 0; });
      document.getElementById("load-status").textContent = JSON.stringify({
        images: images.length, loaded: images.length - broken.length,
        broken: broken.map(function (i) { return i.alt; }), errors: failed, external: external
      });
    });
    window.addEventListener("beforeprint", function () {
      document.querySelectorAll("details").forEach(function (d) { d.open = true; });
    });
  })();
</script>
</head>
<body>
<h1>adamlab reproduce</h1>
<p class="sub">$headline &middot; $mode &middot; seed $seed &middot; $finished</p>

<h2 style="border: none; margin-top: 1rem">Summary</h2>
<table>
<thead><tr><th>claim</th><th>title</th><th>verdict</th><th>time (s)</th></tr></thead>
<tbody>
$summary_rows
</tbody>
</table>

<h3>Environment</h3>
<table>
<tbody>
$environment_rows
</tbody>
</table>

$sections
<pre id="load-status" hidden></pre>
</body>
</html>
""")

SECTION = Template("""
<section id="$anchor">
<h2>$id. $title <span class="verdict $verdict_class">$verdict</span></h2>
<p class="cite">$citation</p>
<h3>Claim</h3>
<p>$statement</p>
<h3>Setup</h3>
<p>$setup</p>
$figures
$tables
$notes
<h3>Criterion</h3>
<p class="criterion">$criterion<br>Verdict: <strong>$verdict</strong>
(computed from the metrics below; $seconds s).</p>
$metrics
$error
</section>
""")


def esc(value: Any) -> str:
    return html.escape(fmt(value))


def cell(value: Any) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{esc(value)}</td>' if numeric else f"<td>{esc(value)}</td>"


def table_html(table: dict) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in table["columns"])
    body = "\n".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in table["rows"])
    # the caption sits above the table as a paragraph, so it is not squeezed to a narrow table's width
    caption = f'<p class="caption">{esc(table["caption"])}</p>' if table.get("caption") else ""
    return f"{caption}<table><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def figure_html(path: Path) -> str:
    """The PNG inline as a data URI, with a link to the file next to the page."""
    name = html.escape(Path(path).name)
    if not Path(path).is_file():
        return f'<p class="verdict error">figure missing: {name}</p>'
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{name}">'
        f'<figcaption><a href="figures/{name}">{name}</a></figcaption></figure>'
    )


def verdict_class(verdict: str) -> str:
    return verdict.replace(" ", "-")


def section_html(r: ClaimResult) -> str:
    o = r.outcome
    metrics_rows = [[k, v] for k, v in flatten(o.metrics)] if o else []
    metrics = (
        "<details><summary>All metrics</summary>"
        + table_html({"columns": ["metric", "value"], "rows": metrics_rows})
        + "</details>"
        if metrics_rows
        else ""
    )
    return SECTION.substitute(
        anchor=html.escape(r.claim.id.lower()),
        id=html.escape(r.claim.id),
        title=html.escape(r.claim.title),
        verdict=html.escape(r.verdict),
        verdict_class=verdict_class(r.verdict),
        citation=html.escape(r.claim.citation),
        statement=html.escape(r.claim.statement),
        setup=html.escape(r.claim.setup),
        figures="\n".join(figure_html(f) for f in o.figures) if o else "",
        tables="\n".join(table_html(t) for t in o.tables) if o else "",
        notes=f"<p>{html.escape(o.notes)}</p>" if o and o.notes else "",
        criterion=html.escape(r.claim.criterion),
        seconds=f"{r.seconds:.1f}",
        metrics=metrics,
        error=f"<h3>Error</h3><pre>{html.escape(r.error)}</pre>" if r.error else "",
    )


def page_html(results: list[ClaimResult], environment: dict) -> str:
    reproduced = sum(r.verdict == REPRODUCED for r in results)
    summary = "\n".join(
        f'<tr><td><a href="#{html.escape(r.claim.id.lower())}">{html.escape(r.claim.id)}</a></td>'
        f"<td>{html.escape(r.claim.title)}</td>"
        f'<td><span class="verdict {verdict_class(r.verdict)}">{html.escape(r.verdict)}</span></td>'
        f'<td class="num">{r.seconds:.1f}</td></tr>'
        for r in results
    )
    env_rows = "\n".join(f"<tr><th>{html.escape(str(k))}</th><td>{esc(v)}</td></tr>" for k, v in environment.items())
    return PAGE.substitute(
        headline=f"{reproduced} of {len(results)} claims reproduced",
        mode="quick settings" if environment.get("quick") else "full settings",
        seed=html.escape(str(environment.get("seed", ""))),
        finished=html.escape(str(environment.get("finished", ""))),
        summary_rows=summary,
        environment_rows=env_rows,
        sections="\n".join(section_html(r) for r in results),
    )


def write(out_dir: Path, results: list[ClaimResult], environment: dict) -> tuple[Path, Path]:
    """Write index.html and results.json into out_dir; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    page, data = out_dir / "index.html", out_dir / "results.json"
    page.write_text(page_html(results, environment), encoding="utf-8")
    data.write_text(
        json.dumps(results_json(results, environment), indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8"
    )
    return page, data
