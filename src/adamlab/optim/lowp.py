"""Low-precision state and bf16 param updates: which codec keeps each array of a param, in which tensors.

Three group options decide it (all beyond torch): ``state_precision`` (None,
"bf16", "8bit"), ``param_update`` ("nearest", "stochastic", "kahan") and
``rounding_seed``. The rules never change; only the codecs of
:mod:`adamlab.backends.storage` do. A param whose arrays are all plain
dtypes (default state, bf16 state, nearest rounding) runs the usual path;
anything else gets a :class:`Layout`: one codec per array (p, g, each state)
and the state keys of every buffer the codecs own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..backends import quantized, rounding
from ..backends.storage import CODECS, DTYPE_CODEC

MIN_8BIT_NUMEL = 4096  # smaller tensors keep the default state (as bitsandbytes and torchao do)
HALF = (torch.float16, torch.bfloat16)


def default_state_dtype(p: torch.Tensor) -> torch.dtype:
    """Moments of half-precision params are kept in fp32, so eps=1e-8 and small g^2 survive."""
    return torch.float32 if p.dtype in HALF else p.dtype


def active(group: dict) -> bool:
    return group.get("state_precision") is not None or group.get("param_update", "nearest") != "nearest"


def precision(group: dict, p: torch.Tensor) -> str | None:
    """The state format this param gets: "bf16", "8bit" or None (the default), after the exceptions."""
    wanted = group.get("state_precision")
    if wanted is None or p.is_complex() or p.dtype not in (torch.float32, *HALF):
        return None
    if wanted == "8bit" and p.numel() < MIN_8BIT_NUMEL:  # a DTensor's numel is the whole param's
        return None
    return wanted


def state_dtype(group: dict, p: torch.Tensor) -> torch.dtype:
    """The dtype of a plain state tensor of this param (the codes of 8-bit state are uint8)."""
    return torch.bfloat16 if precision(group, p) == "bf16" else default_state_dtype(p)


def param_codec(group: dict, p: torch.Tensor) -> str:
    mode = group.get("param_update", "nearest")
    if p.dtype == torch.bfloat16 and mode != "nearest":
        return {"stochastic": "bf16_stochastic", "kahan": "bf16_kahan"}[mode]
    return DTYPE_CODEC.get(p.dtype)


def check_param(group: dict, p: torch.Tensor) -> None:
    mode = group.get("param_update", "nearest")
    if mode != "nearest" and p.dtype == torch.float16:
        raise ValueError(f"param_update={mode!r} is for bf16 params; an fp16 param accepts only 'nearest'")


def check_sparse(group: dict) -> None:
    if active(group):
        raise RuntimeError("sparse gradients need state_precision=None and param_update='nearest': the sparse "
                           "step updates torch tensors in place, not quantized state")


def with_rounding_step(group: dict, counters, plan):
    """Stochastic rounding draws per step: the plan gains the step number as a scalar."""
    if group.get("param_update") != "stochastic" or "step" not in counters:
        return plan
    return replace(plan, scalars={**plan.scalars, "rounding_step": counters["step"]})


@dataclass(frozen=True)
class Layout:
    """How one param's arrays are kept: a codec per array (p, g, states) and each buffer's state key."""

    codecs: tuple[str, ...]
    keys: tuple[tuple[str | None, ...], ...]  # per array, per buffer; None for the param and the grad themselves

    @property
    def width(self) -> int:
        return sum(map(len, self.keys))

    def state_keys(self) -> list[str]:
        return [k for keys in self.keys for k in keys if k is not None]


def layout(group: dict, p: torch.Tensor, names: tuple[str, ...], nonnegative: tuple[str, ...]) -> Layout | None:
    """The param's layout, or None when every array is a plain dtype (the usual path)."""
    check_param(group, p)
    fmt = precision(group, p)
    pc, gc = param_codec(group, p), DTYPE_CODEC.get(p.dtype)
    if fmt == "8bit":
        states = tuple("q8_unsigned" if n in nonnegative else "q8_signed" for n in names)
    else:
        states = (DTYPE_CODEC.get(state_dtype(group, p)),) * len(names)
    if fmt != "8bit" and pc == gc:
        return None
    codecs = (pc, gc) + states
    keys = []
    for name, codec in zip(("p", "g") + names, map(CODECS.get, codecs)):
        main = None if name in ("p", "g") else codec.main_key.format(name=name)
        keys.append((main,) + tuple(b.key.format(name=name) for b in codec.buffers))
    return Layout(codecs, tuple(keys))


