"""C3: warmup steadies Adam's first steps; RAdam and the untuned rule say for how long.

Closed forms of RAdam's rho_t and r_t, a Monte Carlo of adaptive-lr variance and
update size run through adamlab.Adam, the effective warmup periods of the untuned
rule and of RAdam, and a small transformer trained with and without warmup.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure

import adamlab
from adamlab import math as M
from adamlab.schedules import exponential_warmup, linear_warmup, untuned_warmup_steps

from ..core import Claim, Context, Outcome
from ..models_transformer import LMRun, train_lm
from ..workers import Workers, one_thread

THEORY_BETAS = (0.9, 0.999)
RHO_STEPS, R_STEPS = (1, 2, 3, 4, 5, 6), (5, 6, 10, 100, 1000, 10000)
VAR_STEPS, RMS_STEPS = (3, 10, 100, 1000), (1, 5, 10, 100)
PAPER_THRESHOLD = 4.0  # Liu et al.; adamlab and torch rectify when rho_t > 5
LM_BETA2 = 0.99
VARIANTS = ("none", "linear", "untuned", "radam")
LABELS = {"none": "no warmup", "linear": "linear warmup 100", "untuned": "untuned rule (200)", "radam": "RAdam"}
COLORS = {"none": "tab:red", "linear": "tab:blue", "untuned": "tab:green", "radam": "tab:purple"}
UNTUNED_GAP_MIN, LINEAR_GAP_MIN, RADAM_GAP_MIN, PERIOD_TOL = 0.2, 0.15, 0.0, 0.05


# ---------------------------------------------------------------- closed forms


def warmup_period(multiplier, horizon: int) -> float:
    """T(omega) = sum_t (1 - omega_t) (Ma & Yarats 2021), summed until omega has settled at 1."""
    return float(sum(1.0 - multiplier(t) for t in range(1, horizon + 1)))


def radam_omega(beta2: float, threshold: float = PAPER_THRESHOLD):
    """RAdam's implied warmup: r_t on rectified steps, None on the un-normalised momentum steps before."""
    return lambda t: M.radam_rectification(beta2, t) if M.radam_rho(beta2, t) > threshold else None


def scaled_inv_chi2_variance(rho: float) -> float:
    """Var[psi] for psi^2 ~ Scale-inv-chi2(rho, 1), Liu et al.'s model of the adaptive lr (their eq. 6)."""
    log_beta = 2 * math.lgamma((rho - 1) / 2) - math.lgamma(rho - 1)
    return rho / (rho - 2) - rho / math.pi * math.exp((2 * rho - 5) * math.log(2) + 2 * log_beta)


def closed_forms(beta2: float) -> dict:
    horizon = int(50 / (1 - beta2))
    untuned = linear_warmup(untuned_warmup_steps(beta2))  # multiplier of step s = t - 1
    exponential = exponential_warmup(beta2=beta2)
    radam = radam_omega(beta2)
    first = next(t for t in range(1, horizon) if radam(t) is not None)
    return {
        "rho_t": [M.radam_rho(beta2, t) for t in RHO_STEPS],
        "first_rectified_step": next(t for t in range(1, 100) if M.radam_rho(beta2, t) > 5.0),
        "r_t": {str(t): M.radam_rectification(beta2, t) for t in R_STEPS},
        "variance_scaled_inv_chi2": {str(t): scaled_inv_chi2_variance(M.radam_rho(beta2, t)) for t in VAR_STEPS},
        "warmup_period_untuned": warmup_period(lambda t: untuned(t - 1), horizon),
        "warmup_period_exponential": warmup_period(lambda t: exponential(t - 1), horizon),
        # counted from the first step with rho_t > 4, where r_t starts scaling Adam's step
        "warmup_period_radam": warmup_period(lambda t: radam(t + first - 1), horizon),
        "warmup_period_radam_all_steps": warmup_period(lambda t: radam(t) or 0.0, horizon),
        "update_rms_asymptote": math.sqrt((1 - THEORY_BETAS[0]) / (1 + THEORY_BETAS[0])),
    }


# ---------------------------------------------------------------- Monte Carlo


