"""Learning-rate schedules: pure functions of the step, multipliers of the base lr.

``schedule(s)`` is the lr multiplier for the optimizer step taken after ``s``
steps (s = 0 for the first step), so each schedule runs as
``torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)`` and LambdaLR's
state dict (the step, plus the schedule's plain-data fields) resumes it
exactly, loading with ``torch.load(weights_only=True)``.

    opt = adamlab.AdamW(model.parameters(), lr=3e-4)
    sched = LambdaLR(opt, adamlab.schedules.warmup_cosine(100, 10_000, min_ratio=0.1))

See docs/schedules.md for conventions and how they compare with transformers,
optax and torch.
"""

from .drawing import plot
from .pieces import (
    Constant,
    Decay,
    ExponentialWarmup,
    InverseSqrt,
    Join,
    LinearWarmup,
    Product,
)
from .recipes import (
    constant,
    cosine_decay,
    exponential_warmup,
    inverse_sqrt,
    join,
    linear_decay,
    linear_warmup,
    product,
    warmup_cosine,
    warmup_inverse_sqrt,
    warmup_linear,
    wsd,
)
from .skipping import SkipAware
from .untuned import beta2_of, untuned_warmup_steps

__all__ = [
    "constant",
    "linear_warmup",
    "exponential_warmup",
    "cosine_decay",
    "linear_decay",
    "inverse_sqrt",
    "join",
    "product",
    "warmup_cosine",
    "warmup_linear",
    "warmup_inverse_sqrt",
    "wsd",
    "untuned_warmup_steps",
    "beta2_of",
    "plot",
    "SkipAware",
    "Constant",
    "LinearWarmup",
    "ExponentialWarmup",
    "Decay",
    "InverseSqrt",
    "Join",
    "Product",
]
