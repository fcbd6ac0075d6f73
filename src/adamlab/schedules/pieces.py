"""Schedule pieces: small frozen dataclasses, each a pure function of the step.

``schedule(s)`` is the multiplier of the base lr for the optimizer step taken
after ``s`` steps (s = 0, 1, ...), which is the argument ``LambdaLR`` passes.
Every field is plain data (int, float, str and tuples of them), because
LambdaLR's state dict copies the schedule's ``__dict__``: plain data loads with
``torch.load(weights_only=True)``. Combinators therefore store their children
as ``(class name, field values)`` specs and rebuild them on use.
"""

from __future__ import annotations

import bisect
import functools
import math
import operator
from dataclasses import dataclass, fields

#: class name -> class, for rebuilding the children of combinators
KINDS: dict[str, type] = {}


def kind(cls):
    KINDS[cls.__name__] = cls
    return cls


# ------------------------------------------------------------------ checks


def check_steps(name: str, value, low: int = 0) -> int:
    """A step count: an integer in [low, inf), as a plain int (a numpy int would not load with weights_only)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        n = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer in [{low}, inf), got {value!r}") from None
    if n < low:
        raise ValueError(f"{name} must be in [{low}, inf), got {n}")
    return int(n)


def check_real(name: str, value, low: float, high: float, *, open_low: bool = False) -> float:
    """A real number in [low, high] (or (low, high] when ``open_low``). Returns a plain float."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    too_low = x <= low if open_low else x < low
    if math.isnan(x) or too_low or x > high:
        interval = f"{'(' if open_low else '['}{low}, {high}{']' if high != math.inf else ')'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")
    return x


def check_step(step) -> None:
    if step < 0:
        raise ValueError(f"step must be in [0, inf), got {step}")


def _store(obj, name: str, value) -> None:
    """Replace a field of a frozen dataclass with its checked, plain-typed value."""
    object.__setattr__(obj, name, value)


# ---------------------------------------------------------------- elements


@kind
@dataclass(frozen=True)
class Constant:
    """The same multiplier at every step.

    Args:
        value (float, default 1.0): the multiplier, in [0, inf).
    """

    value: float = 1.0

    def __post_init__(self):
        _store(self, "value", check_real("value", self.value, 0.0, math.inf))

    def __call__(self, step) -> float:
        check_step(step)
        return self.value


@kind
@dataclass(frozen=True)
class LinearWarmup:
    """(s+1)/steps while s < steps, then 1: the first step runs at lr/steps, never at 0.

    Args:
        steps (int): warmup length, in [0, inf) (errors call it ``warmup_steps``); 0 gives 1 throughout.
    """

    steps: int

    def __post_init__(self):
        _store(self, "steps", check_steps("warmup_steps", self.steps))

    def __call__(self, step) -> float:
        check_step(step)
        return 1.0 if step >= self.steps else (step + 1) / self.steps


@kind
@dataclass(frozen=True)
class ExponentialWarmup:
    """1 - exp(-rate*(s+1)), Ma & Yarats' exponential rule with rate = 1 - beta2; tends to 1.

    Args:
        rate (float): 1 - beta2 in Ma & Yarats (2021), in (0, inf).
    """

    rate: float

    def __post_init__(self):
        _store(self, "rate", check_real("rate", self.rate, 0.0, math.inf, open_low=True))

    def __call__(self, step) -> float:
        check_step(step)
        return -math.expm1(-self.rate * (step + 1))


#: decay shapes: progress p in [0, 1] -> the fraction of the way from min_ratio to 1 left
SHAPES = {
    "cosine": lambda p: 0.5 * (1.0 + math.cos(math.pi * p)),
    "linear": lambda p: 1.0 - p,
    "1-sqrt": lambda p: 1.0 - math.sqrt(p),
}


@kind
@dataclass(frozen=True)
class Decay:
    """min_ratio + (1 - min_ratio)*shape(s/steps): 1 at s = 0, min_ratio from s = steps on.

    Args:
        steps (int): decay length, in [0, inf) (errors call it ``decay_steps``).
        min_ratio (float, default 0.0): the final multiplier, in [0, 1].
        shape (str, default "cosine"): "cosine" (half a cosine), "linear" or "1-sqrt" (Hägele et al. 2024).
    """

    steps: int
    min_ratio: float = 0.0
    shape: str = "cosine"

    def __post_init__(self):
        _store(self, "steps", check_steps("decay_steps", self.steps))
        _store(self, "min_ratio", check_real("min_ratio", self.min_ratio, 0.0, 1.0))
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {tuple(SHAPES)}, got {self.shape!r}")

    def __call__(self, step) -> float:
        check_step(step)
        if step >= self.steps:
            return self.min_ratio
        return self.min_ratio + (1.0 - self.min_ratio) * SHAPES[self.shape](step / self.steps)


