"""torch.amp.GradScaler with adamlab.AdamW (the scaler's fused path: adamlab unscales inside its step)
against torch.optim.AdamW (the scaler unscales the gradients first), fp16 autocast on CPU, with one
overflowing step that both must skip without counting it.
"""

import pytest
import torch

import adamlab

pytestmark = pytest.mark.slow  # trainers and process groups: minutes, run in CI

STEPS, OVERFLOW = 10, 4


def train(cls, clip):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 9), torch.nn.Tanh(), torch.nn.Linear(9, 3))
    opt = cls(model.parameters(), lr=1e-2, weight_decay=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**14, growth_interval=3)
    gen, scales = torch.Generator().manual_seed(1), []
    for step in range(STEPS):
        x, y = torch.randn(16, 6, generator=gen), torch.randn(16, 3, generator=gen)
        with torch.autocast("cpu", dtype=torch.float16):
            loss = torch.nn.functional.mse_loss(model(x).float(), y)
        opt.zero_grad()
        scaler.scale(loss).backward()
        if step == OVERFLOW:
            model[0].weight.grad[0, 0] = float("inf")
        if clip:  # the usual pattern with clipping: unscale first, then the scaler only checks for overflow
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        scaler.step(opt)
        scaler.update()
        scales.append(scaler.get_scale())
    return [p.detach() for p in model.parameters()], scales, [float(s["step"]) for s in opt.state.values()]


@pytest.mark.parametrize("clip", [False, True], ids=["plain", "unscale-and-clip"])
def test_grad_scaler_steps_as_with_torch_adamw(clip):
    params, scales, steps = train(adamlab.AdamW, clip)
    params_t, scales_t, steps_t = train(torch.optim.AdamW, clip)
    assert scales == scales_t and scales[OVERFLOW] == scales[OVERFLOW - 1] / 2  # the overflow was seen
    assert steps == steps_t == [STEPS - 1] * len(steps)  # and its step skipped, uncounted
    for a, b in zip(params, params_t, strict=True):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (a - b).abs().max()
