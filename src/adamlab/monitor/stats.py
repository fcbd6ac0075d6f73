"""The monitor's statistics, from sampled coordinates, as device tensors (nothing is read here).

Each sampled coordinate carries a weight: the number of coordinates of its
param it stands for (numel / sample size; 1 when the whole param is
sampled), so a group's fractions and means estimate those over all of its
coordinates, and are exact when every param fits in the sample.

Percentiles come from a histogram of log2 values on fixed edges
(:data:`LOG2_RANGE`, ``bins_per_octave`` bins per power of two) filled with
``index_add_``: bounded memory, no sort, no host sync. A percentile is
exact to within one bin (2.2% at 32 bins per octave); inside its bin it is
interpolated log-linearly.
"""

from __future__ import annotations

import functools
from collections import defaultdict

import torch

LOG2_RANGE = (-160, 160)  # every positive fp32 value, with room on both sides
NAN = float("nan")


def accumulate_dtype(device: torch.device) -> torch.dtype:
    """float64 for the totals (0-d), where the device has it; samples and weights stay fp32."""
    return torch.float32 if device.type == "mps" else torch.float64


def sum_of_squares(norms: list[torch.Tensor], dtype) -> torch.Tensor:
    """sum of norm^2 over 0-d norms of mixed dtypes, in a few ops (one stack per dtype)."""
    by_dtype: dict = {}
    for n in norms:
        by_dtype.setdefault(n.dtype, []).append(n)
    return torch.stack([torch.stack(ns).to(dtype).square().sum() for ns in by_dtype.values()]).sum()


