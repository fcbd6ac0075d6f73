"""A small decoder-only, pre-LayerNorm transformer for character-level text, and its training recipe."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F
from torch.optim.lr_scheduler import LambdaLR

import adamlab

from .corpus import CharData
from .monitoring import FirstSteps


class Block(nn.Module):
    """x + attn(LN(x)), then x + MLP(LN(x)): the pre-LN arrangement."""

    def __init__(self, d_model: int, heads: int):
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(), nn.Linear(4 * d_model, d_model))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class TinyGPT(nn.Module):
    """Token and position embeddings, ``layers`` pre-LN blocks, final LN, linear head."""

    def __init__(self, vocab: int, context: int = 64, d_model: int = 64, heads: int = 4, layers: int = 2):
        super().__init__()
        self.tok = nn.Embedding(vocab, d_model)
        self.pos = nn.Embedding(context, d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab)
        self.apply(_init)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = self(x).float()  # a bf16 model's loss in bf16 would round it to 1 part in 256
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _init(module: nn.Module) -> None:
    """Weights N(0, 0.02), biases 0; LayerNorm keeps its (1, 0)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


# ------------------------------------------------------------------ training recipe


@dataclass(frozen=True)
class LMRun:
    """One training run of the warmup demonstration (claim C3)."""

    variant: str  # "none", "linear", "untuned" or "radam"
    seed: int
    steps: int = 400
    warmup: int = 0  # linear warmup steps before the cosine decay
    lr: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.99)
    batch: int = 16
    context: int = 64
    val_windows: int = 256
    track_steps: int = 100  # record update and second-moment statistics over the first steps
    monitor_steps: int = 0  # attach adamlab.Monitor to the first steps (its records come back as "monitor")


def train_lm(run: LMRun) -> dict:
    """Train TinyGPT with adamlab's Adam (or RAdam) and a warmup + cosine schedule.

    Returns the per-step train loss, the final validation loss, and over the
    first ``track_steps`` steps: the update-to-weight ratio ||dtheta||/||theta||
    and the median sqrt(vhat) over all coordinates.
    """
    data = char_data()
    torch.manual_seed(run.seed)  # same init for every variant of a seed
    model = TinyGPT(data.vocab_size, context=run.context)
    params = [p for p in model.parameters()]
    opt_class = adamlab.RAdam if run.variant == "radam" else adamlab.Adam
    opt = opt_class(params, lr=run.lr, betas=run.betas)
    sched = LambdaLR(opt, adamlab.schedules.warmup_cosine(run.warmup, run.steps))
    starts = data.train_starts(run.steps, run.batch, run.context, run.seed)
    out = {"run": asdict(run), "loss": [], "update_ratio": [], "sqrt_vhat_median": []}
    watch = FirstSteps(opt, run.monitor_steps)
    for s in range(run.steps):
        track = s < run.track_steps
        x, y = data.batch(data.train, starts[s], run.context)
        loss = model.loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        before = torch.cat([p.detach().reshape(-1) for p in params]) if track else None
        opt.step()
        watch.stepped(s + 1)
        sched.step()
        out["loss"].append(loss.item())
        if track:
            delta = torch.cat([p.detach().reshape(-1) for p in params]) - before
            out["update_ratio"].append((delta.norm() / before.norm()).item())
            out["sqrt_vhat_median"].append(_sqrt_vhat_median(opt, params, run.betas[1]))
    out["monitor"] = watch.history
    out["final_val_loss"] = validation_loss(model, data, run.val_windows, run.context)
    return out


@torch.no_grad()
def validation_loss(model: TinyGPT, data: CharData, windows: int, context: int) -> float:
    """Mean next-character loss over ``windows`` fixed, evenly spaced validation windows."""
    starts = data.val_starts(windows, context)
    losses = [model.loss(*data.batch(data.val, chunk, context)).item() for chunk in starts.split(64)]
    return sum(losses) / len(losses)


def _sqrt_vhat_median(opt, params, beta2: float) -> float:
    """Median over every coordinate of sqrt(v / (1 - beta2^t)): the gradient scale Adam divides by."""
    v = [opt.state[p]["exp_avg_sq"].reshape(-1) / (1 - beta2 ** int(opt.state[p]["step"])) for p in params]
    return torch.cat(v).sqrt().median().item()


@lru_cache(maxsize=1)
def char_data() -> CharData:
    return CharData()