def adam_monte_carlo(coords: int, steps: int, seed: int) -> dict:
    """adamlab.Adam (lr 1) fed i.i.d. N(0,1) gradients, one coordinate per sample.

    At log-spaced steps t: Var of sqrt((1-b2^t)/v_t) across coordinates (the
    adaptive lr), and the RMS of the update mhat/(sqrt(vhat)+eps).
    """
    record = sorted({int(t) for t in np.geomspace(1, steps, 60).round()} | set(VAR_STEPS) | set(RMS_STEPS))
    gen = torch.Generator().manual_seed(seed)
    p = torch.zeros(coords)
    opt = adamlab.Adam([p], lr=1.0, betas=THEORY_BETAS)
    out = {"t": [], "variance": [], "rms": []}
    for t in range(1, steps + 1):
        before = p.clone() if t in record else None
        p.grad = torch.randn(coords, generator=gen)
        opt.step()
        if before is not None:
            psi = (M.bias_correction(THEORY_BETAS[1], t) / opt.state[p]["exp_avg_sq"]).sqrt()
            out["t"].append(t)
            out["variance"].append(psi.var().item())
            out["rms"].append((p - before).pow(2).mean().sqrt().item())
    return out


# ---------------------------------------------------------------- training


def lm_runs(quick: bool, seed: int) -> list[LMRun]:
    steps, seeds = (40, 1) if quick else (400, 3)
    warm = {"none": 0, "linear": 100, "untuned": untuned_warmup_steps(LM_BETA2), "radam": 0}
    if quick:  # shortened schedule: the same shapes, scaled to the run
        warm = {k: round(v * steps / 400) for k, v in warm.items()}
    extra = {"val_windows": 64} if quick else {}
    return [
        LMRun(v, seed + i, steps=steps, warmup=warm[v], betas=(0.9, LM_BETA2), **extra)
        for i in range(seeds)
        for v in VARIANTS
    ]


def summarise(results: list[dict]) -> dict:
    val = {v: [r["final_val_loss"] for r in results if r["run"]["variant"] == v] for v in VARIANTS}
    mean = {v: float(np.mean(x)) for v, x in val.items()}
    early = {
        v: float(np.mean([np.mean(r["update_ratio"][:20]) for r in results if r["run"]["variant"] == v]))
        for v in VARIANTS
    }
    scale = {
        v: float(np.mean([r["sqrt_vhat_median"][-1] for r in results if r["run"]["variant"] == v])) for v in VARIANTS
    }
    return {
        "val_loss": val,
        "val_loss_mean": mean,
        "gap_untuned": mean["none"] - mean["untuned"],
        "gap_linear": mean["none"] - mean["linear"],
        "gap_radam": mean["none"] - mean["radam"],
        "untuned_all_below_none": max(val["untuned"]) < min(val["none"]),
        "update_ratio_first20": early,
        "sqrt_vhat_median_end_of_tracking": scale,
    }


# ---------------------------------------------------------------- the claim


def run(ctx: Context) -> Outcome:
    forms = closed_forms(THEORY_BETAS[1])
    coords, steps = (20_000, 200) if ctx.quick else (100_000, 1000)
    advance = ctx.progress("C3 Monte Carlo of Adam's adaptive lr", 1)
    with one_thread():
        mc = adam_monte_carlo(coords, steps, ctx.seed)
    advance()
    runs = lm_runs(ctx.quick, ctx.seed)
    # quick: in this process, sparing the workers' start-up; full: 2 worker processes
    advance = ctx.progress(f"C3 transformer, {len(runs)} runs", len(runs))
    with Workers(1 if ctx.quick else 2) as workers:
        results = workers.map(train_lm, runs, advance)
    metrics = {
        **forms,
        "variance_monte_carlo": {str(t): v for t, v in zip(mc["t"], mc["variance"]) if t in VAR_STEPS},
        "update_rms": {str(t): v for t, v in zip(mc["t"], mc["rms"]) if t in RMS_STEPS},
        "warmup_period_ratio": forms["warmup_period_radam"] / forms["warmup_period_untuned"],
        "lm_steps": runs[0].steps,
        "lm_seeds": sorted({r.seed for r in runs}),
        **summarise(results),
    }
    figures = [theory_figure(ctx, forms, mc), training_figure(ctx, results)]
    return Outcome(metrics, figures, tables(metrics), notes=notes(metrics, ctx.quick))


# ---------------------------------------------------------------- report


