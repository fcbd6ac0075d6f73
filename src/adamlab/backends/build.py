"""Compile C source (or C++, for :mod:`.hostcheck`) into a shared library once per machine, cache it on
disk, load it.

The cache can only slow a run down, never stop it: every failure (no
compiler, a compiler that fails, hangs or writes garbage, an unwritable or
missing cache directory, a truncated or corrupted cached file) raises
:class:`BuildError`, which the dispatcher turns into a fallback for that
configuration. Cached files carry a checksum, checked before they are
loaded; a file that fails it is rebuilt once into a fresh file. Builds are
keyed by source, flags and CPU only, so a warm cache works without a
compiler on PATH.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

FLAGS = ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-fno-math-errno", "-ffp-contract=off")
TIMEOUT_S = float(os.environ.get("ADAMLAB_BUILD_TIMEOUT", 300))  # seconds a build may take

_warned = False
builds = 0  # kernel compilations in this process (cache misses on disk), for tests and `adamlab bench`
_fallback_dir: Path | None = None
_running: set[subprocess.Popen] = set()  # compilers still running (a build in a background thread)


@atexit.register
def _stop_compilers() -> None:
    for proc in list(_running):  # a compiler outliving the process would leave its temporary files behind
        _kill(proc)


class BuildError(RuntimeError):
    """A kernel could not be found, built or loaded; the message names the file or compiler."""


def compiler(cxx: bool = False) -> list[str]:
    """The C (C++) compiler as a command line: ``$CC`` (``$CXX``) parsed like a shell would (``ccache gcc``),
    else gcc or cc (g++ or c++)."""
    variable, names = ("CXX", ("g++", "c++")) if cxx else ("CC", ("gcc", "cc"))
    given = os.environ.get(variable)
    if given:
        return shlex.split(given)
    found = shutil.which(names[0]) or shutil.which(names[1])
    if found is None:
        raise BuildError(f"no {'C++' if cxx else 'C'} compiler found on PATH (set {variable})")
    return [found]


def cache_dir() -> Path:
    """``$ADAMLAB_CACHE_DIR/kernels``, else ``~/.cache/adamlab/kernels``, else a private temporary directory."""
    global _fallback_dir
    try:
        root = os.environ.get("ADAMLAB_CACHE_DIR") or str(Path.home() / ".cache" / "adamlab")
        path = Path(root) / "kernels"
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK | os.X_OK):
            return path
    except (OSError, RuntimeError):  # RuntimeError: Path.home() with no usable HOME
        pass
    if _fallback_dir is None:
        _fallback_dir = Path(tempfile.mkdtemp(prefix="adamlab-kernels-"))
    return _fallback_dir


def _cpu_tag() -> str:
    """The CPU's feature flags: -march=native code must not run on another CPU."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return ""


def _checksum(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _verified(lib: Path) -> bool:
    try:
        return lib.is_file() and lib.with_suffix(".sha256").read_text().strip() == _checksum(lib)
    except OSError:
        return False


def _run_compiler(cmd: list[str]) -> tuple[int, str]:
    """(exit code, stderr) of a compiler run; killed after TIMEOUT_S (TimeoutExpired)."""
    # its own process group, so that a kill reaches what the compiler started (ccache, cc1, a script's children)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _running.add(proc)
    try:
        _, err = proc.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        _kill(proc)
        proc.wait()
        raise
    finally:
        _running.discard(proc)
    return proc.returncode, err


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 9)
    except OSError:  # already gone
        pass


def _compile(source: str, lib: Path, flags: tuple[str, ...], cxx: bool, counted: bool) -> None:
    """Build into a temporary file, check that it loads, then move it (and its checksum) into place."""
    global builds
    cmd = compiler(cxx)
    with tempfile.TemporaryDirectory(dir=lib.parent) as tmp:
        src, out = Path(tmp) / ("k.cpp" if cxx else "k.c"), Path(tmp) / "k.so"
        src.write_text(source)
        try:
            code, err = _run_compiler([*cmd, *flags, str(src), "-o", str(out)])
        except subprocess.TimeoutExpired:
            raise BuildError(f"compiler {shlex.join(cmd)} did not finish within {TIMEOUT_S:.0f} s") from None
        if code != 0:
            raise BuildError(f"compiler {shlex.join(cmd)} failed (exit {code}):\n{err[-2000:]}")
        try:
            ctypes.CDLL(str(out))  # a compiler that writes garbage must not poison the cache
        except OSError as e:
            raise BuildError(f"compiler {shlex.join(cmd)} produced a library that does not load: {e}") from None
        Path(tmp, "k.sha256").write_text(_checksum(out))
        os.replace(Path(tmp) / "k.sha256", lib.with_suffix(".sha256"))  # before the library: readers check it
        os.replace(out, lib)  # atomic: concurrent processes never load a half-written file
    builds += counted


def load_library(source: str, flags: tuple[str, ...] = FLAGS, *, cxx: bool = False, loader=ctypes.CDLL,
                 counted: bool = True, cached_only: bool = False):
    """The compiled library of ``source``, from the disk cache or freshly built; raises BuildError.

    ``loader``: ctypes.PyDLL for a library that calls the Python C API (it keeps the GIL);
    ``counted``: whether a build counts in :data:`builds`; ``cached_only``: raise rather than build."""
    digest = hashlib.sha256((source + " ".join(flags) + _cpu_tag()).encode()).hexdigest()[:24]
    try:
        lib = cache_dir() / f"adamlab_{digest}.so"
        for attempt in range(2):
            if not _verified(lib):
                if cached_only:
                    raise BuildError(f"{lib} is not in the cache")
                _compile(source, lib, flags, cxx, counted)
            try:
                return loader(str(lib))
            except OSError as e:
                if attempt:
                    raise BuildError(f"cached kernel {lib} does not load: {e}") from None
                lib.unlink(missing_ok=True)  # corrupted after it was verified: rebuild once
    except BuildError:
        raise
    except Exception as e:  # OSError and anything else from the filesystem or the compiler
        raise BuildError(f"kernel cache {cache_dir()}: {type(e).__name__}: {e}") from None
    raise AssertionError("unreachable")


class Cache:
    """Kernels by key, each made once per process; a key whose making failed raises its BuildError again."""

    def __init__(self):
        self.made: dict = {}
        self.failed: dict = {}
        self._lock = threading.Lock()

    def get(self, key, make):
        fn = self.made.get(key)
        if fn is not None:
            return fn
        with self._lock:
            if key in self.failed:
                raise self.failed[key]
            if key not in self.made:
                try:
                    self.made[key] = make()
                except BuildError as e:
                    self.failed[key] = e
                    raise
            return self.made[key]


def warn_once(error: Exception) -> None:
    """One warning per process: the run goes on, on the reference backend, slower."""
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"adamlab: fused CPU kernel unavailable, using the reference backend ({error})",
                      RuntimeWarning, stacklevel=5)
