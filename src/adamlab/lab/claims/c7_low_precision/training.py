"""C7's training runs: two tasks, six ways of keeping the optimizer's numbers, paired seeds.

Ways (``WAYS``): fp32 state (the baseline), bf16 state, 8-bit state, all
with fp32 params; and bf16 params (the whole model in bf16) whose updates
round to nearest, stochastically or with a Kahan compensation buffer, with
adamlab's default fp32 state. Each seed fixes the initialisation and the data
order for every way, so the differences are paired.

Tasks: C3's decoder-only transformer on the character corpus, and an MLP on
scikit-learn's digits; both with adamlab.AdamW, linear warmup then cosine
decay. The lr is modest, the regime where small updates matter: a bf16
weight w only moves when its update exceeds half a bf16 step, about
0.002 |w|, and the cosine tail's updates are far below that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F
from torch.optim.lr_scheduler import LambdaLR

import adamlab

from ...framework import digits
from ..c3_warmup.transformer import TinyGPT, char_data, validation_loss


@dataclass(frozen=True)
class Settings:
    lm_steps: int
    lm_lr: float
    lm_seeds: int
    lm_batch: int
    lm_context: int
    lm_width: int  # the transformer's d_model
    val_windows: int
    digits_steps: int
    digits_lr: float
    digits_seeds: int
    digits_batch: int
    digits_hidden: int
    digits_train: int  # training images; the rest of the 1797 validate
    one_step_after: int  # fp32 training steps before the one-step check
    workers: int  # worker processes, one thread each


BF16 = torch.bfloat16
WAYS = {  # name -> (param dtype, optimizer options)
    "fp32 state": (torch.float32, {}),
    "bf16 state": (torch.float32, {"state_precision": "bf16"}),
    "8-bit state": (torch.float32, {"state_precision": "8bit"}),
    "bf16 params, nearest": (BF16, {}),
    "bf16 params, stochastic": (BF16, {"param_update": "stochastic"}),
    "bf16 params, Kahan": (BF16, {"param_update": "kahan"}),
}
BASELINE = "fp32 state"
CURVE_EVERY = 10  # training loss is recorded as the mean of each 10 steps
WARMUP_FRACTION = 0.1


@dataclass(frozen=True)
class Job:
    task: str  # "lm" or "digits"
    way: str
    seed: int
    settings: Settings


def _optimizer(params, way: str, lr: float, seed: int):
    _, options = WAYS[way]
    return adamlab.AdamW(params, lr=lr, rounding_seed=seed, **options)


def _memory(opt, model) -> dict:
    report = opt.memory_report()
    params = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"state_bytes_per_param": report["bytes_per_param"], "param_bytes_per_param": param_bytes / params,
            "full_precision_state": len(report["full_precision"])}


def _curve(losses: list[float]) -> list[float]:
    return [float(np.mean(losses[i : i + CURVE_EVERY])) for i in range(0, len(losses), CURVE_EVERY)]


def _fit(model, opt, steps: int, batches, loss_fn) -> list[float]:
    """One optimizer step per (x, y) batch under warmup + cosine decay; the training losses."""
    sched = LambdaLR(opt, adamlab.schedules.warmup_cosine(round(WARMUP_FRACTION * steps), steps))
    losses = []
    for x, y in batches:
        loss = loss_fn(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def train_lm(job: Job) -> dict:
    s, data = job.settings, char_data()
    dtype, _ = WAYS[job.way]
    torch.manual_seed(job.seed)
    model = TinyGPT(data.vocab_size, context=s.lm_context, d_model=s.lm_width).to(dtype)
    opt = _optimizer(model.parameters(), job.way, s.lm_lr, job.seed)
    starts = data.train_starts(s.lm_steps, s.lm_batch, s.lm_context, job.seed)
    batches = (data.batch(data.train, starts[step], s.lm_context) for step in range(s.lm_steps))
    losses = _fit(model, opt, s.lm_steps, batches, lambda m, x, y: m.loss(x, y))
    with torch.no_grad():
        val = validation_loss(model, data, s.val_windows, s.lm_context)
    return {"final_val_loss": val, "curve": _curve(losses), **_memory(opt, model)}


def digits_model(hidden: int) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                               torch.nn.ReLU(), torch.nn.Linear(hidden, 10))


def digits_split(train: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Stratified train / validation rows (64 pixels in [0, 1]), the same for every run."""
    x, y = digits.load(images=False)
    parts = digits.stratified_parts(y, {"train": train, "val": -1})
    return {name: (x[idx], y[idx]) for name, idx in parts.items()}


def _digits_loss(model, x, y) -> torch.Tensor:
    return F.cross_entropy(model(x).float(), y)


def train_digits(job: Job) -> dict:
    s, split = job.settings, digits_split(job.settings.digits_train)
    dtype, _ = WAYS[job.way]
    torch.manual_seed(job.seed)
    model = digits_model(s.digits_hidden).to(dtype)
    opt = _optimizer(model.parameters(), job.way, s.digits_lr, job.seed)
    gen = torch.Generator().manual_seed(job.seed)
    x, y = split["train"][0].to(dtype), split["train"][1]
    picks = (torch.randint(0, len(y), (s.digits_batch,), generator=gen) for _ in range(s.digits_steps))
    losses = _fit(model, opt, s.digits_steps, ((x[b], y[b]) for b in picks), _digits_loss)
    with torch.no_grad():
        val = _digits_loss(model, split["val"][0].to(dtype), split["val"][1]).item()
    return {"final_val_loss": val, "curve": _curve(losses), **_memory(opt, model)}


def train(job: Job) -> dict:
    """One run (module level, so worker processes can take it)."""
    out = (train_lm if job.task == "lm" else train_digits)(job)
    return {"task": job.task, "way": job.way, "seed": job.seed, **out}


def jobs(settings: Settings, seed: int) -> list[Job]:
    lm = [Job("lm", w, seed + i, settings) for i in range(settings.lm_seeds) for w in WAYS]
    dg = [Job("digits", w, seed + i, settings) for i in range(settings.digits_seeds) for w in WAYS]
    return lm + dg  # the long runs first, so the workers finish together


def summarise(results: list[dict], task: str) -> dict:
    """Per way: final validation losses by seed, mean, sd, the paired gaps to fp32 state, memory; and the
    tolerance of the claim's criterion, max(one seed sd of fp32 state, 1% of its mean)."""
    runs = [r for r in results if r["task"] == task]
    base = {r["seed"]: r["final_val_loss"] for r in runs if r["way"] == BASELINE}
    out = {}
    for way in WAYS:
        mine = sorted((r for r in runs if r["way"] == way), key=lambda r: r["seed"])
        losses = [r["final_val_loss"] for r in mine]
        out[way] = {
            "final_val_loss": losses,
            "mean": float(np.mean(losses)),
            "std": float(np.std(losses, ddof=1)) if len(losses) > 1 else 0.0,
            "paired_gaps": [r["final_val_loss"] - base[r["seed"]] for r in mine],
            "curve": np.mean([r["curve"] for r in mine], axis=0).tolist(),
            **{k: mine[0][k] for k in ("state_bytes_per_param", "param_bytes_per_param", "full_precision_state")},
        }
    fp32 = out[BASELINE]
    return {"ways": out, "seeds": len(base), "baseline_mean": fp32["mean"], "baseline_std": fp32["std"],
            "tolerance": max(fp32["std"], 0.01 * fp32["mean"]),
            "gaps": {w: v["mean"] - fp32["mean"] for w, v in out.items()}}
