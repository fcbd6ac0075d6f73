"""The public API documents its parameters, as torch's and optax's docstrings do.

Oracles: each callable's own signature (``inspect.signature``), and for the
optimizers torch.optim's constructor signatures. A parameter added or renamed
without its ``Args:`` line, or a torch option that ``help()`` does not show,
fails here.
"""

from __future__ import annotations

import inspect
import pydoc
import re

import pytest
import torch

import adamlab
from adamlab import math as M
from adamlab import schedules

VARIADIC = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)


def _is_optimizer_class(obj) -> bool:
    return isinstance(obj, type) and issubclass(obj, adamlab.Optimizer) and obj is not adamlab.Optimizer


OPTIMIZERS = [getattr(adamlab, n) for n in adamlab.__all__ if _is_optimizer_class(getattr(adamlab, n))]

# optimizer classes are left out: their Args: is generated from their records (tested below through help())
PUBLIC = {
    **{f"adamlab.{n}": getattr(adamlab, n) for n in adamlab.__all__
       if not inspect.ismodule(getattr(adamlab, n)) and not _is_optimizer_class(getattr(adamlab, n))},
    **{f"adamlab.schedules.{n}": getattr(schedules, n) for n in schedules.__all__},
    **{f"adamlab.math.{n}": f for n, f in inspect.getmembers(M, inspect.isfunction)
       if f.__module__ == M.__name__ and not n.startswith("_")},
}


def args_section(doc: str | None) -> str | None:
    """The indented block under ``Args:`` of a docstring, or None."""
    match = re.search(r"^Args:\n((?:[ \t]+\S.*\n|[ \t]*\n)*)", inspect.cleandoc(doc or "") + "\n", re.M)
    return match.group(1) if match else None


def documented(doc: str | None) -> set[str]:
    """Names an ``Args:`` section describes: entries ``name:`` or ``name (type...):``, stars stripped."""
    section = args_section(doc) or ""
    indent = min((len(line) - len(line.lstrip()) for line in section.splitlines() if line.strip()), default=0)
    entry = re.compile(rf"^ {{{indent}}}\*{{0,2}}(\w+)(?: \([^\n]*?\))?:", re.M)
    return set(entry.findall(section))


def missing_and_unknown(obj) -> tuple[list[str], list[str]]:
    """(parameters without an entry, entries that are no parameter), against inspect.signature."""
    params = inspect.signature(obj).parameters
    named = [n for n, p in params.items() if n != "self" and p.kind not in VARIADIC]
    names = documented(obj.__doc__)
    return [n for n in named if n not in names], sorted(names - set(params))


def test_the_public_list_is_what_it_should_be():
    assert {"adamlab.param_groups", "adamlab.Monitor", "adamlab.Optimizer"} <= set(PUBLIC)
    assert "adamlab.AdamW" not in PUBLIC and "adamlab.math" not in PUBLIC
    assert {"adamlab.schedules.warmup_cosine", "adamlab.schedules.Join", "adamlab.math.first_moment"} <= set(PUBLIC)
    assert len(OPTIMIZERS) == 8


def test_the_check_catches_an_undocumented_or_stale_parameter():
    def f(x, y, *rest, z=1, **kw):
        """Sum.

        Args:
            x (float): the first.
            z (int, default 1): a keyword, with
                a continued line that names y: not an entry.
            old: gone.

        Returns:
            y: not an entry either.
        """

    assert missing_and_unknown(f) == (["y"], ["old"])
    assert documented(f.__doc__) == {"x", "z", "old"}
    assert args_section("No section here.") is None


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_args_names_every_parameter(name):
    obj = PUBLIC[name]
    assert args_section(obj.__doc__) is not None, f"{name} has no Args: section"
    missing, unknown = missing_and_unknown(obj)
    assert not missing, f"{name}'s Args: lacks {missing}"
    assert not unknown, f"{name}'s Args: names {unknown}, which {name} does not take"


@pytest.mark.parametrize("name", sorted(n for n in PUBLIC if n.startswith("adamlab.math.")))
def test_math_keeps_the_equation_first(name):
    first = inspect.cleandoc(PUBLIC[name].__doc__).splitlines()[0]
    assert first.endswith(".") and not first.startswith("Args"), first


def help_text(cls) -> str:
    """What ``help(cls)`` prints (pydoc's plain text, each line under a class prefixed by " |  ")."""
    return pydoc.render_doc(cls, renderer=pydoc.plaintext)


def help_entry(text: str, name: str) -> bool:
    """Whether an ``Args:`` line of help's text starts with ``name`` (``name:`` or ``name (...``)."""
    return re.search(rf"^[ |]*{name}(?: \(|:)", text, re.M) is not None


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_help_lists_every_constructor_option(cls):
    text, signature = help_text(cls), inspect.signature(cls)
    assert not [p for p in signature.parameters.values() if p.kind in VARIADIC], "hidden **kw or *args"
    missing = [n for n in signature.parameters if not help_entry(text, n)]
    assert not missing, f"help({cls.__name__}) has no entry for {missing}"
    for name, p in list(signature.parameters.items())[1:]:  # after params, each shows its default
        assert f"{name} (default {p.default!r}):" in text, f"help({cls.__name__}) lacks {name}'s default"
    assert set(signature.parameters) == documented(cls.__doc__)


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_help_shows_every_torch_option(cls):
    text = help_text(cls)
    theirs = inspect.signature(getattr(torch.optim, cls.__name__)).parameters
    missing = [n for n in theirs if n != "self" and not help_entry(text, n)]
    assert not missing, f"help({cls.__name__}) does not show torch.optim.{cls.__name__}'s {missing}"
