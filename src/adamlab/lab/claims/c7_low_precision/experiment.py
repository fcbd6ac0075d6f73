"""C7's runs: two tasks, six ways of keeping the optimizer's numbers, paired seeds; and a one-step check.

Ways (``CONFIGS``): fp32 state (the baseline), bf16 state, 8-bit state, all
with fp32 params; and bf16 params (the whole model in bf16) whose updates
round to nearest, stochastically or with a Kahan compensation buffer, with
adamlab's default fp32 state. Each seed fixes the initialisation and the data
order for every way, so the differences are paired.

Tasks: C3's decoder-only transformer on the character corpus (AdamW, warmup
then cosine decay), and an MLP on scikit-learn's digits (64-256-256-10).
The lr is modest (1e-3), the regime where small updates matter: a bf16
weight w only moves when its update exceeds half a bf16 step, about
0.002 |w|.

The one-step check follows bitsandbytes' test of its 8-bit optimizers:
from the same state (an fp32 transformer state after some training, put on
the 8-bit code's levels), one 8-bit step against one fp32 torch.optim step,
relative error of the new moments per block of 256. The same new fp32
moments also go through adamlab's codes and through the paper's dynamic
map, for the comparison that chose the codes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch.nn import functional as F
from torch.optim.lr_scheduler import LambdaLR

import adamlab
from adamlab.backends import quantized

from ...data_digits import digits_splits
from ...models_transformer import TinyGPT, _char_data
from ...workers import Workers, one_thread
from . import dynamic_map


@dataclass(frozen=True)
class Settings:
    lm_steps: int = 400
    lm_lr: float = 1e-3
    lm_seeds: int = 3
    lm_batch: int = 16
    lm_context: int = 64
    val_windows: int = 256
    digits_steps: int = 600
    digits_lr: float = 1e-3
    digits_seeds: int = 5
    digits_batch: int = 32
    one_step_after: int = 100  # fp32 training steps before the one-step check
    workers: int = 2  # worker processes, one thread each


FULL = Settings()
QUICK = Settings(lm_steps=30, lm_seeds=1, val_windows=64, digits_steps=40, digits_seeds=1, one_step_after=10,
                 workers=1)

BF16 = torch.bfloat16
CONFIGS = {  # name -> (param dtype, optimizer options)
    "fp32 state": (torch.float32, {}),
    "bf16 state": (torch.float32, {"state_precision": "bf16"}),
    "8-bit state": (torch.float32, {"state_precision": "8bit"}),
    "bf16 params, nearest": (BF16, {}),
    "bf16 params, stochastic": (BF16, {"param_update": "stochastic"}),
    "bf16 params, Kahan": (BF16, {"param_update": "kahan"}),
}
BASELINE = "fp32 state"
CURVE_EVERY = 10  # training loss is recorded as the mean of each 10 steps


@dataclass(frozen=True)
class Job:
    task: str  # "lm" or "digits"
    config: str
    seed: int
    settings: Settings


def _optimizer(params, config: str, lr: float, seed: int):
    _, options = CONFIGS[config]
    return adamlab.AdamW(params, lr=lr, rounding_seed=seed, **options)


def _memory(opt, model) -> dict:
    report = opt.memory_report()
    params = sum(p.numel() for p in model.parameters())
    param_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"state_bytes_per_param": report["bytes_per_param"], "param_bytes_per_param": param_bytes / params,
            "full_precision_state": len(report["full_precision"])}


def _curve(losses: list[float]) -> list[float]:
    return [float(np.mean(losses[i : i + CURVE_EVERY])) for i in range(0, len(losses), CURVE_EVERY)]


def _fit(model, opt, sched, batches, loss_fn) -> list[float]:
    """One optimizer and scheduler step per (x, y) batch; the training losses."""
    losses = []
    for x, y in batches:
        loss = loss_fn(model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def _lm_loss(model, x, y) -> torch.Tensor:
    logits = model(x).float()
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def train_lm(job: Job) -> dict:
    s, data = job.settings, _char_data()
    dtype, _ = CONFIGS[job.config]
    torch.manual_seed(job.seed)
    model = TinyGPT(data.vocab_size, context=s.lm_context).to(dtype)
    opt = _optimizer(model.parameters(), job.config, s.lm_lr, job.seed)
    sched = LambdaLR(opt, adamlab.schedules.warmup_cosine(s.lm_steps // 10, s.lm_steps))
    starts = data.train_starts(s.lm_steps, s.lm_batch, s.lm_context, job.seed)
    batches = (data.batch(data.train, starts[step], s.lm_context) for step in range(s.lm_steps))
    losses = _fit(model, opt, sched, batches, _lm_loss)
    with torch.no_grad():
        windows = data.val_starts(s.val_windows, s.lm_context).split(64)
        val = float(np.mean([_lm_loss(model, *data.batch(data.val, w, s.lm_context)).item() for w in windows]))
    return {"final_val_loss": val, "curve": _curve(losses), **_memory(opt, model)}


def digits_model() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 256), torch.nn.ReLU(),
                               torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))


def train_digits(job: Job) -> dict:
    s, splits = job.settings, digits_splits()
    dtype, _ = CONFIGS[job.config]
    torch.manual_seed(job.seed)
    model = digits_model().to(dtype)
    opt = _optimizer(model.parameters(), job.config, s.digits_lr, job.seed)
    sched = LambdaLR(opt, adamlab.schedules.warmup_cosine(s.digits_steps // 10, s.digits_steps))
    gen = torch.Generator().manual_seed(job.seed)
    x, y = splits["train"].x.to(dtype), splits["train"].y
    picks = (torch.randint(0, len(y), (s.digits_batch,), generator=gen) for _ in range(s.digits_steps))
    losses = _fit(model, opt, sched, ((x[b], y[b]) for b in picks),
                  lambda m, xb, yb: F.cross_entropy(m(xb).float(), yb))
    with torch.no_grad():
        val = F.cross_entropy(model(splits["val"].x.to(dtype)).float(), splits["val"].y).item()
    return {"final_val_loss": val, "curve": _curve(losses), **_memory(opt, model)}


def train(job: Job) -> dict:
    """One run (module level, so worker processes can take it)."""
    out = (train_lm if job.task == "lm" else train_digits)(job)
    return {"task": job.task, "config": job.config, "seed": job.seed, **out}


def jobs(settings: Settings, seed: int) -> list[Job]:
    lm = [Job("lm", c, seed + i, settings) for i in range(settings.lm_seeds) for c in CONFIGS]
    digits = [Job("digits", c, seed + i, settings) for i in range(settings.digits_seeds) for c in CONFIGS]
    return lm + digits  # the long runs first, so the workers finish together


# ---------------------------------------------------------------- summaries


def summarise(results: list[dict], task: str) -> dict:
    """Per way: final validation losses by seed, their mean, the paired gap to fp32 state, memory."""
    runs = [r for r in results if r["task"] == task]
    out = {}
    base = {r["seed"]: r["final_val_loss"] for r in runs if r["config"] == BASELINE}
    for config in CONFIGS:
        mine = sorted((r for r in runs if r["config"] == config), key=lambda r: r["seed"])
        losses = [r["final_val_loss"] for r in mine]
        out[config] = {
            "final_val_loss": losses,
            "mean": float(np.mean(losses)),
            "std": float(np.std(losses, ddof=1)) if len(losses) > 1 else 0.0,
            "paired_gaps": [r["final_val_loss"] - base[r["seed"]] for r in mine],
            "curve": np.mean([r["curve"] for r in mine], axis=0).tolist(),
            **{k: mine[0][k] for k in ("state_bytes_per_param", "param_bytes_per_param", "full_precision_state")},
        }
    fp32 = out[BASELINE]
    return {"configs": out, "seeds": len(base), "baseline_mean": fp32["mean"], "baseline_std": fp32["std"],
            "tolerance": max(fp32["std"], 0.01 * fp32["mean"]),
            "gaps": {c: v["mean"] - fp32["mean"] for c, v in out.items()}}


# ---------------------------------------------------------------- the one-step check


def _block_errors(got: torch.Tensor, want: torch.Tensor) -> np.ndarray:
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


def _code_round_trip(x: torch.Tensor, code: str) -> torch.Tensor:
    codes, scale = quantized.encode(code, x.reshape(-1).float())
    return quantized.decode(code, codes, scale).view(x.shape)


def one_step_check(settings: Settings, seed: int) -> dict:
    """From the same state, one 8-bit step against one fp32 step; and both codes on the same new moments."""
    data, s = _char_data(), settings
    torch.manual_seed(seed)
    model = TinyGPT(data.vocab_size, context=s.lm_context)
    opt = adamlab.AdamW(model.parameters(), lr=s.lm_lr)
    starts = data.train_starts(s.one_step_after + 1, s.lm_batch, s.lm_context, seed)
    for step in range(s.one_step_after + 1):
        opt.zero_grad(set_to_none=True)
        _lm_loss(model, *data.batch(data.train, starts[step], s.lm_context)).backward()
        if step < s.one_step_after:
            opt.step()  # the last batch's gradient is the one both steps take
    big = [p for p in model.parameters() if p.numel() >= 4096]
    flushed = {"ours": 0, "map": 0}  # elements whose v rounds to 0 while v > 0 and their m does not: m / eps steps
    errors = {k: [] for k in ("step_exp_avg", "step_exp_avg_sq", "step_update", "ours_exp_avg", "ours_exp_avg_sq",
                              "ours_update", "map_exp_avg", "map_exp_avg_sq", "map_update")}
    for p in big:
        st = opt.state[p]
        start = {"exp_avg": _code_round_trip(st["exp_avg"], "q8_signed"),  # the same state: on the code's levels
                 "exp_avg_sq": _code_round_trip(st["exp_avg_sq"], "q8_unsigned")}
        p8, p32 = p.detach().clone(), p.detach().clone()
        p8.grad, p32.grad = p.grad.clone(), p.grad.clone()
        eight = adamlab.AdamW([p8], lr=s.lm_lr, state_precision="8bit")
        ref = torch.optim.AdamW([p32], lr=s.lm_lr)
        state = {"step": st["step"].clone(), **{k: v.clone() for k, v in start.items()}}
        for o in (eight, ref):
            o.load_state_dict({"state": {0: {k: v.clone() for k, v in state.items()}},
                               "param_groups": [{**o.state_dict()["param_groups"][0]}]})
        eight.step()
        ref.step()
        got = {"exp_avg": _decoded(eight, p8, "exp_avg", "q8_signed"),
               "exp_avg_sq": _decoded(eight, p8, "exp_avg_sq", "q8_unsigned")}
        want = ref.state[p32]
        for name in ("exp_avg", "exp_avg_sq"):
            errors[f"step_{name}"].append(_block_errors(got[name], want[name]))
        errors["step_update"].append(_block_errors(p8 - p.detach(), p32 - p.detach()))
        m, v = want["exp_avg"], want["exp_avg_sq"]
        exact = m / (v.sqrt() + 1e-8)
        for label, trip in (("ours", _code_round_trip), ("map", _map_round_trip)):
            qm, qv = trip(m, "q8_signed"), trip(v, "q8_unsigned")
            errors[f"{label}_exp_avg"].append(_block_errors(qm, m))
            errors[f"{label}_exp_avg_sq"].append(_block_errors(qv, v))
            errors[f"{label}_update"].append(_block_errors(qm / (qv.sqrt() + 1e-8), exact))
            flushed[label] += int(((qv == 0) & (v > 0) & (qm != 0)).sum())
    return {k: _stats(v) for k, v in errors.items()} | {"tensors": len(big), "after_steps": s.one_step_after,
                                                       "flushed_second_moments": flushed}


def _map_round_trip(x: torch.Tensor, code: str) -> torch.Tensor:
    return dynamic_map.quantize(x, signed=code == "q8_signed")


def _decoded(opt, p, name: str, code: str) -> torch.Tensor:
    st = opt.state[p]
    return quantized.decode(code, st[f"{name}_codes"].reshape(-1), st[f"{name}_absmax"]).view(p.shape)


# ---------------------------------------------------------------- everything


def run(settings: Settings = FULL, seed: int = 0, progress=None) -> dict:
    """All runs and the one-step check; ``progress(description, total)`` returns an ``advance()``."""
    todo = jobs(settings, seed)
    advance = progress(f"C7 low-precision state, {len(todo)} runs", len(todo) + 1) if progress else (lambda: None)
    with Workers(settings.workers) as workers:
        results = workers.map(train, todo, advance)
    with one_thread():
        check = one_step_check(settings, seed)
    advance()
    return {"settings": asdict(settings), "seed": seed, "lm": summarise(results, "lm"),
            "digits": summarise(results, "digits"), "one_step": check}


def smaller(settings: Settings, **changes) -> Settings:
    return replace(settings, **changes)
