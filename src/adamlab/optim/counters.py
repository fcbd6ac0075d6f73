"""Per-param 0-d counters (torch's ``step``, NAdam's ``mu_product``), cheap to read and advance.

Each counter stays a 0-d tensor in the param's state, torch's format, but
the counters of a group's params are views into one buffer, so a step reads
them in one call and advances them in one op instead of one per param. Any
outside change (a loaded state dict, a new param) is noticed by identity and
the buffer is rebuilt. A new buffer is *staged*: it enters the state only
when the step is applied.
"""

from __future__ import annotations

import operator

import numpy as np
import torch


def step_dtype() -> torch.dtype:
    """torch's dtype for state['step']: float64 under a float64 default dtype, else float32."""
    return torch.float64 if torch.get_default_dtype() == torch.float64 else torch.float32


class Counters(dict):
    """One param's counters as numbers, plus the dtype torch keeps them in."""

    def __init__(self, values, dtype: torch.dtype):
        super().__init__(values)
        self.dtype = dtype

    def round(self, x):
        """x as stored in this dtype (torch multiplies NAdam's mu_product in it); a tensor is already so."""
        if torch.is_tensor(x):
            return x
        return float(np.float32(x)) if self.dtype == torch.float32 else float(x)


class Bank:
    """The counters of one list of params: a (len(names), n) buffer and its 0-d views."""

    def __init__(self, names, buffer: torch.Tensor, installed: bool):
        self.names, self.buffer, self.installed = names, buffer, installed
        self.views = [list(row.unbind()) for row in buffer] if len(names) else []
        self.flat_views = [v for row in self.views for v in row]

    def rows(self) -> list[tuple[float, ...]]:
        """Each param's counters, as a tuple in ``names`` order."""
        return list(zip(*self.buffer.tolist())) if self.names else []

    def install(self, states: list[dict]) -> None:
        if not self.installed:
            for j, name in enumerate(self.names):
                for state, view in zip(states, self.views[j]):
                    state[name] = view
            self.installed = True

    def advance(self, index_updates: list[tuple[list[int], dict[str, float]]]) -> None:
        """step += 1 for every param; other counters set per bucket (param positions, new values)."""
        if not self.names:
            return
        self.buffer[0] += 1
        for positions, values in index_updates:
            for name, value in values.items():
                row = self.buffer[self.names.index(name)]
                if len(positions) == row.numel():
                    row.fill_(value)
                else:
                    row[positions] = value


class CounterBank:
    """The optimizer's banks, keyed by the identity of the params they count."""

    def __init__(self):
        self._banks: dict = {}

    def bank(self, params, states, names, start: dict, dtype: torch.dtype) -> Bank:
        key = tuple(map(id, params))
        bank = self._banks.get(key)
        if bank is not None and bank.buffer.dtype == dtype:
            current = [state.get(name) for name in names for state in states]
            if all(map(operator.is_, current, bank.flat_views)):
                return bank
        if len(self._banks) > 8:  # the set of params with grads keeps changing
            self._banks.clear()
        for state in states:
            missing = [name for name in names if name not in state]
            if state and missing:  # moments without their step would restart bias correction silently
                raise KeyError(f"a param's state has {sorted(state)} but lacks {missing}")
        values = [[_number(state.get(name, start[name])) for state in states] for name in names]
        bank = Bank(names, torch.tensor(values, dtype=dtype).reshape(len(names), len(params)), installed=False)
        self._banks[key] = bank
        return bank


def _number(x) -> float:
    return float(x.item() if torch.is_tensor(x) else x)
