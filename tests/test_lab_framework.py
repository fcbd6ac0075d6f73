"""The lab's framework: verdicts by part, the registry, the runner, the report files and their ownership."""

from __future__ import annotations

import json
import math

import pytest
from labcheck import PNG_MAGIC

from adamlab.lab.framework import figures, registry, report, runner, sweep, values
from adamlab.lab.framework.claim import Claim, Context, FigureRef, Outcome, Part
from adamlab.lab.framework.console import Console, summary_lines
from adamlab.lab.framework.verdicts import (
    ERROR,
    NOT_REPRODUCED,
    NOT_TESTED,
    PARTLY,
    REPRODUCED,
    UNDECIDED,
    claim_verdict,
    part_verdict,
)


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, which strict JSON readers reject."""

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def fake_claim(cid: str, values_: dict, explode: bool = False, title: str | None = None) -> Claim:
    """A claim with one part per metric in ``values_``: part k reproduces when metrics[k] >= 1, and is not
    tested when metrics[k] is None."""

    def run(ctx: Context) -> Outcome:
        advance = ctx.progress(f"{cid} work", 3)
        for _ in range(3):
            advance()
        fig, ax = figures.new(3, 2)
        ax.plot([0, 1], [0, 1])
        saved = figures.save(ctx, fig, f"{cid.lower()}.png", "A line. Look at its slope.", "a rising line")
        if explode:
            raise RuntimeError(f"{cid} exploded on purpose")
        metrics = {**values_, "nested": {"inf": -math.inf, "list": [1.0, 2.5]}}
        table = {"caption": "numbers <&>", "columns": ["a", "b"], "rows": [[1, 2.5], ["x", math.inf]]}
        return Outcome(metrics, [saved], [table], notes="a note")

    def part(key):
        return Part(key, f"part {key}", f"{key} >= 1",
                    lambda m: None if m[key] is None else m[key] >= 1, lambda m: f"{key} was {m[key]}.")

    return Claim(cid, title or f"title {cid}", "Someone 2020", "statement <b>", "setup", "quick setup",
                 tuple(part(k) for k in values_), run)


@pytest.fixture
def fake_claims(monkeypatch):
    claims = {"C7": fake_claim("C7", {"a": 2.0}), "C8": fake_claim("C8", {"a": 2.0, "b": 0.5}),
              "C9": fake_claim("C9", {"a": 1.0}, explode=True)}
    monkeypatch.setattr(registry.claims, "PACKAGES", {k: f"fake_{k}" for k in claims})
    monkeypatch.setattr(registry, "load", lambda cid: claims[cid])
    return claims


# ------------------------------------------------------------------ verdicts (the rules as issue 11 states them)


@pytest.mark.parametrize(
    "parts, expected",
    [
        ([REPRODUCED], REPRODUCED),
        ([REPRODUCED, REPRODUCED], REPRODUCED),
        ([REPRODUCED, NOT_REPRODUCED], PARTLY),
        ([REPRODUCED, NOT_TESTED], PARTLY),
        ([REPRODUCED, UNDECIDED], PARTLY),
        ([NOT_REPRODUCED], NOT_REPRODUCED),
        ([NOT_REPRODUCED, NOT_TESTED], NOT_REPRODUCED),
        ([NOT_REPRODUCED, UNDECIDED], NOT_REPRODUCED),
        ([NOT_TESTED, NOT_TESTED], NOT_TESTED),
        ([UNDECIDED, NOT_TESTED], UNDECIDED),
    ],
)
def test_claim_verdict_from_parts(parts, expected):
    """Reproduced only if every part reproduces, partly if some do, not reproduced if none do; not tested only
    where nothing could be judged."""
    assert claim_verdict(parts) == expected


def test_part_verdict_words_and_refusals():
    assert [part_verdict(a) for a in (True, False, None, UNDECIDED)] == [REPRODUCED, NOT_REPRODUCED, NOT_TESTED,
                                                                           UNDECIDED]
    with pytest.raises(ValueError, match="judge"):
        part_verdict(1)
    with pytest.raises(ValueError):
        claim_verdict([])


def test_judges_see_the_metrics_as_stored():
    """A judge gets what results.json gives back: tuples become lists, inf survives as a float."""
    seen = {}
    claim = Claim("C7", "t", "c", "s", "setup", "q",
                  (Part("p", "p", "c", lambda m: seen.setdefault("m", m) is not None, lambda m: "."),),
                  lambda ctx: Outcome({"pair": (1, 2), "big": math.inf}))
    runner.run_claim(claim, Context(None))
    assert seen["m"] == {"pair": [1, 2], "big": math.inf}


# ------------------------------------------------------------------ registry


def test_registry_ids_and_selection():
    assert registry.known_ids() == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    assert registry.check_ids(["c6", " C1"]) == ["C1", "C6"]
    with pytest.raises(ValueError, match="C42"):
        registry.check_ids(["C42"])
    assert [c.id for c in registry.select(["c6", "c4"])] == ["C4", "C6"]


def test_missing_package_is_skipped_with_a_warning(monkeypatch):
    monkeypatch.setattr(registry.claims, "PACKAGES", {"C6": "c6_half_precision", "C0": "c0_not_written_yet"})
    with pytest.warns(registry.MissingClaimWarning, match="c0_not_written_yet"):
        claims = registry.select(None)
    assert [c.id for c in claims] == ["C6"]


def test_a_claim_with_a_broken_import_is_an_error_not_a_skip(monkeypatch):
    def broken(name):
        raise ModuleNotFoundError("No module named 'scipy_typo'", name="scipy_typo")

    monkeypatch.setattr(registry.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="scipy_typo"):
        registry.load("C1")


# ------------------------------------------------------------------ runner and report


def test_plain_revive_and_fmt():
    assert values.plain({"a": [math.inf, -math.inf, math.nan, 1.5]}) == {"a": ["inf", "-inf", "nan", 1.5]}
    revived = values.revive(values.plain({"a": [math.inf, -math.inf, 1.5, "text"]}))
    assert revived == {"a": [math.inf, -math.inf, 1.5, "text"]}
    assert values.fmt(0.000123456) == "0.00012346"
    assert values.fmt([1, 2.0, True]) == "[1, 2, yes]"
    assert values.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == [("a / b", 1), ("a / c / d", 2), ("e", 3)]


def test_reproduce_writes_parts_verdicts_json_and_html(fake_claims, tmp_path, capsys):
    results = runner.reproduce(tmp_path, quick=True, seed=3, console=Console(live=False))
    assert [r.verdict for r in results] == [REPRODUCED, PARTLY, ERROR]
    assert "exploded on purpose" in results[2].error

    data = strict_json((tmp_path / "results.json").read_text())
    claims = {c["id"]: c for c in data["claims"]}
    assert [p["verdict"] for p in claims["C8"]["parts"]] == [REPRODUCED, NOT_REPRODUCED]
    assert claims["C8"]["parts"][1]["headline"] == "b was 0.5."
    assert claims["C7"]["metrics"]["nested"]["inf"] == "-inf"
    assert claims["C7"]["figures"] == [{"file": "figures/c7.png", "caption": "A line. Look at its slope.",
                                        "alt": "a rising line"}]
    assert claims["C9"]["files"] == ["figures/c9.png"]  # written before it raised: this run owns it
    env = data["environment"]
    assert env["seed"] == 3 and env["quick"] is True
    assert {"python", "torch", "numpy", "cpu", "torch threads", "platform", "wall time (s)"} <= set(env)

    page = (tmp_path / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2  # the erroring claim has no figure in its section
    assert "http://" not in page and "https://" not in page
    assert "statement &lt;b&gt;" in page and "numbers &lt;&amp;&gt;" in page
    assert 'alt="a rising line"' in page and "A line. Look at its slope." in page
    assert page.count('class="verdict partly-reproduced"') == 2  # summary row and section heading
    assert "This run used quick settings: quick setup" in page
    for name in ("c7.png", "c8.png"):
        assert (tmp_path / "figures" / name).read_bytes().startswith(PNG_MAGIC)


def test_a_run_removes_the_previous_runs_figures_and_nothing_else(fake_claims, tmp_path):
    figs = tmp_path / "figures"
    figs.mkdir()
    for name in ("old_claim.png", "c7.png", "mine.png"):
        (figs / name).write_bytes(b"old")
    (tmp_path / "notes.txt").write_text("the user's own file")
    previous = {"claims": [{"id": "C0", "files": ["figures/old_claim.png", "figures/c7.png", "../notes.txt"]}]}
    (tmp_path / "results.json").write_text(json.dumps(previous))
    runner.reproduce(tmp_path, only=["C7"], console=Console(live=False))
    assert not (figs / "old_claim.png").exists()  # the earlier run's, not written again: removed
    assert (figs / "c7.png").read_bytes().startswith(PNG_MAGIC)  # written again: overwritten
    assert (figs / "mine.png").read_bytes() == b"old"  # never listed by a run: untouched
    assert (tmp_path / "notes.txt").read_text() == "the user's own file"


def test_plain_summary_prints_every_title_in_full(fake_claims, tmp_path):
    long = "a title much longer than any terminal is wide, " * 4
    result = runner.run_claim(fake_claim("C7", {"a": 2.0}, title=long), Context(tmp_path))
    lines = summary_lines([result], {"quick": False, "seed": 0})
    assert any(line.endswith(long) for line in lines)
    assert any(line.strip() == "- part a: reproduced" for line in lines)


def test_a_judge_that_cannot_decide(tmp_path):
    undecided = fake_claim("C7", {"a": None})
    assert runner.run_claim(undecided, Context(tmp_path)).verdict == NOT_TESTED


def test_report_survives_a_missing_figure_and_odd_metrics(tmp_path):
    claim = fake_claim("C7", {"a": 1.0})
    missing = FigureRef(tmp_path / "figures" / "never_written.png", "caption", "alt")
    outcome = Outcome({"where": tmp_path, "pair": (1, 2)}, [missing])
    result = report.ClaimResult(claim, outcome, [], REPRODUCED, 0.1)
    page, data = report.write(tmp_path, [result], {"seed": 0})
    assert "figure missing: never_written.png" in page.read_text()
    assert strict_json(data.read_text())["claims"][0]["metrics"] == {"where": str(tmp_path), "pair": [1, 2]}


# ------------------------------------------------------------------ sweeps


def peaked(optimum: float):
    """A score with one maximum at ``optimum`` on a log axis."""
    return lambda lr: -abs(math.log10(lr) - math.log10(optimum))


def test_a_sweep_grows_until_its_best_is_inside():
    calls = []

    def evaluate(ask):
        calls.append(ask)
        optimum = {"up": 3e-2, "down": 3e-5, "fine": 3e-3}
        return {name: {v: peaked(optimum[name])(v) for v in vs} for name, vs in ask.items()}

    sweeps = sweep.bracket({"up": [1e-3, 3e-3, 1e-2], "down": [1e-3, 3e-3, 1e-2], "fine": [1e-3, 3e-3, 1e-2]},
                           evaluate, max_extensions=5)
    assert sweeps["up"].values == pytest.approx([1e-3, 3e-3, 1e-2, 3e-2, 9e-2], rel=0.02)
    assert sweeps["up"].best == pytest.approx(3e-2, rel=0.02) and sweeps["up"].interior
    assert sweeps["down"].best == pytest.approx(3.7e-5, rel=0.02) and sweeps["down"].interior
    assert sweeps["fine"].extended == [] and sweeps["fine"].best == 3e-3
    assert all(len(ask) <= 3 for ask in calls[1:]) and all(len(v) == 1 for ask in calls[1:] for v in ask.values())


def test_a_sweep_stops_at_its_limit_and_says_so():
    sweeps = sweep.bracket({"x": [1.0, 10.0]}, lambda ask: {n: {v: v for v in vs} for n, vs in ask.items()},
                           max_extensions=2)
    assert sweeps["x"].values == [1.0, 10.0, 100.0, 1000.0] and not sweeps["x"].interior
    one = sweep.bracket({"x": [1.0]}, lambda ask: {n: {v: v for v in vs} for n, vs in ask.items()})
    assert one["x"].values == [1.0] and one["x"].extended == []
