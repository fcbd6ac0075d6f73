"""The lab's plumbing: claim registry, runner, report files and the command line."""

from __future__ import annotations

import dataclasses
import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest

from adamlab.lab import claims as registry
from adamlab.lab import cli, report, reproduce
from adamlab.lab.core import Claim, Context, Outcome

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def strict_json(text: str):
    """json.loads that refuses NaN and Infinity, which strict JSON readers reject."""

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def fake_claim(cid: str, value: float, threshold: float = 1.0, explode: bool = False) -> Claim:
    """A claim whose metric is ``value`` and which reproduces when value >= threshold."""

    def run(ctx: Context) -> Outcome:
        advance = ctx.progress(f"{cid} work", 3)
        for _ in range(3):
            advance()
        if explode:
            raise RuntimeError(f"{cid} exploded on purpose")
        fig, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [0, value])
        path = ctx.figure_path(f"{cid.lower()}.png")
        fig.savefig(path, dpi=50)
        plt.close(fig)
        metrics = {"value": value, "nested": {"inf": -math.inf, "list": [1.0, 2.5]}}
        table = {"caption": "numbers <&>", "columns": ["a", "b"], "rows": [[1, 2.5], ["x", math.inf]]}
        return Outcome(metrics, [path], [table], notes="a note")

    return Claim(
        cid,
        f"title {cid}",
        "Someone 2020",
        "statement <b>",
        "setup",
        "value >= 1",
        run,
        lambda m: m["value"] >= threshold,
    )


@pytest.fixture
def fake_claims(monkeypatch):
    claims = [fake_claim("C7", 2.0), fake_claim("C8", 0.5), fake_claim("C9", 1.0, explode=True)]
    monkeypatch.setattr(registry, "all_claims", lambda: claims)
    return claims


# ------------------------------------------------------------------ registry


def test_registry_order_and_selection(monkeypatch):
    assert [name[:2] for name in registry.MODULES] == ["c1", "c2", "c3", "c4", "c5", "c6", "c7"]
    monkeypatch.setattr(registry, "MODULES", ("c1_bias_correction", "c4_amsgrad", "c6_half_precision"))
    assert [c.id for c in registry.all_claims()] == ["C1", "C4", "C6"]
    assert [c.id for c in registry.select(["c6", " C1"])] == ["C1", "C6"]
    with pytest.raises(ValueError, match="C42"):
        registry.select(["C42"])


def test_missing_module_is_skipped_with_a_warning(monkeypatch):
    monkeypatch.setattr(registry, "MODULES", ("c1_bias_correction", "c0_not_written_yet"))
    with pytest.warns(registry.MissingClaimWarning, match="c0_not_written_yet"):
        claims = registry.all_claims()
    assert [c.id for c in claims] == ["C1"]


def test_a_claim_with_a_broken_import_is_an_error_not_a_skip(monkeypatch):
    def broken(name):
        raise ModuleNotFoundError("No module named 'scipy_typo'", name="scipy_typo")

    monkeypatch.setattr(registry.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="scipy_typo"):
        registry.load("c1_bias_correction")


# -------------------------------------------------------------------- report


def test_plain_and_fmt():
    assert report.plain({"a": [math.inf, -math.inf, math.nan, 1.5]}) == {"a": ["inf", "-inf", "nan", 1.5]}
    assert report.fmt(0.000123456) == "0.00012346"
    assert report.fmt([1, 2.0, True]) == "[1, 2, yes]"
    assert report.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == [("a / b", 1), ("a / c / d", 2), ("e", 3)]


def test_reproduce_writes_verdicts_json_and_html(fake_claims, tmp_path):
    results = reproduce.reproduce(tmp_path, quick=True, seed=3)
    assert [r.verdict for r in results] == ["reproduced", "not reproduced", "error"]
    assert "exploded on purpose" in results[2].error

    data = strict_json((tmp_path / "results.json").read_text())
    assert [c["id"] for c in data["claims"]] == ["C7", "C8", "C9"]
    assert [c["verdict"] for c in data["claims"]] == ["reproduced", "not reproduced", "error"]
    first = data["claims"][0]
    assert set(first) >= {"id", "title", "verdict", "metrics", "criterion"}
    assert first["metrics"]["nested"]["inf"] == "-inf"
    env = data["environment"]
    assert env["seed"] == 3 and env["quick"] is True
    assert {"python", "torch", "numpy", "cpu", "torch threads", "platform", "wall time (s)"} <= set(env)

    page = (tmp_path / "index.html").read_text()
    assert page.count('src="data:image/png;base64,') == 2  # the erroring claim has no figure
    assert "http://" not in page and "https://" not in page
    assert "statement &lt;b&gt;" in page and "numbers &lt;&amp;&gt;" in page
    assert page.count('class="verdict reproduced"') == 2  # summary row and section heading
    for name in ("c7.png", "c8.png"):
        assert (tmp_path / "figures" / name).read_bytes().startswith(PNG_MAGIC)


def test_verdict_is_computed_by_judge_not_stored(tmp_path):
    ctx = Context(tmp_path)
    assert reproduce.run_claim(fake_claim("C7", 1.0), ctx).verdict == "reproduced"
    assert reproduce.run_claim(fake_claim("C7", 0.999), ctx).verdict == "not reproduced"


def test_a_judge_that_cannot_decide_gives_not_tested(tmp_path):
    undecided = dataclasses.replace(fake_claim("C7", 1.0), judge=lambda metrics: None)
    assert reproduce.run_claim(undecided, Context(tmp_path)).verdict == "not tested"


# ----------------------------------------------------------------------- cli


def test_cli_reproduce_exit_codes(fake_claims, tmp_path, monkeypatch):
    assert cli.main(["reproduce", "--out", str(tmp_path / "a"), "--only", "C7,C8"]) == 0
    assert cli.main(["reproduce", "--out", str(tmp_path / "b"), "--only", "C9"]) == 1
    assert cli.main(["reproduce", "--out", str(tmp_path / "c"), "--only", "C5000"]) == 2


def test_cli_bench_unavailable(monkeypatch, capsys):
    monkeypatch.setattr(cli, "_bench", lambda: None)
    assert cli.main(["bench"]) == 2
    assert "unavailable" in capsys.readouterr().out


def test_cli_schedule_draws_png(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert cli.main(["schedule", "--warmup", "10", "--total", "100", "--min-ratio", "0.1", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    # Ma & Yarats: the untuned linear warmup lasts 2 / (1 - beta2) steps
    assert cli.main(["schedule", "--warmup", "untuned", "--beta2", "0.99", "--total", "400", "--out", str(out)]) == 0
    assert "warmup 200 steps" in capsys.readouterr().out
    assert cli.main(["schedule", "--warmup", "500", "--total", "100", "--out", str(out)]) == 2
    with pytest.raises(SystemExit):
        cli.main(["schedule", "--warmup", "soon", "--total", "100"])


def test_report_survives_a_missing_figure_and_odd_metrics(tmp_path):
    claim = fake_claim("C7", 1.0)
    outcome = Outcome({"where": tmp_path, "pair": (1, 2)}, [tmp_path / "figures" / "never_written.png"])
    page, data = report.write(tmp_path, [report.ClaimResult(claim, outcome, "reproduced", 0.1)], {"seed": 0})
    assert "figure missing: never_written.png" in page.read_text()
    assert strict_json(data.read_text())["claims"][0]["metrics"] == {"where": str(tmp_path), "pair": [1, 2]}
