"""The ``adamlab`` command line, run as a user runs it: the installed console script in a subprocess.

Output goes to a pipe, as in CI or ``| tee``; every bad argument must end the
command before any work, in one line that names the flag the user typed.
"""

from __future__ import annotations

import importlib.metadata
import json
import time

import pytest
from labcheck import PNG_MAGIC, run_cli

from adamlab.lab.cli import INSTALL

BLOCK_LAB_EXTRA = '''
import sys
class _NotInstalled:
    """Behave as a plain pip install adamlab: the lab extra's packages cannot be found."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"matplotlib", "scipy", "sklearn", "rich"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _NotInstalled())
'''


def one_line_error(result, *words: str) -> str:
    """The command failed with usage status 2 and a single line on stderr that contains every word."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"adamlab {importlib.metadata.version('adamlab')}"


# ------------------------------------------------------------------ reproduce


def test_an_unwritable_report_folder_fails_before_any_work(tmp_path):
    start = time.perf_counter()
    result = run_cli("reproduce", "--out", "/proc/forbidden")
    seconds = time.perf_counter() - start
    one_line_error(result, "--out", "/proc/forbidden")
    assert seconds < 10  # a full run takes minutes: nothing ran (the start-up is mostly importing torch)


def test_a_file_in_place_of_the_report_folder_is_refused(tmp_path):
    blocker = tmp_path / "report"
    blocker.write_text("not a folder")
    one_line_error(run_cli("reproduce", "--out", str(blocker)), "--out", str(blocker), "not a folder")
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--only", "C42"], ["--only", "C42"]),
        (["--only", ","], ["--only"]),
        (["--seed", "-1"], ["--seed", "-1"]),
        (["--seed", "one"], ["--seed", "one"]),
    ],
)
def test_bad_reproduce_arguments_name_their_flag(tmp_path, args, words):
    one_line_error(run_cli("reproduce", "--out", str(tmp_path / "r"), *args), *words)
    assert not (tmp_path / "r").exists()


@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_a_run_owns_its_folder_and_prints_plain_text(tmp_path):
    """A quick C6 run into a folder that holds an earlier run's report and a user's file."""
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    (out / "figures" / "c2_grid.png").write_bytes(b"from an earlier run")
    (out / "figures" / "keep.png").write_bytes(b"the user's")
    earlier = {"claims": [{"id": "C2", "figures": [{"file": "figures/c2_grid.png"}]}]}
    (out / "results.json").write_text(json.dumps(earlier))
    result = run_cli("reproduce", "--quick", "--only", "C6", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\r" not in result.stdout  # no colour codes, no redrawn bars
    assert "C6     reproduced" in result.stdout
    assert "eps = 1e-8 is not negligible in half precision" in result.stdout  # titles printed in full
    assert not (out / "figures" / "c2_grid.png").exists()
    assert (out / "figures" / "keep.png").read_bytes() == b"the user's"
    assert (out / "figures" / "c6_ema.png").read_bytes().startswith(PNG_MAGIC)
    assert json.loads((out / "results.json").read_text())["claims"][0]["parts"][0]["verdict"] == "reproduced"


# ------------------------------------------------------------------ schedule


@pytest.mark.parametrize(
    "args, words",
    [
        (["--warmup", "500", "--total", "100"], ["--warmup", "500", "--total", "100"]),
        (["--warmup", "untuned", "--beta2", "0.999", "--total", "100"], ["--warmup", "--beta2", "--total"]),
        (["--warmup", "soon", "--total", "100"], ["--warmup", "soon"]),
        (["--warmup", "10", "--total", "0"], ["--total"]),
        (["--warmup", "10", "--total", "100", "--min-ratio", "2"], ["--min-ratio", "2"]),
        (["--warmup", "untuned", "--total", "100", "--beta2", "1"], ["--beta2"]),
    ],
)
def test_bad_schedule_arguments_name_their_flag(tmp_path, args, words):
    line = one_line_error(run_cli("schedule", *args, "--out", str(tmp_path / "s.png")), *words)
    assert "warmup_steps" not in line and "total_steps" not in line
    assert not (tmp_path / "s.png").exists()


@pytest.mark.parametrize(
    "out, words",
    [("/proc/forbidden/s.png", ["--out", "/proc/forbidden"]), ("{tmp}/s.notanimage", ["--out", ".notanimage"]),
     ("{tmp}/missing/s.png", ["--out", "does not exist"])],
)
def test_an_unwritable_schedule_image_fails_in_one_line(tmp_path, out, words):
    one_line_error(run_cli("schedule", "--warmup", "10", "--total", "100", "--out", out.format(tmp=tmp_path)), *words)


def test_schedule_draws_an_image(tmp_path):
    out = tmp_path / "s.png"
    result = run_cli("schedule", "--warmup", "untuned", "--beta2", "0.99", "--total", "4000", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "warmup 200 steps" in result.stdout  # Ma & Yarats: 2 / (1 - beta2)
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_the_schedule_figure_shows_its_warmup():
    """Human title, a "step" axis, and an inset that draws the first steps of a short warmup from the schedule."""
    from adamlab.lab.schedule_plot import draw
    from adamlab.schedules import warmup_cosine

    schedule = warmup_cosine(100, 10_000, 0.1)
    fig = draw(schedule, 100, 10_000, 0.1)
    ax = fig.axes[0]
    assert ax.get_title().splitlines() == ["Learning-rate schedule",
                                           "linear warmup over 100 steps, then cosine decay to 10% of the base lr at "
                                           "step 10,000"]
    assert ax.get_xlabel() == "step"
    (inset,) = ax.child_axes
    steps, values = inset.lines[0].get_data()
    assert list(steps) == list(range(300)) and list(values) == [schedule(s) for s in range(300)]
    assert not draw(warmup_cosine(2000, 10_000), 2000, 10_000, 0.0).axes[0].child_axes  # wide enough to see


# ------------------------------------------------------------------ bench


@pytest.mark.parametrize(
    "args, words",
    [(["--cases", "a,d"], ["--cases", "d"]), (["--sections", "step,speed"], ["--sections", "speed"]),
     (["--variants", "adamw,lion"], ["--variants", "lion"]),
     (["--repeats", "0"], ["--repeats", "0"]), (["--layouts", "mlp,vit"], ["--layouts", "vit"])],
)
def test_bad_bench_arguments_name_their_flag(args, words):
    one_line_error(run_cli("bench", *args), *words)


@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_quick_bench_prints_the_cases_it_ran_in_plain_text():
    result = run_cli("bench", "--quick", "--sections", "step", "--cases", "c", "--variants", "adamw", "--repeats", "2")
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\r" not in result.stdout
    assert "case c: many small tensors of 1k-20k elements: 500 tensors" in result.stdout  # quick's, not full's
    assert "case a" not in result.stdout and "2000 tensors" not in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.split()[:2] == ["case", "variant"])
    row = result.stdout.splitlines()[result.stdout.splitlines().index(header) + 1]
    assert row.split()[:4] == ["c", "adamw", f"{sum_quick_c() / 1e6:.1f}M", "500"]


@pytest.mark.slow  # compiles every contender with inductor: about a minute
def test_compile_bench_runs_and_counts_what_dynamo_counts():
    result = run_cli("bench", "--sections", "compile", "--layouts", "mlp", "--repeats", "2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["compile"]
    mlp = report["layouts"]["mlp"]
    assert set(mlp["contenders"]) == {"adamlab", "adamlab-compiled", "torch", "torch-compiled"}
    assert mlp["graph_breaks"]["adamlab-compiled"] == 0 and mlp["contenders"]["adamlab-compiled"]["compilations"] <= 2
    assert set(report["train_step"]) == {"adamlab", "torch"}


def sum_quick_c() -> int:
    from adamlab.bench.cases import cases

    return sum(s[0] for s in cases(quick=True)["c"].shapes)


# ------------------------------------------------------------------ a plain install (no lab extra)


@pytest.fixture
def plain_install(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(BLOCK_LAB_EXTRA)
    return {"PYTHONPATH": str(tmp_path)}


@pytest.mark.parametrize("command", [["reproduce", "--quick"], ["schedule", "--warmup", "10", "--total", "100"]])
def test_commands_that_need_the_lab_extra_say_how_to_install_it(plain_install, tmp_path, command):
    line = one_line_error(run_cli(*command, env=plain_install, cwd=tmp_path), INSTALL)
    assert "matplotlib" in line


def test_version_and_bench_work_without_the_lab_extra(plain_install, tmp_path):
    assert run_cli("--version", env=plain_install).returncode == 0
    result = run_cli("bench", "--help", env=plain_install)
    assert result.returncode == 0 and "--repeats" in result.stdout
    one_line_error(run_cli("bench", "--cases", "z", env=plain_install), "--cases")
