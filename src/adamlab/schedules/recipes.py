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
    """The same multiplier at every step.

    Args:
        value (float, default 1.0): the multiplier, in [0, inf).

    Returns:
        :class:`Constant`.
    """
    return Constant(value)


def linear_warmup(warmup_steps, *, optimizer=None, beta2=None) -> LinearWarmup:
    """(s+1)/warmup_steps for s < warmup_steps, then 1: the first step runs at lr/warmup_steps.

    ``warmup_steps="untuned"`` with ``optimizer=`` or ``beta2=`` warms up for
    2/(1-beta2) steps (Ma & Yarats 2021); 0 means no warmup (1 throughout).

    Args:
        warmup_steps (int or "untuned"): warmup length in steps, in [0, inf); "untuned" takes 2/(1-beta2).
        optimizer (torch.optim.Optimizer, default None): with "untuned": its ``betas[1]`` is beta2.
        beta2 (float, default None): with "untuned" instead of ``optimizer``: beta2, in (0, 1).

    Returns:
        :class:`LinearWarmup`.
    """
    return LinearWarmup(resolve_warmup(warmup_steps, optimizer, beta2))


def exponential_warmup(beta2=None, *, optimizer=None) -> ExponentialWarmup:
    """Ma & Yarats' exponential rule 1 - exp(-(1-beta2) t), t = s+1; combine with :func:`product`.

    It tends to 1 without a set end, so a decay goes on top by multiplication:
    ``product(exponential_warmup(0.999), cosine_decay(n))``.

    Args:
        beta2 (float, default None): the rate is 1 - beta2, beta2 in (0, 1).
        optimizer (torch.optim.Optimizer, default None): read beta2 off its ``betas[1]``; give exactly one
            of ``beta2`` and ``optimizer``.

    Returns:
        :class:`ExponentialWarmup`.
    """
    return ExponentialWarmup(1.0 - pick_beta2(optimizer, beta2))


def cosine_decay(decay_steps, min_ratio: float = 0.0) -> Decay:
    """Half a cosine from 1 to min_ratio over decay_steps, then min_ratio.

    min_ratio + (1-min_ratio)*0.5*(1 + cos(pi*s/decay_steps)): the annealing of
    SGDR (Loshchilov & Hutter 2017) without restarts.

    Args:
        decay_steps (int): length of the decay, in [0, inf); 0 gives min_ratio from the first step.
        min_ratio (float, default 0.0): the final multiplier, in [0, 1].

    Returns:
        :class:`Decay`.
    """
    return Decay(decay_steps, min_ratio, "cosine")


def linear_decay(decay_steps, min_ratio: float = 0.0) -> Decay:
    """A straight line from 1 to min_ratio over decay_steps, then min_ratio.

    Args:
        decay_steps (int): length of the decay, in [0, inf); 0 gives min_ratio from the first step.
        min_ratio (float, default 0.0): the final multiplier, in [0, 1].

    Returns:
        :class:`Decay`.
    """
    return Decay(decay_steps, min_ratio, "linear")


def inverse_sqrt(timescale) -> InverseSqrt:
    """1/sqrt(1 + s/timescale).

    1 at s = 0, 1/2 at s = 3 timescale; the Transformer's rsqrt decay (Vaswani et
    al. 2017) shifted to start at 1. :func:`warmup_inverse_sqrt` adds the warmup.

    Args:
        timescale (float): steps over which the multiplier falls to 1/sqrt(2), in (0, inf).

    Returns:
        :class:`InverseSqrt`.
    """
    return InverseSqrt(timescale)


def join(schedules, boundaries) -> Join:
    """Schedules in sequence: schedules[i] takes over at boundaries[i-1] and counts from 0 there.

    Like optax.join_schedules.

    Args:
        schedules (sequence of schedules): adamlab schedules (builders' results, or the classes here).
        boundaries (sequence of int): non-decreasing steps in [0, inf), one fewer than ``schedules``.

    Returns:
        :class:`Join`.
    """
    return Join.of(schedules, boundaries)


def product(*schedules) -> Product:
    """The schedules' multipliers multiplied, step by step.

    Args:
        *schedules: one or more adamlab schedules, e.g. a warmup and a decay.

    Returns:
        :class:`Product`.
    """
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

    Args:
        warmup_steps (int or "untuned"): warmup length in steps, in [0, inf); "untuned" takes 2/(1-beta2).
        total_steps (int): the step s at which the schedule reaches min_ratio and stays, in [1, inf); >= warmup_steps.
        min_ratio (float, default 0.0): the final multiplier, in [0, 1].
        optimizer (torch.optim.Optimizer, default None): with "untuned": its ``betas[1]`` is beta2.
        beta2 (float, default None): with "untuned" instead of ``optimizer``: beta2, in (0, 1).

    Returns:
        :class:`Join`.
    """
    warmup, total = _lengths(warmup_steps, total_steps, optimizer, beta2)
    return Join.of([LinearWarmup(warmup), Decay(total - warmup, min_ratio, "cosine")], [warmup])


def warmup_linear(warmup_steps, total_steps, min_ratio: float = 0.0, *, optimizer=None, beta2=None) -> Join:
    """Linear warmup as in :func:`warmup_cosine`, then a straight line down to min_ratio at total_steps.

    Args:
        warmup_steps (int or "untuned"): as in :func:`warmup_cosine`, in [0, total_steps].
        total_steps (int): where the line reaches min_ratio, in [1, inf).
        min_ratio (float, default 0.0): the multiplier from total_steps on, in [0, 1].
        optimizer (torch.optim.Optimizer, default None): with "untuned", as in :func:`warmup_cosine`.
        beta2 (float, default None): with "untuned", as in :func:`warmup_cosine`.

    Returns:
        :class:`Join`.
    """
    warmup, total = _lengths(warmup_steps, total_steps, optimizer, beta2)
    return Join.of([LinearWarmup(warmup), Decay(total - warmup, min_ratio, "linear")], [warmup])


def warmup_inverse_sqrt(warmup_steps, timescale=None, *, optimizer=None, beta2=None) -> Join:
    """Linear warmup, then 1/sqrt(1 + (s - warmup_steps)/timescale).

    ``timescale`` defaults to warmup_steps, which gives sqrt(warmup_steps/s) after
    warmup: the Transformer's rsqrt schedule, scaled to peak at 1.

    Args:
        warmup_steps (int or "untuned"): warmup length in steps, in [0, inf); "untuned" takes 2/(1-beta2).
        timescale (float, default None): of the decay, in (0, inf); None takes warmup_steps (which must then be > 0).
        optimizer (torch.optim.Optimizer, default None): with "untuned": its ``betas[1]`` is beta2.
        beta2 (float, default None): with "untuned" instead of ``optimizer``: beta2, in (0, 1).

    Returns:
        :class:`Join`.
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

    Args:
        warmup_steps (int or "untuned"): warmup length in steps, in [0, inf); "untuned" takes 2/(1-beta2).
        total_steps (int): the step s at which the schedule reaches min_ratio and stays, in [1, inf); >= warmup_steps.
        decay_steps (int): length of the final decay, in [0, total_steps - warmup_steps].
        min_ratio (float, default 0.0): the final multiplier, in [0, 1].
        decay (str, default "linear"): its shape: "linear", "cosine" or "1-sqrt".
        optimizer (torch.optim.Optimizer, default None): with "untuned": its ``betas[1]`` is beta2.
        beta2 (float, default None): with "untuned" instead of ``optimizer``: beta2, in (0, 1).

    Returns:
        :class:`Join`.
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
