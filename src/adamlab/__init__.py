"""adamlab: the Adam family of optimizers, exact to the math and drop-in for PyTorch.

The public names are imported on first use (PEP 562), so the command line can
check its arguments and answer in well under a second without importing torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_WHERE = {
    **dict.fromkeys(["Adam", "AdamW", "RAdam", "NAdam", "Adamax", "Adagrad", "SGD", "RMSprop", "Optimizer",
                     "expand_state_dict"], "adamlab.optim"),
    "param_groups": "adamlab.groups",
    "Monitor": "adamlab.monitor",
}
_MODULES = ("math", "schedules")
__all__ = [*_WHERE, *_MODULES]


def __getattr__(name: str):
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
    elif name in _MODULES:
        value = importlib.import_module(f"adamlab.{name}")
    else:
        raise AttributeError(f"module 'adamlab' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