def theory_figure(ctx: Context, forms: dict, mc: dict):
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    a, b, c = fig.subplots(1, 3)
    beta2, t = THEORY_BETAS[1], np.arange(1, 6001)
    r = [M.radam_rectification(beta2, int(s)) if M.radam_rho(beta2, int(s)) > 5 else 0.0 for s in t]
    a.plot(t, r, label="RAdam r_t (0 before rho_t > 5)", color=COLORS["radam"])
    a.plot(t, np.minimum(1, t * (1 - beta2) / 2), label="untuned linear, 2/(1-b2) steps", color=COLORS["untuned"])
    a.plot(t, 1 - np.exp(-(1 - beta2) * t), "--", label="untuned exponential", color="gray")
    a.set(xscale="log", xlabel="step t", ylabel="multiplier of the lr", title=f"Warmup multipliers, beta2 = {beta2}")
    steps, later = np.array(mc["t"]), np.array(mc["t"]) >= 3
    b.loglog(steps[later], np.array(mc["variance"])[later], "o-", ms=3, label="Monte Carlo, adamlab.Adam", color="black")
    chi2 = [scaled_inv_chi2_variance(M.radam_rho(beta2, int(s))) for s in steps[later]]
    b.loglog(steps[later], chi2, "--", label="scaled inv. chi-square (Liu et al.)", color="tab:orange")
    b.set(xlabel="step t", ylabel="Var[sqrt((1-b2^t)/v_t)]", title="Variance of the adaptive lr (t >= 3)")
    c.semilogx(steps, mc["rms"], "o-", ms=3, label="RMS of mhat/sqrt(vhat)", color="black")
    c.axhline(forms["update_rms_asymptote"], ls="--", color="tab:orange", label="sqrt((1-b1)/(1+b1))")
    c.set(xlabel="step t", ylabel="update RMS / lr", title="Adam update size, i.i.d. N(0,1) gradients")
    for ax in (a, b, c):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    path = ctx.figure_path("c3_rectification.png")
    fig.savefig(path, dpi=110)
    return path


def training_figure(ctx: Context, results: list[dict]):
    fig = Figure(figsize=(12, 7.5), layout="constrained")
    (a, b), (c, d) = fig.subplots(2, 2)
    for v in VARIANTS:
        runs = [r for r in results if r["run"]["variant"] == v]
        def mean(key, runs=runs):
            return np.mean([r[key] for r in runs], axis=0)

        loss = mean("loss")
        smooth = np.convolve(loss, np.ones(10) / 10, mode="valid") if len(loss) >= 10 else loss
        a.plot(np.arange(len(smooth)) + len(loss) - len(smooth) + 1, smooth, color=COLORS[v], label=LABELS[v])
        jitter = np.linspace(-0.08, 0.08, len(runs)) if len(runs) > 1 else [0.0]
        b.scatter(VARIANTS.index(v) + np.asarray(jitter), [r["final_val_loss"] for r in runs], color=COLORS[v])
        tracked = np.arange(1, len(runs[0]["update_ratio"]) + 1)
        c.semilogy(tracked, mean("update_ratio"), color=COLORS[v], label=LABELS[v])
        d.semilogy(tracked, mean("sqrt_vhat_median"), color=COLORS[v], label=LABELS[v])
    a.set(xlabel="step", ylabel="train loss (10-step mean)", title="Training loss, mean over seeds")
    b.set_xticks(range(len(VARIANTS)), [LABELS[v] for v in VARIANTS], fontsize=8)
    b.set(ylabel="validation loss (nats/char)", title="Final validation loss, one dot per seed")
    c.set(xlabel="step", ylabel="||update|| / ||weights||", title="Relative update size, first steps")
    d.set(xlabel="step", ylabel="median sqrt(vhat)", title="Gradient scale Adam divides by (median coordinate)")
    for ax in (a, b, c, d):
        ax.grid(alpha=0.3)
    for ax in (a, c, d):
        ax.legend(fontsize=8)
    path = ctx.figure_path("c3_training.png")
    fig.savefig(path, dpi=110)
    return path


def tables(m: dict) -> list[dict]:
    theory = [[f"rho_{t}", f"{x:.4f}"] for t, x in zip(RHO_STEPS, m["rho_t"])]
    theory += [[f"r_{t}", f"{x:.4f}"] for t, x in m["r_t"].items()]
    theory += [[f"Var adaptive lr, t = {t} (MC / chi-square)", f"{x:.3g} / {m['variance_scaled_inv_chi2'][t]:.3g}"]
               for t, x in m["variance_monte_carlo"].items()]
    theory += [[f"update RMS / lr, t = {t}", f"{x:.3f}"] for t, x in m["update_rms"].items()]
    theory += [["asymptote sqrt((1-b1)/(1+b1))", f"{m['update_rms_asymptote']:.4f}"]]
    theory += [[f"warmup period, {k}", f"{m['warmup_period_' + k]:.1f}"]
               for k in ("untuned", "exponential", "radam", "radam_all_steps")]
    lm = [[LABELS[v], ", ".join(f"{x:.3f}" for x in m["val_loss"][v]), f"{m['val_loss_mean'][v]:.3f}",
           f"{m['update_ratio_first20'][v]:.4f}"] for v in VARIANTS]
    return [
        {"caption": f"RAdam and Adam statistics, beta2 = {THEORY_BETAS[1]}", "columns": ["quantity", "value"],
         "rows": theory},
        {"caption": "Transformer: validation loss after training",
         "columns": ["variant", "per seed", "mean", "mean ||update||/||w||, steps 1-20"], "rows": lm},
    ]