@kind
@dataclass(frozen=True)
class InverseSqrt:
    """1/sqrt(1 + s/timescale): 1 at s = 0, 1/2 at s = 3*timescale.

    Args:
        timescale (float): in steps, in (0, inf).
    """

    timescale: float

    def __post_init__(self):
        _store(self, "timescale", check_real("timescale", self.timescale, 0.0, math.inf, open_low=True))

    def __call__(self, step) -> float:
        check_step(step)
        return 1.0 / math.sqrt(1.0 + step / self.timescale)


# ------------------------------------------------------------- combinators


def spec(schedule) -> tuple:
    """(class name, field values) of an adamlab schedule: the plain data a combinator stores."""
    name = type(schedule).__name__
    if KINDS.get(name) is not type(schedule):
        raise ValueError(
            f"schedules must be adamlab schedules (plain data that resumes with weights_only), got {schedule!r}"
        )
    return (name, tuple(getattr(schedule, f.name) for f in fields(schedule)))


@functools.lru_cache(maxsize=512)
def build(piece: tuple):
    """The schedule a spec describes (cached: LambdaLR calls the schedule once per step)."""
    name, values = piece
    return KINDS[name](*values)


def _children(pieces) -> str:
    return ", ".join(repr(build(p)) for p in pieces)


@kind
@dataclass(frozen=True, repr=False)
class Join:
    """Schedules in sequence, like optax.join_schedules.

    Piece i takes over at boundaries[i-1] and counts its own steps from 0 there.
    Build one with :meth:`Join.of` (or :func:`adamlab.schedules.join`) from schedules.

    Args:
        pieces (tuple): the schedules' specs, ``(class name, field values)`` pairs, in order.
        boundaries (tuple of int): non-decreasing steps in [0, inf), one fewer than ``pieces``.
    """

    pieces: tuple
    boundaries: tuple

    @classmethod
    def of(cls, schedules, boundaries) -> Join:
        """The Join of adamlab schedules (a sequence) switching at ``boundaries`` (ints)."""
        return cls(tuple(spec(s) for s in schedules), tuple(boundaries))

    def __post_init__(self):
        bounds = tuple(check_steps(f"boundaries[{i}]", b) for i, b in enumerate(self.boundaries))
        if len(bounds) != len(self.pieces) - 1:
            raise ValueError(
                f"boundaries must have one entry fewer than schedules, got {len(bounds)} for {len(self.pieces)}"
            )
        if any(b > c for b, c in zip(bounds, bounds[1:])):
            raise ValueError(f"boundaries must be non-decreasing, got {bounds}")
        _store(self, "boundaries", bounds)
        for piece in self.pieces:
            build(piece)

    def __call__(self, step) -> float:
        check_step(step)
        i = bisect.bisect_right(self.boundaries, step)
        start = self.boundaries[i - 1] if i else 0
        return build(self.pieces[i])(step - start)

    def __repr__(self) -> str:
        return f"Join([{_children(self.pieces)}], boundaries={list(self.boundaries)})"


@kind
@dataclass(frozen=True, repr=False)
class Product:
    """Schedules multiplied at the same step, e.g. an exponential warmup times a decay.

    Build one with :meth:`Product.of` (or :func:`adamlab.schedules.product`) from schedules.

    Args:
        pieces (tuple): the schedules' specs, ``(class name, field values)`` pairs; at least one.
    """

    pieces: tuple

    @classmethod
    def of(cls, schedules) -> Product:
        """The Product of adamlab schedules (a non-empty sequence)."""
        return cls(tuple(spec(s) for s in schedules))

    def __post_init__(self):
        if not self.pieces:
            raise ValueError("schedules must hold at least one schedule, got none")
        for piece in self.pieces:
            build(piece)

    def __call__(self, step) -> float:
        check_step(step)
        return math.prod(build(p)(step) for p in self.pieces)

    def __repr__(self) -> str:
        return f"Product([{_children(self.pieces)}])"