def ulp(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """The spacing of ``dtype`` just above |x|, for values of that dtype held in fp32."""
    info = torch.finfo(dtype)
    smallest = info.tiny * info.eps  # the smallest subnormal
    _, exponent = torch.frexp(x)  # |x| in [2^(e-1), 2^e)
    spacing = torch.ldexp(torch.full_like(x, info.eps), exponent - 1)
    return torch.where(x == 0, smallest, spacing.clamp(min=smallest))


def lost_to_rounding(old: torch.Tensor, intended: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Where a non-zero fp32 update is under half an ulp of the param: rounding to ``dtype`` drops it."""
    update = intended - old
    return (update != 0) & (update.abs() < 0.5 * ulp(old, dtype))


class Histogram:
    """Weighted counts of log2(x) on fixed edges."""

    def __init__(self, bins_per_octave: int, device, dtype):
        lo, hi = LOG2_RANGE
        self.per_octave = bins_per_octave
        self.counts = torch.zeros((hi - lo) * bins_per_octave, device=device, dtype=dtype)

    def add(self, x: torch.Tensor, weight: torch.Tensor) -> None:
        """Count each x (> 0) with its weight; 0 and inf land in the end bins, NaN in the first."""
        position = torch.log2(x).mul_(self.per_octave).sub_(LOG2_RANGE[0] * self.per_octave).floor_()
        index = position.nan_to_num_(0.0).int().clamp_(0, self.counts.numel() - 1)
        self.counts.index_add_(0, index, weight)

    def merge(self, other: Histogram) -> None:
        self.counts += other.counts

    def percentiles(self, qs) -> torch.Tensor:
        """The values below which q% of the weight lies, for each q (NaN when empty)."""
        cum = self.counts.cumsum(0)
        target = _fractions(tuple(qs), cum.device, cum.dtype) * cum[-1]
        b = torch.searchsorted(cum, target).clamp(max=cum.numel() - 1)
        before = torch.where(b > 0, cum[(b - 1).clamp(min=0)], 0.0)
        inside = ((target - before) / self.counts[b]).nan_to_num(0.0).clamp(0, 1)
        value = torch.exp2(LOG2_RANGE[0] + (b + inside) / self.per_octave)
        return torch.where(cum[-1] > 0, value, NAN)


@functools.lru_cache(maxsize=16)
def _fractions(qs, device, dtype) -> torch.Tensor:
    """Percentiles as fractions, on the device once (a copy per call would wait for the device)."""
    return torch.tensor(qs, dtype=dtype).div(100).to(device)


class Sums:
    """Weighted sums over the sampled coordinates of some params: 0-d device tensors and host floats."""

    def __init__(self, histogram: Histogram | None, dtype=torch.float64):
        self.dtype = dtype  # of the totals
        self.numel = 0  # coordinates of those params: what the weights add up to
        self.terms = defaultdict(list)  # name -> 0-d tensors to add
        self.host = defaultdict(list)  # name -> (numel, float) pairs for a numel-weighted mean
        self.histogram = histogram

    def merge(self, other: Sums) -> None:
        self.numel += other.numel
        for k, v in other.terms.items():
            self.terms[k] += v
        for k, v in other.host.items():
            self.host[k] += v
        if other.histogram is not None:
            self.histogram.merge(other.histogram)

    def total(self, name):
        xs = self.terms.get(name)
        return torch.stack(xs).to(self.dtype).sum() if xs else None

    def mean_host(self, name) -> float:
        rows = self.host.get(name)
        n = sum(k for k, _ in rows) if rows else 0
        return sum(k * x for k, x in rows) / n if n else NAN

    def add_coordinates(self, w, old, new, pre=None, intended=None, dtype=None) -> None:
        """One bucket's samples: weights ``w``, the params before/after in fp32, the preconditioner,
        and for half-precision params the fp32 result the step rounded (``intended``)."""
        t = self.terms
        wsum = lambda x: torch.dot(w, x.to(w.dtype))  # fp32 samples: no float64 copy of a vector
        t["update_sq"].append(wsum((new - old).square_()))
        if pre is not None:
            if pre.root is not None:
                t["eps_dominated"].append(wsum(pre.root < pre.eps))
            t["v_zero"].append(wsum(pre.v == 0))
            self.histogram.add(pre.effective.abs(), w)
            if pre.vmax is not None:
                positive = pre.v > 0
                t["vmax_ratio"].append(wsum(torch.where(positive, pre.vmax / torch.where(positive, pre.v, 1.0), 0.0)))
                t["vmax_weight"].append(wsum(positive))
        if intended is not None:
            t["lost"].append(wsum(lost_to_rounding(old, intended, dtype)))
            t["half_weight"].append(w.sum())


def finish(sums: Sums, percentiles, applies: set) -> dict:
    """Statistic name -> 0-d tensor or float, for one group or one param.

    ``applies`` names the optional statistics this group has; their keys are
    present on every record then, NaN where a step had nothing to give.
    """
    n = sums.numel
    grad_sq, param_sq, update_sq = sums.total("grad_sq"), sums.total("param_sq"), sums.total("update_sq")
    out = {"grad_norm": grad_sq.sqrt() if grad_sq is not None else NAN}
    if n and update_sq is not None:
        param_rms, update_rms = (param_sq / n).sqrt(), (update_sq / n).sqrt()
        out.update(param_rms=param_rms, update_rms=update_rms, update_to_param=update_rms / param_rms)
    else:
        out.update(param_rms=NAN, update_rms=NAN, update_to_param=NAN)
    if "preconditioner" in applies:
        measured = n and sums.terms.get("v_zero")
        ps = sums.histogram.percentiles(percentiles) if measured else None
        for i, q in enumerate(percentiles):
            out[f"effective_step_p{q:g}"] = ps[i] if measured else NAN
        if "eps" in applies:
            out["eps_dominated"] = sums.total("eps_dominated") / n if measured else NAN
        out["v_zero"] = sums.total("v_zero") / n if measured else NAN
    if "amsgrad" in applies:
        out["vmax_over_v"] = sums.total("vmax_ratio") / sums.total("vmax_weight") if sums.terms["vmax_weight"] else NAN
    if "half" in applies:
        out["lost_to_rounding"] = sums.total("lost") / sums.total("half_weight") if sums.terms["lost"] else NAN
    if "radam" in applies:
        out["radam_rect"], out["radam_rectified"] = sums.mean_host("rect"), sums.mean_host("rectified")
    if "t" in applies:
        out["t"] = sums.mean_host("t")
    return out
