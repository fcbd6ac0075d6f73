"""The report renders in a real browser: every figure decodes and nothing is fetched.

Uses headless Chromium (Debian: apt-get install chromium); skipped only when
no Chromium binary can be found. Run as a script to screenshot a report:

    python tests/test_report_browser.py adamlab-report/index.html docs/report.png
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from adamlab.lab.framework import report
from adamlab.lab.framework.claim import Claim, FigureRef, Outcome, Part
from adamlab.lab.framework.verdicts import NOT_REPRODUCED, REPRODUCED

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
# no network, no background services, no first-run UI; --no-sandbox lets it run as root in containers
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]


def chromium() -> str | None:
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def browse(page: Path, *args: str) -> str:
    """Run headless Chromium on a local page with extra args; return its stdout."""
    with tempfile.TemporaryDirectory() as profile:
        cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", *args, Path(page).resolve().as_uri()]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def load_status(page: Path) -> dict:
    """The JSON the page's own script writes into #load-status after the load event."""
    dom = browse(page, "--dump-dom")
    match = re.search(r'<pre id="load-status"[^>]*>(.*?)</pre>', dom, re.S)
    assert match and match.group(1), "the page's load-status script did not run"
    return json.loads(match.group(1))


def screenshot(page: Path, png: Path, width: int = 1280, height: int = 2400) -> None:
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    browse(page, f"--window-size={width},{height}", f"--screenshot={Path(png).resolve()}")


# ---------------------------------------------------------------------- test


def small_report(out: Path) -> Path:
    """A report of two fake claims with real matplotlib figures."""
    results = []
    for i, verdict in enumerate((REPRODUCED, NOT_REPRODUCED)):
        fig, ax = plt.subplots(figsize=(4, 2.5))
        ax.plot(range(10), [x**i for x in range(10)])
        path = out / "figures" / f"f{i}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=60)
        plt.close(fig)
        part = Part("p", "the part", "criterion", lambda m: True, lambda m: "a sentence.")
        claim = Claim(f"C{i}", f"claim {i}", "cite", "statement", "setup", "quick", (part,), None)
        table = {"caption": "t", "columns": ["x"], "rows": [[1.5]]}
        outcome = Outcome({"x": 1.5}, [FigureRef(path, "What it shows. What to look at.", f"a curve {i}")], [table])
        parts = [report.PartResult(part, verdict, "a sentence.")]
        results.append(report.ClaimResult(claim, outcome, parts, verdict, 0.1))
    page, _ = report.write(out, results, {"python": sys.version.split()[0], "quick": True, "seed": 0})
    return page


needs_browser = pytest.mark.skipif(chromium() is None, reason="no Chromium binary found")


@needs_browser
@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_every_figure_loads_and_nothing_is_fetched(tmp_path):
    status = load_status(small_report(tmp_path))
    assert status == {"images": 2, "loaded": 2, "broken": [], "errors": [], "external": []}


@needs_browser
def test_a_broken_figure_is_detected(tmp_path):
    """The check itself can fail: corrupt one image and the page reports it."""
    page = small_report(tmp_path)
    html = page.read_text()
    page.write_text(html.replace("data:image/png;base64,iVBOR", "data:image/png;base64,AAAAA", 1))
    status = load_status(page)
    assert status["images"] == 2 and status["loaded"] == 1 and status["broken"] == ["f0.png"]


if __name__ == "__main__":
    if len(sys.argv) != 3 or chromium() is None:
        sys.exit("usage: python tests/test_report_browser.py REPORT.html OUT.png  (needs Chromium)")
    screenshot(Path(sys.argv[1]), Path(sys.argv[2]))
