"""Low-precision state in and out: checkpoints both ways, conversions between formats, the memory report.

8-bit state is saved as it lives: ``<name>_codes`` (uint8, the param's
shape) and ``<name>_absmax`` (fp32, one per block), with a format record
under the state dict's top-level key ``adamlab_state_format``: version, block
size and the code of each state array. Loading converts whatever a
checkpoint holds (fp32 state from torch.optim, bf16, 8-bit of any block
size this version reads) into the format the *loading* optimizer's groups
ask for; the same format loads bit for bit. :func:`expand_state_dict` turns
an adamlab state dict into one torch.optim loads.
"""

from __future__ import annotations

import torch

from ..backends import quantized, rounding
from . import lowp

FORMAT_KEY = "adamlab_state_format"
FORMAT_VERSION = 1
CODE_NAMES = {"q8_signed": "sqrt-signed-127", "q8_unsigned": "fourth-root-unsigned-254"}
CODECS_BY_NAME = {v: k for k, v in CODE_NAMES.items()}
PARAM_KEYS = ("kahan_comp", "rounding_key")  # buffers of a param's own codec
STORAGE_OPTIONS = ("state_precision", "param_update", "rounding_seed")


def _local(t):
    return t.to_local() if hasattr(t, "to_local") else t


def array_keys(name: str) -> tuple[str, ...]:
    """Every key under which state array ``name`` may be stored."""
    return (name, f"{name}_codes", f"{name}_absmax")


def present(state: dict, name: str) -> bool:
    return name in state or f"{name}_codes" in state


def is_block_or_scalar_key(key: str) -> bool:
    """Keys whose tensors are not shaped like the param: block scales and stream keys."""
    return key.endswith("_absmax") or key == "rounding_key"


# ---------------------------------------------------------------- format record


def format_record(opt) -> dict | None:
    codes = {}
    for group in opt.param_groups:
        for p in group["params"]:
            for key in opt.state.get(p, {}):
                if key.endswith("_codes"):
                    name = key[: -len("_codes")]
                    codes[name] = CODE_NAMES["q8_unsigned" if name in opt.algorithm.nonnegative_state else "q8_signed"]
    if not codes:
        return None
    return {"version": FORMAT_VERSION, "block_size": quantized.BLOCK, "codes": codes}


def read_format(state_dict: dict) -> dict | None:
    """The checked format record of a state dict (None if it holds no 8-bit state); raises if unreadable."""
    has_codes = any(k.endswith("_codes") for st in state_dict.get("state", {}).values() if isinstance(st, dict)
                    for k in st)
    record = state_dict.get(FORMAT_KEY)
    if record is None:
        if has_codes:
            raise ValueError(f"state_dict holds 8-bit state ('*_codes') but no '{FORMAT_KEY}' record: "
                             "its block size and codes are unknown")
        return None
    if not isinstance(record, dict) or record.get("version") != FORMAT_VERSION:
        raise ValueError(f"state_dict's '{FORMAT_KEY}' has version {record.get('version')!r}; this adamlab reads "
                         f"version {FORMAT_VERSION}")
    block = record.get("block_size")
    if not isinstance(block, int) or block < 1:
        raise ValueError(f"state_dict's '{FORMAT_KEY}' block_size must be a positive integer, got {block!r}")
    unknown = sorted(set(record.get("codes", {}).values()) - set(CODECS_BY_NAME))
    if unknown:
        raise ValueError(f"state_dict's '{FORMAT_KEY}' names codes {unknown}; this adamlab knows "
                         f"{sorted(CODECS_BY_NAME)}")
    return record


# ---------------------------------------------------------------- values and conversions


def stored_value(state: dict, name: str, record: dict | None, nonnegative: bool) -> torch.Tensor | None:
    """The fp32 values (local shard, flat) of state array ``name`` in whatever format it is stored."""
    if f"{name}_codes" in state:
        codes, scale = _local(state[f"{name}_codes"]).reshape(-1), _local(state[f"{name}_absmax"]).reshape(-1)
        block = record["block_size"] if record else quantized.BLOCK
        code = CODECS_BY_NAME[record["codes"][name]] if record and name in record.get("codes", {}) else (
            "q8_unsigned" if nonnegative else "q8_signed")
        return quantized.decode(code, codes, scale, block)
    if name in state and torch.is_tensor(state[name]):
        return _local(state[name]).reshape(-1).float()
    return None


def state_array(opt, state: dict, name: str) -> torch.Tensor | None:
    """State array ``name`` of one param as a tensor shaped like the param's local shard: the stored tensor,
    or the fp32 values of its 8-bit codes; None where the state has neither."""
    if name in state:
        return state[name]
    if f"{name}_codes" not in state:
        return None
    codes = _local(state[f"{name}_codes"])
    return stored_value(state, name, None, name in opt.algorithm.nonnegative_state).view(codes.shape)


