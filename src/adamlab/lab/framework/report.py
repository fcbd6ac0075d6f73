"""The report: one self-contained index.html, plus results.json for machines.

The page embeds every figure as a data URI and loads nothing else, so it can
be mailed, archived or opened offline. A small inline script records whether
every image decoded (read by tests/test_report_browser.py) and opens the
collapsed sections before printing.

A run owns what it writes: figures listed by the previous results.json in the
same folder that this run did not write again are removed; nothing else in
the folder is touched.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from .claim import Claim, Outcome, Part
from .values import flatten, fmt, plain
from .verdicts import ERROR, REPRODUCED, css_class

RESULTS, PAGE_FILE, FIGURES = "results.json", "index.html", "figures"


@dataclass
class PartResult:
    part: Part
    verdict: str
    headline: str


@dataclass
class ClaimResult:
    """One claim's run: its outcome (None if it raised), the verdicts and the time."""

    claim: Claim
    outcome: Outcome | None
    parts: list[PartResult]
    verdict: str
    seconds: float
    error: str = ""
    files: list[Path] = field(default_factory=list)  # every figure file the run wrote


# ------------------------------------------------------------- results.json


def results_json(results: list[ClaimResult], environment: dict) -> dict:
    claims = []
    for r in results:
        o = r.outcome
        entry = {
            "id": r.claim.id,
            "title": r.claim.title,
            "verdict": r.verdict,
            "parts": [{"key": p.part.key, "title": p.part.title, "verdict": p.verdict, "headline": p.headline,
                       "criterion": p.part.criterion} for p in r.parts],
            "metrics": o.metrics if o else {},
            "citation": r.claim.citation,
            "seconds": round(r.seconds, 3),
            "figures": [{"file": f"{FIGURES}/{f.path.name}", "caption": f.caption, "alt": f.alt}
                        for f in (o.figures if o else [])],
            "files": sorted({f"{FIGURES}/{Path(f).name}" for f in r.files}),
        }
        if r.error:
            entry["error"] = r.error
        claims.append(entry)
    return plain({"claims": claims, "environment": environment})


def previous_files(out_dir: Path) -> set[str]:
    """Figure files (relative to out_dir) that the last run in this folder listed in its results.json."""
    try:
        data = json.loads((out_dir / RESULTS).read_text(encoding="utf-8"))
        entries = data["claims"]
    except (OSError, ValueError, KeyError, TypeError):
        return set()
    found = set()
    for entry in entries if isinstance(entries, list) else []:
        for f in entry.get("files", []) + entry.get("figures", []):
            name = f.get("file") if isinstance(f, dict) else f
            if isinstance(name, str) and name.startswith(f"{FIGURES}/") and "/" not in name[len(FIGURES) + 1:]:
                found.add(name)
    return found


def remove_stale(out_dir: Path, old: set[str], new: set[str]) -> list[Path]:
    """Delete the previous run's figures that this run did not write again; return what was removed."""
    removed = []
    for name in sorted(old - new):
        path = out_dir / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed.append(path)
    return removed


def write(out_dir: Path, results: list[ClaimResult], environment: dict) -> tuple[Path, Path]:
    """Write index.html and results.json into out_dir, remove the previous run's stale figures."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    old = previous_files(out_dir)
    data = results_json(results, environment)
    new = {name for entry in data["claims"] for name in entry["files"]}
    page, json_path = out_dir / PAGE_FILE, out_dir / RESULTS
    page.write_text(page_html(results, environment), encoding="utf-8")
    json_path.write_text(json.dumps(data, indent=2, allow_nan=False, default=str) + "\n", encoding="utf-8")
    remove_stale(out_dir, old, new)
    return page, json_path


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
  .small { font-size: .75rem; padding: 0 .45rem; }
  .reproduced { background: #dafbe1; color: #116329; }
  .partly-reproduced { background: #ddf4ff; color: #0a3069; }
  .not-reproduced { background: #fff1c2; color: #7d4e00; }
  .cannot-decide { background: #f3e8ff; color: #5a32a3; }
  .error { background: #ffebe9; color: #a40e26; }
  .not-tested { background: #eaeef2; color: #424a53; }
  ul.parts { padding-left: 1.1rem; }
  ul.parts li { margin-bottom: .45rem; }
  .criterion { color: #57606a; font-size: .85rem; }
  .quick { color: #57606a; font-size: .85rem; font-style: italic; }
  .cite { color: #57606a; font-style: italic; }
  figure { margin: 1rem 0; }
  figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
  figcaption { color: #424a53; font-size: .85rem; }
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
        broken: broken.map(function (i) { return i.dataset.file; }), errors: failed, external: external
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
<thead><tr><th>claim</th><th>title</th><th>verdict</th><th>parts</th><th>time (s)</th></tr></thead>
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
$quick
<h3>Verdict by part</h3>
<ul class="parts">
$parts
</ul>
$figures
$tables
$notes
<p class="criterion">The verdicts are computed from the metrics below ($seconds s).</p>
$metrics
$error
</section>
""")


