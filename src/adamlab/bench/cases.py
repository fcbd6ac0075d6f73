"""What ``adamlab bench`` times: the AdamW variants, the tensor layouts, and the contenders."""

from __future__ import annotations

from dataclasses import dataclass

import torch

import adamlab

from .ceiling import Traffic

# bytes per param adamlab's step moves (read + write): fp32 p, g, m, v (+ max v); bf16 p and g, fp32 m and v
BYTES_PER_PARAM = {"adamw": 16 + 12, "amsgrad": 20 + 16, "bf16": 12 + 10, "no-bc": 16 + 12}
LR, WD = 1e-3, 1e-2


@dataclass(frozen=True)
class Variant:
    name: str
    dtype: torch.dtype
    adamlab_kw: dict
    torch_kw: dict
    states: int  # fp32 state arrays adamlab keeps per param


VARIANTS = {
    "adamw": Variant("adamw", torch.float32, {}, {}, 2),
    "amsgrad": Variant("amsgrad", torch.float32, {"amsgrad": True}, {"amsgrad": True}, 3),
    "bf16": Variant("bf16", torch.bfloat16, {}, {}, 2),
    # torch has no switch for this: compared with torch's bias-corrected AdamW
    "no-bc": Variant("no-bc", torch.float32, {"bias_correction": False}, {}, 2),
}


def gpt2_shapes(d_model: int, n_layer: int, vocab: int = 50257, context: int = 1024) -> list[tuple[int, ...]]:
    """GPT-2 small's tensor layout (tied embedding, biases, two LayerNorms per block), scaled down."""
    d = d_model
    block = [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,), (d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return [(vocab, d), (context, d)] + block * n_layer + [(d,), (d,)]


def many_small_shapes(n: int, low: int = 1000, high: int = 20000, seed: int = 0) -> list[tuple[int, ...]]:
    gen = torch.Generator().manual_seed(seed)
    return [(int(k),) for k in torch.randint(low, high + 1, (n,), generator=gen)]


@dataclass(frozen=True)
class Case:
    key: str
    name: str
    shapes: list[tuple[int, ...]]

    @property
    def label(self) -> str:
        params = sum(torch.Size(s).numel() for s in self.shapes)
        return f"{self.name}: {len(self.shapes)} tensors, {params / 1e6:.1f}M params"


def cases(quick: bool) -> dict[str, Case]:
    """The three layouts; --quick shrinks each, and the labels say what actually runs."""
    d_model, layers = (256, 2) if quick else (384, 6)
    return {
        "a": Case("a", "one large tensor", [(8 * 2**20 if quick else 32 * 2**20,)]),
        "b": Case("b", f"GPT-2 small's layout at d_model {d_model}, {layers} layers", gpt2_shapes(d_model, layers)),
        "c": Case("c", "many small tensors of 1k-20k elements", many_small_shapes(500 if quick else 2000)),
    }


def contenders(variant: Variant, params: list[torch.Tensor]) -> dict:
    """Each contender's stepping object; "ceiling" moves the step's bytes and does no arithmetic."""
    def torch_adamw(**kw):
        return torch.optim.AdamW(params, lr=LR, weight_decay=WD, **kw, **variant.torch_kw)

    return {
        "adamlab": adamlab.AdamW(params, lr=LR, weight_decay=WD, **variant.adamlab_kw),
        "torch-loop": torch_adamw(foreach=False),
        "torch-foreach": torch_adamw(foreach=True),
        "torch-fused": torch_adamw(fused=True),
        "ceiling": Traffic(params, variant.states),
    }