def convert(opt, group: dict, p: torch.Tensor, state: dict, stream: int, record: dict | None = None) -> dict:
    """The param's state in the storage its group asks for, from ``state`` in any format (counters kept)."""
    algorithm, names = opt.algorithm, opt.algorithm.plan(group, _counters(opt, state), False).config.state_names()
    owned = {k for n in names for k in array_keys(n)} | set(PARAM_KEYS)
    out = {k: v for k, v in state.items() if k not in owned}
    lay = lowp.layout(group, p, names, algorithm.nonnegative_state)
    values = {}
    for name in names:
        value = stored_value(state, name, record, name in algorithm.nonnegative_state)
        if value is None:
            raise KeyError(f"a param's state has {sorted(state)} but lacks '{name}' in any format")
        values[name] = value
    if lay is None:
        for name in names:
            target = torch.zeros_like(p, dtype=lowp.state_dtype(group, p), memory_format=torch.contiguous_format)
            _local(target).view(-1).copy_(values[name])
            out[name] = target
        return out
    fresh = lowp.new_buffers(p, lay, group.get("rounding_seed", 0), stream)
    for key in PARAM_KEYS:  # a param's compensation and stream carry over where the layout keeps them
        if key in fresh and key in state:
            fresh[key] = state[key].to(fresh[key].dtype).clone()
    for name, codec, keys in zip(names, lay.codecs[2:], lay.keys[2:]):
        main = _local(fresh[keys[0]]).view(-1)
        if codec in quantized.ROOTS:
            codes, scale = quantized.encode(codec, values[name].to(main.device))
            main.copy_(codes)
            _local(fresh[keys[1]]).copy_(scale)
        else:
            main.copy_(values[name])
    out.update(fresh)
    return out


def _counters(opt, state):
    from .checkpoint import _counters as counters

    return counters(opt, state)


def needs_conversion(opt, group: dict, p: torch.Tensor, state: dict, names) -> bool:
    """Whether a param's (non-empty) state is kept otherwise than its group now asks."""
    lay = lowp.layout(group, p, names, opt.algorithm.nonnegative_state)
    if lay is None:
        want = lowp.state_dtype(group, p)
        return any(n not in state or not torch.is_tensor(state[n]) or state[n].dtype != want for n in names)
    return any(k not in state for k in lay.state_keys())


def restore(opt, state_dict: dict) -> None:
    """After torch's loader: each param's saved state in the storage of its (loading) group."""
    record = read_format(state_dict)
    params = [(gi, pi, p) for gi, g in enumerate(opt.param_groups) for pi, p in enumerate(g["params"])]
    saved_ids = [i for g in state_dict["param_groups"] for i in g["params"]]
    for (gi, pi, p), pid in zip(params, saved_ids):
        saved = state_dict["state"].get(pid)
        if not saved:
            continue
        group = opt.param_groups[gi]
        foreign = any(k.endswith(("_codes", "_absmax")) or k in PARAM_KEYS for k in saved)
        if lowp.active(group) or foreign:
            merged = {**opt.state[p], **{k: v for k, v in saved.items() if k not in opt.algorithm.counters}}
            opt.state[p] = convert(opt, group, p, merged, stream_of(gi, pi), record)


def stream_of(gi: int, pi: int) -> int:
    """A param's random stream: a hash of its position in the optimizer (group, place in the group)."""
    return rounding.mix32(rounding.mix32(gi) ^ pi)


def add_format(opt, state_dict: dict) -> dict:
    record = format_record(opt)
    if record is not None:
        state_dict[FORMAT_KEY] = record
    return state_dict


def expand_state_dict(state_dict: dict) -> dict:
    """A copy of an adamlab state dict in torch.optim's format: fp32 moments, no adamlab-only keys.

    8-bit state is decoded (its codes times its blocks' absmax), bf16 state
    widened to fp32, a bf16 param's compensation and stream key dropped, and
    the low-precision options removed from the groups.

    Args:
        state_dict: an adamlab optimizer's ``state_dict()`` (or one loaded with
            ``torch.load(..., weights_only=True)``); it is not changed.
    """
    record = read_format(state_dict)
    state = {}
    for pid, st in state_dict["state"].items():
        out = {}
        for key, value in st.items():
            if key.endswith("_codes"):
                name = key[: -len("_codes")]
                flat = stored_value(st, name, record, False)
                out[name] = flat.view(value.shape)
            elif is_block_or_scalar_key(key) or key in PARAM_KEYS:
                continue
            elif torch.is_tensor(value) and value.dtype == torch.bfloat16 and key != "step":
                out[key] = value.float()
            else:
                out[key] = value
        state[pid] = out
    groups = [{k: v for k, v in g.items() if k not in STORAGE_OPTIONS} for g in state_dict["param_groups"]]
    return {"state": state, "param_groups": groups}


# ---------------------------------------------------------------- what the state costs


def memory_report(opt) -> dict:
    """State bytes measured from the state tensors themselves (counters excluded), per param and in total.

    ``full_precision`` lists the params whose group asked for low-precision
    state but that keep the default (under 4096 elements for 8-bit, fp64 or
    complex params), by name where the optimizer knows names.
    """
    rows, total_bytes, total_params, kept = [], 0, 0, []
    for gi, group in enumerate(opt.param_groups):
        names = group.get("param_names") or [f"group {gi}, param {pi}" for pi in range(len(group["params"]))]
        for name, p in zip(names, group["params"]):
            st = opt.state.get(p, {})
            nbytes = sum(_local(v).numel() * _local(v).element_size() for k, v in st.items()
                         if torch.is_tensor(v) and k not in opt.algorithm.counters)
            fmt = lowp.precision(group, p) or "default"
            rows.append({"param": name, "numel": p.numel(), "state_bytes": nbytes, "format": fmt})
            if group.get("state_precision") is not None and fmt == "default":
                kept.append(name)
            total_bytes += nbytes
            total_params += _local(p).numel()
    return {"params": total_params, "state_bytes": total_bytes,
            "bytes_per_param": total_bytes / total_params if total_params else 0.0,
            "full_precision": kept, "per_param": rows}