def _local(t: torch.Tensor) -> torch.Tensor:
    return t.to_local() if hasattr(t, "to_local") else t


def new_buffers(p: torch.Tensor, lay: Layout, seed: int, stream: int) -> dict[str, torch.Tensor]:
    """Zero state of every buffer the layout's codecs own (codes and absmax of 8-bit state, p's extras).

    Element buffers follow the param (a DTensor param gets DTensor buffers,
    sharded alike); a block buffer holds the blocks of the local shard; the
    random stream's key mixes in the rank, so shards do not share a stream.
    """
    out = {}
    for keys, codec in zip(lay.keys, map(CODECS.get, lay.codecs)):
        if keys[0] is not None:
            out[keys[0]] = torch.zeros_like(p, dtype=_main_dtype(codec), memory_format=torch.contiguous_format)
        for key, buf in zip(keys[1:], codec.buffers):
            if buf.extent == "element":
                out[key] = torch.zeros_like(p, dtype=buf.dtype, memory_format=torch.contiguous_format)
            elif buf.extent == "block":
                out[key] = torch.zeros(quantized.blocks(_local(p).numel()), dtype=buf.dtype, device=p.device)
            else:
                out[key] = torch.tensor(rounding.stream_key(seed, rounding.mix32(stream) ^ _rank(p)),
                                        dtype=buf.dtype)
    return out


def _rank(p) -> int:
    if not hasattr(p, "to_local"):
        return 0
    import torch.distributed as dist

    return dist.get_rank() if dist.is_initialized() else 0


_PLAIN_DTYPES = {name: dtype for dtype, name in DTYPE_CODEC.items()}


def _main_dtype(codec) -> torch.dtype:
    """The dtype of a codec's main buffer: its own for plain codecs, bytes for 8-bit codes, bf16 for bf16 params."""
    if codec.name in _PLAIN_DTYPES:
        return _PLAIN_DTYPES[codec.name]
    return torch.uint8 if codec.block else torch.bfloat16


def expected(p_local: torch.Tensor, lay: Layout) -> list[tuple[int, torch.dtype] | None]:
    """(element count, dtype) of every buffer of a slot, in slot order; None for the grad (checked apart)."""
    out = []
    for k, codec in enumerate(map(CODECS.get, lay.codecs)):
        n = p_local.numel()
        if k == 1:
            out.append(None)
        else:
            out.append((n, p_local.dtype if k == 0 else _main_dtype(codec)))
        for buf in codec.buffers:
            out.append(({"element": n, "block": quantized.blocks(n), "one": 1}[buf.extent], buf.dtype))
    return out


def check_slot(gi: int, lay: Layout, slot: list[torch.Tensor]) -> None:
    p, keys = slot[0], [k for ks in lay.keys for k in ks]
    g = slot[len(lay.keys[0])]
    if g.numel() != p.numel() or g.dtype != p.dtype:
        raise RuntimeError(f"param group {gi}: a gradient of shape {tuple(g.shape)} and dtype {g.dtype} does not "
                           f"match its param of shape {tuple(p.shape)} and dtype {p.dtype}")
    for key, a, want in zip(keys, slot, expected(p, lay)):
        if want is not None and (a.numel(), a.dtype) != want:
            raise RuntimeError(f"param group {gi}: state '{key}' has {a.numel()} elements of {a.dtype}, a param of "
                               f"shape {tuple(p.shape)} needs {want[0]} of {want[1]}")
