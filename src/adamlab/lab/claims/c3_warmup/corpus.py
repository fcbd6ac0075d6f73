"""A character-level corpus: the docstrings of Python's standard library.

The lab ships the corpus compressed (``stdlib_docs.txt.xz`` beside this file) instead of
building it at run time, because the docstrings change with the Python
version: a shipped copy gives every user the same text. ``build_corpus``
is how the copy was made (on Python 3.11); running this module as a script
rewrites it.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import io
import lzma
import sys
import warnings
from functools import lru_cache
from pathlib import Path

import torch

CORPUS_PATH = Path(__file__).parent / "stdlib_docs.txt.xz"

# modules that open windows or browsers, print on import, or only hold tests
SKIP_MODULES = {
    "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test",
    "lib2to3", "pydoc_data", "ensurepip", "venv", "msilib", "winreg", "winsound", "nt", "msvcrt",
}


def _quiet_import(name: str):
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(
        io.StringIO()
    ):
        warnings.simplefilter("ignore")
        return importlib.import_module(name)


def build_corpus() -> str:
    """inspect.getdoc of each public stdlib module and of the classes and functions it defines.

    Modules in sorted order, members in sorted order, each distinct docstring
    once (getdoc inherits docs, which would repeat them), ASCII only.
    """
    names = sorted(n for n in sys.stdlib_module_names if not n.startswith("_") and n not in SKIP_MODULES)
    parts: list[str] = []
    seen: set[str] = set()

    def add(doc):
        if doc and doc not in seen:
            seen.add(doc)
            parts.append(doc)

    for name in names:
        try:
            module = _quiet_import(name)
        except Exception:  # platform-specific or optional modules
            continue
        add(inspect.getdoc(module))
        public = getattr(module, "__all__", None) or [m for m in dir(module) if not m.startswith("_")]
        for member in sorted(set(public)):
            obj = getattr(module, member, None)
            if (inspect.isclass(obj) or inspect.isroutine(obj)) and getattr(obj, "__module__", name) == name:
                add(inspect.getdoc(obj))
    return "\n\n".join(parts).encode("ascii", "ignore").decode("ascii")


@lru_cache(maxsize=1)
def load_corpus() -> str:
    """The shipped corpus text."""
    return lzma.decompress(CORPUS_PATH.read_bytes()).decode("ascii")


class CharData:
    """The corpus as token ids, split 90/10 into train and validation."""

    def __init__(self, text: str | None = None, train_fraction: float = 0.9):
        text = load_corpus() if text is None else text
        self.vocab = sorted(set(text))
        index = {c: i for i, c in enumerate(self.vocab)}
        ids = torch.tensor([index[c] for c in text], dtype=torch.long)
        cut = int(len(ids) * train_fraction)
        self.train, self.val = ids[:cut], ids[cut:]

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @staticmethod
    def batch(ids: torch.Tensor, starts: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Inputs and next-character targets for windows beginning at ``starts``."""
        offsets = torch.arange(context)
        x = ids[starts[:, None] + offsets]
        y = ids[starts[:, None] + offsets + 1]
        return x, y

    def train_starts(self, steps: int, batch: int, context: int, seed: int) -> torch.Tensor:
        """Window starts for every step, fixed by ``seed``: all variants of a seed see the same data."""
        gen = torch.Generator().manual_seed(seed)
        return torch.randint(0, len(self.train) - context - 1, (steps, batch), generator=gen)

    def val_starts(self, count: int, context: int) -> torch.Tensor:
        """Evenly spaced validation windows: the same for every run."""
        return torch.linspace(0, len(self.val) - context - 2, count).long()


if __name__ == "__main__":
    CORPUS_PATH.write_bytes(lzma.compress(build_corpus().encode("ascii"), preset=9 | lzma.PRESET_EXTREME))
    print(f"wrote {CORPUS_PATH} ({CORPUS_PATH.stat().st_size} bytes)")