def esc(value) -> str:
    return html.escape(fmt(value))


def badge(verdict: str, small: bool = False) -> str:
    size = " small" if small else ""
    return f'<span class="verdict {css_class(verdict)}{size}">{html.escape(verdict)}</span>'


def cell(value) -> str:
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return f'<td class="num">{esc(value)}</td>' if numeric else f"<td>{esc(value)}</td>"


def table_html(table: dict) -> str:
    head = "".join(f"<th>{esc(c)}</th>" for c in table["columns"])
    body = "\n".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in table["rows"])
    # the caption sits above the table as a paragraph, so it is not squeezed to a narrow table's width
    caption = f'<p class="caption">{esc(table["caption"])}</p>' if table.get("caption") else ""
    return f"{caption}<table><thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody></table>"


def figure_html(figure) -> str:
    """The PNG inline as a data URI, its caption, and a link to the file next to the page."""
    path = Path(figure.path)
    name = html.escape(path.name)
    if not path.is_file():
        return f'<p class="verdict error">figure missing: {name}</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(figure.alt)}" data-file="{name}">'
        f'<figcaption>{html.escape(figure.caption)} <a href="{FIGURES}/{name}">{name}</a></figcaption></figure>'
    )


def parts_html(r: ClaimResult) -> str:
    if not r.parts:
        return f"<li>{badge(r.verdict, small=True)} the claim did not finish</li>"
    return "\n".join(
        f"<li><strong>{html.escape(p.part.title)}</strong> {badge(p.verdict, small=True)}<br>"
        f"{html.escape(p.headline)}<br><span class=\"criterion\">Criterion: {html.escape(p.part.criterion)}</span></li>"
        for p in r.parts
    )


def section_html(r: ClaimResult, quick: bool) -> str:
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
        verdict_class=css_class(r.verdict),
        citation=html.escape(r.claim.citation),
        statement=html.escape(r.claim.statement),
        setup=html.escape(r.claim.setup),
        quick=f'<p class="quick">This run used quick settings: {html.escape(r.claim.quick_setup)}</p>' if quick else "",
        parts=parts_html(r),
        figures="\n".join(figure_html(f) for f in o.figures) if o else "",
        tables="\n".join(table_html(t) for t in o.tables) if o else "",
        notes=f"<p>{html.escape(o.notes)}</p>" if o and o.notes else "",
        seconds=f"{r.seconds:.1f}",
        metrics=metrics,
        error=f"<h3>Error</h3><pre>{html.escape(r.error)}</pre>" if r.error else "",
    )


def summary_row(r: ClaimResult) -> str:
    anchor = html.escape(r.claim.id.lower())
    parts = "<br>".join(f"{badge(p.verdict, small=True)} {html.escape(p.part.title)}" for p in r.parts) or "-"
    return (f'<tr><td><a href="#{anchor}">{html.escape(r.claim.id)}</a></td><td>{html.escape(r.claim.title)}</td>'
            f'<td>{badge(r.verdict)}</td><td>{parts}</td><td class="num">{r.seconds:.1f}</td></tr>')


def page_html(results: list[ClaimResult], environment: dict) -> str:
    reproduced = sum(r.verdict == REPRODUCED for r in results)
    errors = sum(r.verdict == ERROR for r in results)
    headline = f"{reproduced} of {len(results)} claims fully reproduced" + (f", {errors} raised" if errors else "")
    env_rows = "\n".join(f"<tr><th>{html.escape(str(k))}</th><td>{esc(v)}</td></tr>" for k, v in environment.items())
    quick = bool(environment.get("quick"))
    return PAGE.substitute(
        headline=headline,
        mode="quick settings" if quick else "full settings",
        seed=html.escape(str(environment.get("seed", ""))),
        finished=html.escape(str(environment.get("finished", ""))),
        summary_rows="\n".join(summary_row(r) for r in results),
        environment_rows=env_rows,
        sections="\n".join(section_html(r, quick) for r in results),
    )
