"""C7's one-step check, after bitsandbytes' test of its 8-bit optimizers.

From the same state (an fp32 transformer state after some training, put on
the 8-bit codes' levels), one 8-bit adamlab.AdamW step against one fp32
torch.optim.AdamW step with the same gradient: relative error of the new
moments per block of 256. The same new fp32 moments also go through
adamlab's codes and through the paper's dynamic map, for the comparison that
chose the codes.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

import adamlab
from adamlab.backends import quantized

from ..c3_warmup.transformer import TinyGPT, char_data
from . import dynamic_map

SMALLEST_QUANTIZED = 4096  # smaller tensors keep fp32 state, as in bitsandbytes and torchao
ERRORS = ("exp_avg", "exp_avg_sq", "update")


def block_errors(got: torch.Tensor, want: torch.Tensor) -> np.ndarray:
    """||got - want|| / ||want|| per block of 256 (flat order), over blocks where want is not all zero."""
    pad = -want.numel() % quantized.BLOCK
    g = F.pad(got.reshape(-1).double(), (0, pad)).view(-1, quantized.BLOCK)
    w = F.pad(want.reshape(-1).double(), (0, pad)).view(-1, quantized.BLOCK)
    norm = w.norm(dim=1)
    keep = norm > 0
    return ((g - w).norm(dim=1)[keep] / norm[keep]).numpy()


def _stats(errors: list[np.ndarray]) -> dict:
    e = np.concatenate(errors)
    return {"median": float(np.median(e)), "p95": float(np.quantile(e, 0.95)), "max": float(e.max()),
            "blocks": int(e.size)}


def code_round_trip(x: torch.Tensor, code: str) -> torch.Tensor:
    codes, scale = quantized.encode(code, x.reshape(-1).float())
    return quantized.decode(code, codes, scale).view(x.shape)


def map_round_trip(x: torch.Tensor, code: str) -> torch.Tensor:
    return dynamic_map.quantize(x, signed=code == "q8_signed")


def _decoded(opt, p, name: str, code: str) -> torch.Tensor:
    st = opt.state[p]
    return quantized.decode(code, st[f"{name}_codes"].reshape(-1), st[f"{name}_absmax"]).view(p.shape)


def _trained(settings, seed: int):
    """The transformer and its fp32 AdamW after ``one_step_after`` steps, holding one more batch's gradient."""
    data, s = char_data(), settings
    torch.manual_seed(seed)
    model = TinyGPT(data.vocab_size, context=s.lm_context, d_model=s.lm_width)
    opt = adamlab.AdamW(model.parameters(), lr=s.lm_lr)
    starts = data.train_starts(s.one_step_after + 1, s.lm_batch, s.lm_context, seed)
    for step in range(s.one_step_after + 1):
        opt.zero_grad(set_to_none=True)
        model.loss(*data.batch(data.train, starts[step], s.lm_context)).backward()
        if step < s.one_step_after:
            opt.step()  # the last batch's gradient is the one both steps take
    return model, opt


def _one_step_each(p, state: dict, lr: float):
    """One 8-bit adamlab step and one torch.optim step from ``state`` with p's gradient: (new param, opt) each."""
    p8, p32 = p.detach().clone(), p.detach().clone()
    p8.grad, p32.grad = p.grad.clone(), p.grad.clone()
    eight = adamlab.AdamW([p8], lr=lr, state_precision="8bit")
    ref = torch.optim.AdamW([p32], lr=lr)
    for o in (eight, ref):
        o.load_state_dict({"state": {0: {k: v.clone() for k, v in state.items()}},
                           "param_groups": [{**o.state_dict()["param_groups"][0]}]})
        o.step()
    return (p8, eight), (p32, ref)


def check(settings, seed: int) -> dict:
    """From the same state, one 8-bit step against one fp32 step; and both codes on the same new moments."""
    model, opt = _trained(settings, seed)
    big = [p for p in model.parameters() if p.numel() >= SMALLEST_QUANTIZED]
    flushed = {"ours": 0, "map": 0}  # elements whose v rounds to 0 while v > 0 and their m does not: m / eps steps
    errors = {f"{prefix}_{name}": [] for prefix in ("step", "ours", "map") for name in ERRORS}
    for p in big:
        st = opt.state[p]
        state = {"step": st["step"].clone(),  # the same state for both: on the codes' levels
                 "exp_avg": code_round_trip(st["exp_avg"], "q8_signed"),
                 "exp_avg_sq": code_round_trip(st["exp_avg_sq"], "q8_unsigned")}
        (p8, eight), (p32, ref) = _one_step_each(p, state, settings.lm_lr)
        want = ref.state[p32]
        errors["step_exp_avg"].append(block_errors(_decoded(eight, p8, "exp_avg", "q8_signed"), want["exp_avg"]))
        errors["step_exp_avg_sq"].append(block_errors(_decoded(eight, p8, "exp_avg_sq", "q8_unsigned"),
                                                      want["exp_avg_sq"]))
        errors["step_update"].append(block_errors(p8 - p.detach(), p32 - p.detach()))
        m, v = want["exp_avg"], want["exp_avg_sq"]
        exact = m / (v.sqrt() + 1e-8)
        for label, trip in (("ours", code_round_trip), ("map", map_round_trip)):
            qm, qv = trip(m, "q8_signed"), trip(v, "q8_unsigned")
            errors[f"{label}_exp_avg"].append(block_errors(qm, m))
            errors[f"{label}_exp_avg_sq"].append(block_errors(qv, v))
            errors[f"{label}_update"].append(block_errors(qm / (qv.sqrt() + 1e-8), exact))
            flushed[label] += int(((qv == 0) & (v > 0) & (qm != 0)).sum())
    return {k: _stats(v) for k, v in errors.items()} | {"tensors": len(big), "after_steps": settings.one_step_after,
                                                       "flushed_second_moments": flushed}
