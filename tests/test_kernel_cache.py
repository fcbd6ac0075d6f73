"""The kernel cache and the compiler can only slow a run down, never stop it.

Each case runs a fresh process with a broken machine set up through its
environment (compiler, cache directory, HOME) and checks that steps still
agree with torch.optim, that at most one warning is printed, and that a
broken build never poisons the cache for later processes.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each case starts fresh processes and compiles kernels

STEP = textwrap.dedent("""
    import json, warnings, torch, adamlab
    from adamlab.backends import build
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.randn(300)); q = torch.nn.Parameter(p.detach().clone())
    ours, theirs = adamlab.AdamW([p], amsgrad=True), torch.optim.AdamW([q], amsgrad=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for t in range(3):
            p.grad = torch.randn(300); q.grad = p.grad.clone()
            ours.step(); theirs.step()
        r = torch.nn.Parameter(torch.ones(50)); r.grad = torch.ones(50)
        adamlab.SGD([r], lr=0.5, momentum=0.9, nesterov=True).step()  # a second configuration
    sgd_right = bool(torch.allclose(r, torch.full_like(r, 0.05)))
    print(json.dumps({"close": bool(torch.allclose(p, q, atol=1e-6)) and sgd_right,
                      "builds": build.builds,
                      "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]}))
""")


def run(env_changes: dict, script: str = STEP, timeout: int = 180) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("CC", "ADAMLAB_CACHE_DIR")}
    env.update({k: v for k, v in env_changes.items() if v is not None})
    for k, v in env_changes.items():
        if v is None:
            env.pop(k, None)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def script(body: str) -> Path:
    """An executable shell script standing in for a compiler."""
    path = Path(os.environ.get("PYTEST_TMP", "/tmp")) / f"cc_{abs(hash(body))}.sh"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def kernels(cache: Path) -> list[Path]:
    return sorted((cache / "kernels").glob("*.so"))


def test_a_truncated_cached_kernel_is_rebuilt(cache):
    first = run({"ADAMLAB_CACHE_DIR": str(cache)})
    assert first["close"] and first["builds"] == 2
    for lib in kernels(cache):
        lib.write_bytes(lib.read_bytes()[:100])  # "file too short" / SIGBUS inside dlopen before
    again = run({"ADAMLAB_CACHE_DIR": str(cache)})
    assert again["close"] and again["builds"] == 2 and not again["warnings"]


def test_garbage_in_place_of_a_cached_kernel_is_rebuilt(cache):
    run({"ADAMLAB_CACHE_DIR": str(cache)})
    for lib in kernels(cache):
        lib.write_bytes(os.urandom(lib.stat().st_size))  # "invalid ELF header" before
    again = run({"ADAMLAB_CACHE_DIR": str(cache)})
    assert again["close"] and again["builds"] == 2 and not again["warnings"]


def test_a_cache_directory_that_is_a_file_falls_back_to_a_temporary_one(tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    result = run({"ADAMLAB_CACHE_DIR": str(blocker)})
    assert result["close"] and result["builds"] == 2 and not result["warnings"]


@pytest.mark.parametrize("home", ["missing", "unset", "read-only"])
def test_no_usable_home_builds_in_a_temporary_directory(tmp_path, home):
    env = {"ADAMLAB_CACHE_DIR": None}
    if home == "missing":
        env["HOME"] = str(tmp_path / "nowhere" / "at-all")
        (tmp_path / "nowhere").mkdir()
        (tmp_path / "nowhere").chmod(0o500)
    elif home == "unset":
        env["HOME"] = None
    else:
        ro = tmp_path / "ro-home"
        ro.mkdir()
        ro.chmod(0o500)
        env["HOME"] = str(ro)
    result = run(env)
    assert result["close"] and not result["warnings"]


def test_home_is_not_consulted_when_the_cache_directory_is_set(cache):
    probe = STEP.replace("import json, warnings, torch, adamlab",
                           "import json, warnings, pathlib\n"
                           "pathlib.Path.home = staticmethod(lambda: (_ for _ in ()).throw(RuntimeError('home')))\n"
                           "import torch, adamlab")
    result = run({"ADAMLAB_CACHE_DIR": str(cache), "HOME": None}, probe)
    assert result["close"] and not result["warnings"] and kernels(cache)


@pytest.mark.parametrize("cc", ["gcc -std=c11", "env gcc"])
def test_a_compiler_command_with_arguments_is_parsed_like_a_shell(cache, cc):
    if shutil.which("gcc") is None:
        pytest.skip("needs gcc")
    result = run({"ADAMLAB_CACHE_DIR": str(cache), "CC": cc})
    assert result["close"] and result["builds"] == 2 and not result["warnings"]


def test_a_missing_compiler_falls_back_with_one_warning_naming_it(cache):
    result = run({"ADAMLAB_CACHE_DIR": str(cache), "CC": "/no/such/compiler"})
    assert result["close"] and result["builds"] == 0
    assert len(result["warnings"]) == 1 and "/no/such/compiler" in result["warnings"][0]


def test_a_compiler_that_writes_garbage_does_not_poison_the_cache(cache, tmp_path):
    bad = script('for a; do out="$a"; done; head -c 4096 /dev/urandom > "$out"')  # -o's file is the last arg
    result = run({"ADAMLAB_CACHE_DIR": str(cache), "CC": str(bad)})
    assert result["close"] and result["builds"] == 0 and len(result["warnings"]) == 1
    assert not kernels(cache)
    good = run({"ADAMLAB_CACHE_DIR": str(cache)})
    assert good["close"] and good["builds"] == 2 and not good["warnings"]


def test_a_compiler_that_hangs_is_given_up_on(cache):
    slow = script("sleep 120")
    result = run({"ADAMLAB_CACHE_DIR": str(cache), "CC": str(slow), "ADAMLAB_BUILD_TIMEOUT": "2"}, timeout=90)
    assert result["close"] and result["builds"] == 0
    assert len(result["warnings"]) == 1 and "did not finish" in result["warnings"][0]


def test_a_warm_cache_needs_no_compiler(cache, tmp_path):
    run({"ADAMLAB_CACHE_DIR": str(cache)})
    bare = tmp_path / "bin"
    bare.mkdir()
    result = run({"ADAMLAB_CACHE_DIR": str(cache), "PATH": str(bare)})
    assert result["close"] and result["builds"] == 0 and not result["warnings"]


def test_a_required_fused_step_reports_the_broken_compiler(cache):
    body = STEP.replace("adamlab.AdamW([p], amsgrad=True)", "adamlab.AdamW([p], amsgrad=True, fused=True)")
    env = {k: v for k, v in os.environ.items() if k != "CC"}
    env.update(ADAMLAB_CACHE_DIR=str(cache), CC="/no/such/compiler")
    done = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0
    assert "fused=True" in done.stderr and "/no/such/compiler" in done.stderr
