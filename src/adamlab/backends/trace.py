"""Trace an update into a small program that any backend can print.

The update (:func:`adamlab.algorithms.apply_update`, i.e. a record's rule) is
called with symbolic values instead of tensors. Each arithmetic operation
appends one :class:`Line`, so the program is the rule's own algebra in the
rule's own order: there is no second copy of the math to keep in sync.

A line is *scalar* when all its operands are per-step scalars or constants
(printers evaluate those once per launch, in double precision, as torch
evaluates them in Python floats) and *elementwise* otherwise (evaluated per
element in the compute type; a scalar meeting an element is cast to the
compute type, as torch casts a Python scalar argument).

Operations, each with one exactly specified IEEE result:
add, sub, mul, div, neg, sqrt, abs, fma (one rounding), max (NaN wins, as
torch.maximum), lt (scalar comparison) and select (a scalar condition).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from ..algorithms import Config, apply_update

ARITY = {"add": 2, "sub": 2, "mul": 2, "div": 2, "neg": 1, "sqrt": 1, "abs": 1, "fma": 3, "max": 2, "lt": 2,
         "select": 3}

Operand = "str | float"  # a variable name, or a constant


@dataclass(frozen=True)
class Line:
    name: str
    op: str
    args: tuple  # of Operand
    elementwise: bool


@dataclass(frozen=True)
class Program:
    """Inputs by name, lines in order, and which array receives which value."""

    scalars: tuple[str, ...]  # runtime scalars, in the order of the scalar table
    arrays: tuple[str, ...]  # arrays read, per tensor, in pointer-table order: "p", "g", then state names
    lines: tuple[Line, ...]
    stores: tuple[tuple[str, Operand], ...]  # (array, value written to it)

    @staticmethod
    def scalar_var(name: str) -> str:
        return f"s_{name}"

    @staticmethod
    def array_var(name: str) -> str:
        return f"x_{name}"

    def scalar_lines(self) -> list[Line]:
        return [line for line in self.lines if not line.elementwise]

    def element_lines(self) -> list[Line]:
        return [line for line in self.lines if line.elementwise]

    def is_elementwise(self, operand) -> bool:
        if not isinstance(operand, str):
            return False
        if operand.startswith("x_"):
            return True
        return any(line.name == operand and line.elementwise for line in self.lines)

    def written(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.stores)


class Sym:
    """A traced value: a variable that is either per element or a scalar."""

    __slots__ = ("tracer", "name", "elementwise")

    def __init__(self, tracer: Tracer, name: str, elementwise: bool):
        self.tracer, self.name, self.elementwise = tracer, name, elementwise

    def _op(self, op, *args):
        return self.tracer.emit(op, args)

    def __add__(self, o): return self._op("add", self, o)
    def __radd__(self, o): return self._op("add", o, self)
    def __sub__(self, o): return self._op("sub", self, o)
    def __rsub__(self, o): return self._op("sub", o, self)
    def __mul__(self, o): return self._op("mul", self, o)
    def __rmul__(self, o): return self._op("mul", o, self)
    def __truediv__(self, o): return self._op("div", self, o)
    def __rtruediv__(self, o): return self._op("div", o, self)
    def __neg__(self): return self._op("neg", self)
    def __pow__(self, e):
        if e == 0.5:
            return self.sqrt()
        raise NotImplementedError("only ** 0.5 is traced")
    def sqrt(self): return self._op("sqrt", self)
    def abs(self): return self._op("abs", self)
    def maximum(self, other): return self._op("max", self, other)
    def select(self, a, b): return self._op("select", self, a, b)  # self: a scalar condition (nonzero: a)

    def lerp(self, end, weight):
        """torch's CPU lerp: fma(w, b - a, a) for |w| < 0.5, else fma(w - 1, b - a, b).

        The branch depends on the scalar w only, so it is taken once per
        launch and the loop body stays branch-free.
        """
        diff = end - self
        if not isinstance(weight, Sym):
            return self.tracer.emit("fma", (weight, diff, self) if abs(weight) < 0.5 else (weight - 1.0, diff, end))
        small = self.tracer.emit("lt", (weight.abs(), 0.5))
        coeff = self.tracer.emit("select", (small, weight, weight - 1.0))
        base = self.tracer.emit("select", (small, self, end))
        return self.tracer.emit("fma", (coeff, diff, base))

    def add_scaled(self, other, alpha):
        """torch's add(alpha=): fma(other, alpha, self)."""
        return self.tracer.emit("fma", (other, alpha, self))

    def add_product(self, a, b, value):
        """torch's addcmul: fma(value * a, b, self)."""
        return self.tracer.emit("fma", (value * a, b, self))


class Tracer:
    def __init__(self):
        self.lines: list[Line] = []

    def emit(self, op: str, args: tuple) -> Sym:
        assert len(args) == ARITY[op], op
        elementwise = any(isinstance(a, Sym) and a.elementwise for a in args)
        if op == "select":  # the condition must be a scalar; the value is elementwise if either branch is
            assert not (isinstance(args[0], Sym) and args[0].elementwise)
        name = f"t{len(self.lines)}"
        self.lines.append(Line(name, op, tuple(_ref(a) for a in args), elementwise))
        return Sym(self, name, elementwise)


def _ref(x) -> Operand:
    if isinstance(x, Sym):
        return x.name
    if isinstance(x, bool):
        raise TypeError("booleans are not traced")
    return float(x)


def trace(cfg: Config, scalar_names: tuple[str, ...]) -> Program:
    """The program of ``cfg``'s update, with the scalar table in ``scalar_names`` order."""
    tr = Tracer()
    scalars = SimpleNamespace(**{n: Sym(tr, Program.scalar_var(n), False) for n in scalar_names})
    arrays = ("p", "g") + cfg.state_names()
    x = {n: Sym(tr, Program.array_var(n), True) for n in arrays}
    new_p, new_state, new_grad = apply_update(cfg, x["p"], x["g"], {n: x[n] for n in cfg.state_names()}, scalars)
    stores = [("p", new_p)] + [(n, new_state[n]) for n in cfg.state_names()]
    if new_grad is not None:
        stores.append(("g", new_grad))
    return Program(tuple(scalar_names), arrays, tuple(tr.lines), tuple((n, _ref(v)) for n, v in stores))
