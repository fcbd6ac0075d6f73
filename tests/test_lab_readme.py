"""The README's results table and the committed results.json agree, and so do the verdicts and today's judges.

The committed file is the results.json of a full ``adamlab reproduce`` run;
the README's table is generated from it (scripts/readme_results.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adamlab.lab.framework import readme
from adamlab.lab.framework.verdicts import claim_verdict

ROOT = Path(__file__).resolve().parent.parent
DATA = json.loads((ROOT / "docs" / "results.json").read_text(encoding="utf-8"))


def test_the_committed_run_is_a_full_run_of_every_claim():
    assert DATA["environment"]["quick"] is False
    assert [c["id"] for c in DATA["claims"]] == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    assert not any(c.get("error") for c in DATA["claims"])


@pytest.mark.parametrize("entry", DATA["claims"], ids=lambda c: c["id"])
def test_todays_judges_give_the_committed_verdicts(entry):
    """Re-judging the stored metrics with the current code reproduces every part's verdict and sentence."""
    fresh = next(c for c in readme.rejudge({"claims": [entry], "environment": {}})["claims"])
    assert [(p["key"], p["verdict"]) for p in fresh["parts"]] == [(p["key"], p["verdict"]) for p in entry["parts"]]
    assert [p["headline"] for p in fresh["parts"]] == [p["headline"] for p in entry["parts"]]
    assert entry["verdict"] == claim_verdict([p["verdict"] for p in entry["parts"]])


def test_the_readme_table_is_generated_from_the_committed_results():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert readme.current_table(text) == readme.table(DATA)


def test_replace_table_touches_only_the_block():
    text = f"before\n{readme.START}\nold\n{readme.END}\nafter\n"
    assert readme.replace_table(text, "NEW") == "before\nNEW\nafter\n"
    with pytest.raises(ValueError, match="markers"):
        readme.replace_table("no markers here", "NEW")
