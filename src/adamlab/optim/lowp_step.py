"""One step's staging for groups with low-precision storage: params bucketed by layout, state converted.

Called by :class:`adamlab.optim.slots.Stage` for a group whose
``state_precision`` or ``param_update`` is set. Each layout (:mod:`.lowp`)
becomes its own bucket with codecs; params whose arrays are all plain dtypes
(bf16 state, small tensors of 8-bit groups) take the usual path. State kept
in another format than the group now asks (options changed, or another
optimizer's checkpoint) is converted, staged like any new state. While the
params, options and state tensors stay the same, the buckets' arrays are
reused from the last step and only the grads are swapped in.
"""

from __future__ import annotations

import operator

from ..backends.dispatch import Bucket
from . import lowp, lowp_state


def replace(stage, state: dict, content: dict) -> dict:
    """Stage ``state``'s whole content to be replaced; returns the content for this step's arrays."""
    stage.replacements.append((state, content))
    return content


def add(stage, gi, group, plan, params, grads, differentiable, states, device_step=False, found_inf=None) -> None:
    opt, cfg = stage.opt, plan.config
    names = cfg.state_names()
    memo = opt._memo.setdefault(("lowp", tuple(map(id, params)), names), {})
    options = tuple(group.get(k) for k in lowp_state.STORAGE_OPTIONS)
    if memo.get("options") == options and _unchanged(memo, states):
        buckets = memo["buckets"]
    else:
        before = len(stage.installs) + len(stage.replacements)
        buckets = _plan_buckets(stage, gi, group, plan, params, states)
        staged = len(stage.installs) + len(stage.replacements) > before  # they enter at apply: plan again next step
        memo.update(options=options, buckets=buckets,
                    arrays=None if staged else [(s, list(s.values())) for s in states])
    for lay, members, flat, width, bucket_memo in buckets:
        g_at = len(lay.keys[0]) if lay is not None else 1
        flat = list(flat)
        flat[g_at::width] = [_real(grads[i]) for i in members]
        bucket = Bucket(cfg, None, flat, width, bucket_memo, found_inf, codecs=lay.codecs if lay is not None else None)
        stage._ready(gi, group, plan, bucket, differentiable, params[members[0]].device, lay, device_step)


def _unchanged(memo, states) -> bool:
    """The same state dicts holding the same tensors as when the buckets were planned (and nothing staged)."""
    arrays = memo.get("arrays")
    return arrays is not None and len(arrays) == len(states) and all(
        s is old and len(s) == len(values) and all(map(operator.is_, s.values(), values))
        for s, (old, values) in zip(states, arrays))


def _plan_buckets(stage, gi, group, plan, params, states) -> list:
    """(layout, member positions, flat arrays with grads unset, width, bucket memo) per layout."""
    opt, names = stage.opt, plan.config.state_names()
    nonneg, positions = opt.algorithm.nonnegative_state, None
    groups: dict = {}
    current = []
    for i, (p, state) in enumerate(zip(params, states)):
        lay = lowp.layout(group, p, names, nonneg)
        if state and lowp_state.needs_conversion(opt, group, p, state, names):
            positions = positions or {id(q): k for k, q in enumerate(group["params"])}
            state = replace(stage, state, lowp_state.convert(opt, group, p, state,
                                                             lowp_state.stream_of(gi, positions[id(p)])))
        elif not state:
            positions = positions or {id(q): k for k, q in enumerate(group["params"])}
            staged = _fresh(opt, group, plan, p, lay, lowp_state.stream_of(gi, positions[id(p)]))
            stage.installs.append((state, staged))
            state = staged
        current.append(state)
        groups.setdefault(lay, []).append(i)
    out = []
    for lay, members in groups.items():
        width = lay.width if lay is not None else 2 + len(names)
        flat = []
        for i in members:
            for k, keys in enumerate(lay.keys if lay is not None else [(None,), (None,)] + [(n,) for n in names]):
                for key in keys:
                    flat.append(_real(params[i]) if k == 0 and key is None else None if key is None else
                                _real(current[i][key]))
        bucket_memo = opt._memo.setdefault((tuple(id(params[i]) for i in members), lay, names), {})
        out.append((lay, members, flat, width, bucket_memo))
    return out


def _fresh(opt, group, plan, p, lay, stream) -> dict:
    if lay is None:
        return opt._new_state(p, group, plan)
    if opt.algorithm.state_fill:  # a state that does not start at zero (Adagrad's sum): coded from its start
        return lowp_state.convert(opt, group, p, opt._new_state(p, group, plan), stream)
    return lowp.new_buffers(p, lay, group.get("rounding_seed", 0), stream)


def _real(t):
    from .slots import real_local

    return real_local(t)
