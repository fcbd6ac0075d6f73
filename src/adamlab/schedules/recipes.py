"""The public builders: single pieces, combinators, and the usual recipes.

Every builder returns a schedule ``f`` with ``f(s)`` the lr multiplier after
``s`` optimizer steps, so ``LambdaLR(optimizer, f)`` runs it. Arguments named
``warmup_steps`` also accept ``"untuned"`` together with ``optimizer=`` (its
betas[1] is read) or ``beta2=``: the warmup then lasts 2/(1-beta2) steps.
"""

from __future__ import annotations

from .pieces import (
    SHAPES,
    Constant,
    Decay,
    ExponentialWarmup,
    InverseSqrt,
    Join,
    LinearWarmup,
    Product,
    check_steps,
)
from .untuned import pick_beta2, resolve_warmup

# ------------------------------------------------------------------ pieces


def constant(value: float = 1.0) -> Constant:
    """The same multiplier at every step."""
    return Constant(value)


def linear_warmup(warmup_steps, *, optimizer=None, beta2=None) -> LinearWarmup:
    """(s+1)/warmup_steps for s < warmup_steps, then 1: the first step runs at lr/warmup_steps."""
    return LinearWarmup(resolve_warmup(warmup_steps, optimizer, beta2))


def exponential_warmup(beta2=None, *, optimizer=None) -> ExponentialWarmup:
    """Ma & Yarats' exponential rule 1 - exp(-(1-beta2) t), t = s+1; combine with :func:`product`."""
    return ExponentialWarmup(1.0 - pick_beta2(optimizer, beta2))


def cosine_decay(decay_steps, min_ratio: float = 0.0) -> Decay:
    """Half a cosine from 1 to min_ratio over decay_steps, then min_ratio."""
    return Decay(decay_steps, min_ratio, "cosine")


def linear_decay(decay_steps, min_ratio: float = 0.0) -> Decay:
    """A straight line from 1 to min_ratio over decay_steps, then min_ratio."""
    return Decay(decay_steps, min_ratio, "linear")


def inverse_sqrt(timescale) -> InverseSqrt:
    """1/sqrt(1 + s/timescale)."""
    return InverseSqrt(timescale)


def join(schedules, boundaries) -> Join:
    """Schedules in sequence: schedules[i] takes over at boundaries[i-1] and counts from 0 there."""
    return Join.of(schedules, boundaries)


def product(*schedules) -> Product:
    """The schedules' multipliers multiplied, step by step."""
    return Product.of(schedules)


# ----------------------------------------------------------------- recipes


def _lengths(warmup_steps, total_steps, optimizer, beta2) -> tuple[int, int]:
    warmup = resolve_warmup(warmup_steps, optimizer, beta2)
    total = check_steps("total_steps", total_steps, low=1)
    if warmup > total:
        raise ValueError(f"warmup_steps must be in [0, total_steps={total}], got {warmup}")
    return warmup, total


def warmup_cosine(warmup_steps, total_steps, min_ratio: float = 0.0, *, optimizer=None, beta2=None) -> Join:
    """Linear warmup, then half a cosine down to ``min_ratio``; ``s`` counts optimizer steps taken.

    * s < warmup_steps: (s+1)/warmup_steps, so the first step runs at lr/warmup_steps, never at 0;
    * warmup_steps <= s < total_steps:
      min_ratio + (1-min_ratio)*0.5*(1 + cos(pi*(s-warmup_steps)/(total_steps-warmup_steps)));
    * s >= total_steps: min_ratio, for good.

    Peers: transformers' get_cosine_schedule_with_warmup is s/warmup_steps during
    warmup (its first step runs at lr 0), the same as this from s = warmup_steps
    to total_steps (min_ratio = 0), and climbs back up after total_steps.
    optax's warmup_cosine_decay_schedule(0, peak, warmup_steps, total_steps,
    end_value=min_ratio*peak) is this shifted by one step during warmup and equal
    from warmup_steps on. torch's CosineAnnealingLR(T_max=total_steps,
    eta_min=min_ratio*lr) equals warmup_steps=0 up to rounding until total_steps,
    then rises again. docs/schedules.md has the details.

    ``warmup_steps="untuned"`` with ``optimizer=`` or ``beta2=`` warms up for
    2/(1-beta2) steps (Ma & Yarats 2021).
    """
    warmup, total = _lengths(warmup_steps, total_steps, optimizer, beta2)
    return Join.of([LinearWarmup(warmup), Decay(total - warmup, min_ratio, "cosine")], [warmup])


def warmup_linear(warmup_steps, total_steps, min_ratio: float = 0.0, *, optimizer=None, beta2=None) -> Join:
    """Linear warmup as in :func:`warmup_cosine`, then a straight line down to min_ratio at total_steps."""
    warmup, total = _lengths(warmup_steps, total_steps, optimizer, beta2)
    return Join.of([LinearWarmup(warmup), Decay(total - warmup, min_ratio, "linear")], [warmup])


def warmup_inverse_sqrt(warmup_steps, timescale=None, *, optimizer=None, beta2=None) -> Join:
    """Linear warmup, then 1/sqrt(1 + (s - warmup_steps)/timescale).

    ``timescale`` defaults to warmup_steps, which gives sqrt(warmup_steps/s) after
    warmup: the Transformer's rsqrt schedule, scaled to peak at 1.
    """
    warmup = resolve_warmup(warmup_steps, optimizer, beta2)
    if timescale is None:
        if warmup == 0:
            raise ValueError("timescale must be given (in (0, inf)) when warmup_steps is 0")
        timescale = warmup
    return Join.of([LinearWarmup(warmup), InverseSqrt(timescale)], [warmup])


def wsd(
    warmup_steps,
    total_steps,
    decay_steps,
    min_ratio: float = 0.0,
    decay: str = "linear",
    *,
    optimizer=None,
    beta2=None,
) -> Join:
    """Warmup-stable-decay: linear warmup, 1 until total_steps - decay_steps, then down to min_ratio.

    ``decay`` is the shape of the last phase: "linear", "cosine" or "1-sqrt"
    (1 - sqrt(progress), Hägele et al. 2024).
    """
    warmup, total = _lengths(warmup_steps, total_steps, optimizer, beta2)
    cooldown = check_steps("decay_steps", decay_steps)
    if warmup + cooldown > total:
        raise ValueError(
            f"decay_steps must be in [0, total_steps - warmup_steps = {total - warmup}], got {cooldown}"
        )
    if decay not in SHAPES:
        raise ValueError(f"decay must be one of {tuple(SHAPES)}, got {decay!r}")
    return Join.of(
        [LinearWarmup(warmup), Constant(1.0), Decay(cooldown, min_ratio, decay)],
        [warmup, total - cooldown],
    )