def notes(m: dict, quick: bool) -> str:
    r, g = m["update_ratio_first20"], m["sqrt_vhat_median_end_of_tracking"]
    text = (
        f"Without warmup the first 20 updates change the weights by {r['none']:.1%} of their norm per step "
        f"on average, against {r['untuned']:.2%} under the untuned rule and {r['radam']:.2%} for RAdam. "
        f"Afterwards its gradients stay small: the median sqrt(vhat) after the first tracked steps is "
        f"{g['none']:.2g} without warmup against {g['untuned']:.2g} with the untuned rule. "
        f"Validation loss without warmup is higher by {m['gap_untuned']:.2f} nats than with the untuned rule "
        f"and by {m['gap_linear']:.2f} than with linear warmup; RAdam's gain is {m['gap_radam']:.2f}. "
        f"RAdam's implied warmup lasts {m['warmup_period_radam']:.1f} steps at beta2 = {THEORY_BETAS[1]} "
        f"(counted from the first step with rho_t > 4; {m['warmup_period_radam_all_steps']:.1f} counting every "
        f"step), "
        f"the untuned rule's {m['warmup_period_untuned']:.1f}."
    )
    if quick:
        text += " Quick mode trains for 40 steps with one seed: too short to test the claim."
    return text


def judge(m: dict) -> bool | None:
    if m.get("lm_steps", 400) < 400:  # --quick trains 40 steps: too short for warmup to matter
        return None
    return (
        m["gap_untuned"] >= UNTUNED_GAP_MIN
        and bool(m["untuned_all_below_none"])
        and m["gap_linear"] >= LINEAR_GAP_MIN
        and m["gap_radam"] > RADAM_GAP_MIN
        and abs(m["warmup_period_ratio"] - 1) <= PERIOD_TOL
    )


CLAIM = Claim(
    id="C3",
    title="Warmup steadies Adam's early steps; RAdam and the untuned rule explain how long",
    citation="Liu et al. 2020 (RAdam, ICLR); Ma & Yarats 2021 (untuned warmup, AAAI)",
    statement=(
        "In its first steps Adam divides by a second-moment estimate built from a handful of gradients, so its "
        "adaptive lr has a large (at t <= 2 unbounded) variance and each coordinate moves by about a full lr. "
        "Warming the lr up covers this period. RAdam scales the step by a rectifier r_t that shrinks this variance "
        "to its long-run level, which amounts to a warmup of about 1/(1-beta2) steps, as long as the untuned rule "
        "of Ma & Yarats (linear over 2/(1-beta2) steps)."
    ),
    setup=(
        "Closed forms at beta2 = 0.999 via adamlab.math (rho_t, r_t, the scaled-inverse-chi-square variance) and "
        "adamlab.schedules (effective warmup periods). Monte Carlo: adamlab.Adam (betas 0.9, 0.999) on 100k "
        "coordinates with i.i.d. N(0,1) gradients for 1000 steps. Training: a 2-layer pre-LN decoder-only "
        "transformer (d_model 64, 4 heads, MLP 4x, context 64, batch 16, init N(0, 0.02), biases 0) on "
        "character-level text from the docstrings of Python's standard library (~600k ASCII characters, 96 "
        "symbols, 90/10 train/validation split; shipped compressed with the package, built once with "
        "inspect.getdoc, so the text does not change with the Python version). adamlab.Adam at lr 1e-2, betas "
        "(0.9, 0.99), 400 steps, cosine decay to 0 after: no warmup, linear warmup over 100 steps, the untuned "
        "rule's 200 = 2/(1-0.99) steps, or adamlab.RAdam with no warmup. Three seeds; each seed fixes the init "
        "and data order for all four variants. Validation loss on 256 fixed windows. Runs go to 2 worker "
        "processes of 1 thread each. Quick mode: Monte Carlo on 20k coordinates for 200 steps; 40 training "
        "steps, one seed, warmups scaled to the run, in this process: a smoke test, too short to judge the claim."
    ),
    criterion=(
        f"Mean validation loss without warmup minus with the untuned rule >= {UNTUNED_GAP_MIN}, and every "
        f"untuned seed below every no-warmup seed; linear warmup improves the mean by >= {LINEAR_GAP_MIN}; "
        f"RAdam improves the mean; RAdam's implied warmup period within {PERIOD_TOL:.0%} of the untuned rule's."
    ),
    run=run,
    judge=judge,
)
