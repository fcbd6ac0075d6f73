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


class DeviceBank(Bank):
    """A bank kept on the params' device and advanced there, for device steps: never read on the host.

    ``skip`` is AMP's found_inf of the step being applied: a step it flags
    is not counted, and the other counters keep their values.
    """

    skip: torch.Tensor | None = None

    def rows(self):
        raise RuntimeError("a device step's counters are not read on the host")

    def index(self, positions: list[int]) -> torch.Tensor:
        """Some of the params' positions, on the device: uploaded once, then reused (so CUDA graphs can replay)."""
        cache = self.__dict__.setdefault("_indices", {})
        key = tuple(positions)
        if key not in cache:
            cache[key] = torch.tensor(positions, device=self.buffer.device)
        return cache[key]

    def advance(self, index_updates: list[tuple[list[int], dict]]) -> None:
        if not self.names:
            return
        skipped = None if self.skip is None else self.skip.reshape(-1)[:1].to(self.buffer.device) != 0
        self.buffer[0] += 1 if skipped is None else (~skipped).to(self.buffer.dtype)
        for positions, values in index_updates:
            index = None if len(positions) == self.buffer.shape[1] else self.index(positions)
            for name, value in values.items():
                row = self.buffer[self.names.index(name)]
                old = row if index is None else row.index_select(0, index)
                new = value.to(row.dtype) if isinstance(value, torch.Tensor) else torch.full_like(old, value)
                new = new if skipped is None else torch.where(skipped, old, new)
                if index is None:
                    row.copy_(new)
                else:
                    row.index_copy_(0, index, new)


def _device_buffer(states, names, start: dict, dtype, device) -> torch.Tensor:
    """The counters of ``states`` as a (len(names), n) buffer on ``device``, without reading device values."""
    rows = []
    for name in names:
        values = [state.get(name, start[name]) for state in states]
        if all(not isinstance(v, torch.Tensor) or v.is_cpu for v in values):
            rows.append(torch.tensor([_number(v) for v in values], dtype=dtype).to(device))
        else:
            rows.append(torch.stack([torch.as_tensor(v, dtype=dtype, device=device).reshape(()) for v in values]))
    return torch.stack(rows) if rows else torch.zeros(0, len(states), dtype=dtype, device=device)


CACHED = 1024  # banks (and bucket memos) kept: enough for one per group, bounded if param sets keep changing


class CounterBank:
    """The optimizer's banks, keyed by the identity of the params they count."""

    def __init__(self):
        self._banks: dict = {}
        #: param group index -> the bank its compiled step reads and advances (:mod:`.compiled`); an entry
        #: is dropped when a bank is built over any of its params, so that step is traced again
        self.traced: dict[int, Bank] = {}
        self._traced_ids: dict[int, frozenset] = {}

    def trace(self, gi: int, bank: Bank, params) -> None:
        self.traced[gi] = bank
        self._traced_ids[gi] = frozenset(map(id, params))

    def bank(self, params, states, names, start: dict, dtype: torch.dtype, device: torch.device | None = None) -> Bank:
        """The bank of these params; on ``device`` (a :class:`DeviceBank`) for device steps."""
        key = tuple(map(id, params))
        bank = self._banks.get(key)
        on_device = isinstance(bank, DeviceBank) and bank.buffer.device == device
        if bank is not None and bank.buffer.dtype == dtype and on_device == (device is not None):
            current = [state.get(name) for name in names for state in states]
            if all(map(operator.is_, current, bank.flat_views)):
                return bank
        if len(self._banks) > CACHED:  # the set of params with grads keeps changing
            self._banks.clear()
        for state in states:
            missing = [name for name in names if name not in state]
            if state and missing:  # moments without their step would restart bias correction silently
                raise KeyError(f"a param's state has {sorted(state)} but lacks {missing}")
        if device is not None:
            bank = DeviceBank(names, _device_buffer(states, names, start, dtype, device), installed=False)
            self._banks[key] = bank
            return bank
        values = [[_number(state.get(name, start[name])) for state in states] for name in names]
        bank = Bank(names, torch.tensor(values, dtype=dtype).reshape(len(names), len(params)), installed=False)
        self._banks[key] = bank
        if self.traced:
            self._untrace(key)
        return bank

    def _untrace(self, key) -> None:
        """A new bank takes over these params' counters: compiled steps over any of them must re-trace."""
        ids = set(key)
        for gi in [gi for gi, traced in self._traced_ids.items() if not ids.isdisjoint(traced)]:
            del self.traced[gi], self._traced_ids[gi]


def _number(x) -> float:
    return float(x.item() if torch.is_tensor(x) else x)
