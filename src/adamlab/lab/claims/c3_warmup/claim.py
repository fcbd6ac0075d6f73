"""C3: warmup steadies Adam's first steps; RAdam and the untuned rule say for how long.

Closed forms of RAdam's rho_t and r_t, a Monte Carlo of adaptive-lr variance and
update size run through adamlab.Adam, the effective warmup periods of the untuned
rule and of RAdam, and a small transformer trained with and without warmup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

import adamlab
from adamlab import math as M
from adamlab.schedules import exponential_warmup, linear_warmup, untuned_warmup_steps

from ...framework import figures
from ...framework.claim import Claim, Context, Outcome, Part
from ...framework.workers import Workers, one_thread
from . import monitoring
from .transformer import LMRun, train_lm

THEORY_BETAS = (0.9, 0.999)
RHO_STEPS, R_STEPS = (1, 2, 3, 4, 5, 6), (5, 6, 10, 100, 1000, 10000)
VAR_STEPS, RMS_STEPS = (3, 10, 100, 1000), (1, 5, 10, 100)
# RAdam rectifies when rho_t > 5, as adamlab.RAdam and torch do (Liu et al. wrote 4); everything here uses 5
RECT_THRESHOLD = adamlab.RAdam([torch.zeros(1)]).defaults["rect_threshold"]
LM_LR, LM_BETA2, LINEAR_WARMUP = 1e-2, 0.99, 100
VARIANTS = ("none", "linear", "untuned", "radam")
UNTUNED_GAP_MIN, LINEAR_GAP_MIN, RADAM_GAP_MIN, PERIOD_TOL = 0.2, 0.15, 0.0, 0.05


def labels() -> dict[str, str]:
    return {"none": "no warmup", "linear": f"linear warmup {LINEAR_WARMUP}",
            "untuned": f"untuned rule ({untuned_warmup_steps(LM_BETA2)})", "radam": "RAdam"}


@dataclass(frozen=True)
class Settings:
    mc_coords: int  # Monte Carlo coordinates
    mc_steps: int
    lm_steps: int  # transformer training steps (warmups scale with them)
    lm_seeds: int
    val_windows: int
    workers: int  # 1: in this process (sparing the workers' start-up)


FULL = Settings(mc_coords=100_000, mc_steps=1000, lm_steps=400, lm_seeds=3, val_windows=256, workers=2)
QUICK = Settings(mc_coords=20_000, mc_steps=200, lm_steps=40, lm_seeds=1, val_windows=64, workers=1)


# ---------------------------------------------------------------- closed forms


def warmup_period(multiplier, horizon: int) -> float:
    """T(omega) = sum_t (1 - omega_t) (Ma & Yarats 2021), summed until omega has settled at 1."""
    return float(sum(1.0 - multiplier(t) for t in range(1, horizon + 1)))


def radam_omega(beta2: float, threshold: float = RECT_THRESHOLD):
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
        "rect_threshold": RECT_THRESHOLD,
        "first_rectified_step": first,
        "r_t": {str(t): M.radam_rectification(beta2, t) for t in R_STEPS},
        "variance_scaled_inv_chi2": {str(t): scaled_inv_chi2_variance(M.radam_rho(beta2, t)) for t in VAR_STEPS},
        "warmup_period_untuned": warmup_period(lambda t: untuned(t - 1), horizon),
        "warmup_period_exponential": warmup_period(lambda t: exponential(t - 1), horizon),
        # counted from the first rectified step, where r_t starts scaling Adam's step
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


def lm_runs(settings: Settings, seed: int) -> list[LMRun]:
    warm = {"none": 0, "linear": LINEAR_WARMUP, "untuned": untuned_warmup_steps(LM_BETA2), "radam": 0}
    scale = settings.lm_steps / FULL.lm_steps  # quick runs keep the schedules' shapes, scaled to the run
    return [
        LMRun(v, seed + i, steps=settings.lm_steps, warmup=round(warm[v] * scale), lr=LM_LR, betas=(0.9, LM_BETA2),
              val_windows=settings.val_windows)
        for i in range(settings.lm_seeds)
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
    settings = ctx.pick(FULL, QUICK)
    forms = closed_forms(THEORY_BETAS[1])
    advance = ctx.progress("C3 Monte Carlo of Adam's adaptive lr", 1)
    with one_thread():
        mc = adam_monte_carlo(settings.mc_coords, settings.mc_steps, ctx.seed)
    advance()
    runs = monitoring.watch_first_seed(lm_runs(settings, ctx.seed))
    advance = ctx.progress(f"C3 transformer, {len(runs)} runs", len(runs))
    with Workers(settings.workers) as workers:
        results = workers.map(train_lm, runs, advance)
    metrics = {
        **forms,
        "variance_monte_carlo": {str(t): v for t, v in zip(mc["t"], mc["variance"]) if t in VAR_STEPS},
        "update_rms": {str(t): v for t, v in zip(mc["t"], mc["rms"]) if t in RMS_STEPS},
        "warmup_period_ratio": forms["warmup_period_radam"] / forms["warmup_period_untuned"],
        "lm_steps": settings.lm_steps,
        "lm_seeds": sorted({r.seed for r in runs}),
        **summarise(results),
    }
    metrics["monitor"] = monitoring.metrics(results)
    figs = [theory_figure(ctx, mc), training_figure(ctx, results), monitoring.figure(ctx, results, labels())]
    page_tables = [*tables(metrics), monitoring.table(metrics["monitor"], labels())]
    return Outcome(metrics, figs, page_tables, f"{notes(metrics)} {monitoring.note(metrics['monitor'])}")


# ---------------------------------------------------------------- report


def theory_figure(ctx: Context, mc: dict) -> figures.FigureRef:
    fig, (a, b, c) = figures.new(14, 4.4, 1, 3)
    beta2, t = THEORY_BETAS[1], np.arange(1, 6001)
    r = [M.radam_rectification(beta2, int(s)) if M.radam_rho(beta2, int(s)) > RECT_THRESHOLD else 0.0 for s in t]
    a.plot(t, r, **figures.line_style(3), label=f"RAdam r_t (0 until rho_t > {RECT_THRESHOLD:g})")
    a.plot(t, np.minimum(1, t * (1 - beta2) / 2), **figures.line_style(2), label="untuned linear, 2/(1-b2) steps")
    a.plot(t, 1 - np.exp(-(1 - beta2) * t), **figures.line_style(4), label="untuned exponential")
    a.set(xscale="log", xlabel="step t", ylabel="multiplier of the lr", title=f"Warmup multipliers, beta2 = {beta2}")
    steps, later = np.array(mc["t"]), np.array(mc["t"]) >= 3
    b.loglog(steps[later], np.array(mc["variance"])[later], color="black", marker="o", ms=3,
             label="Monte Carlo, adamlab.Adam")
    chi2 = [scaled_inv_chi2_variance(M.radam_rho(beta2, int(s))) for s in steps[later]]
    b.loglog(steps[later], chi2, "--", color="tab:orange", label="scaled inv. chi-square (Liu et al.)")
    b.set(xlabel="step t", ylabel="Var[sqrt((1-b2^t)/v_t)]", title="Variance of the adaptive lr (t >= 3)")
    c.semilogx(steps, mc["rms"], color="black", marker="o", ms=3, label="RMS of mhat/sqrt(vhat)")
    c.axhline(math.sqrt((1 - THEORY_BETAS[0]) / (1 + THEORY_BETAS[0])), ls="--", color="tab:orange",
              label="sqrt((1-b1)/(1+b1))")
    c.set(xlabel="step t", ylabel="update RMS / lr", title="Adam update size, i.i.d. N(0,1) gradients")
    for ax in (a, b, c):
        ax.grid(alpha=0.3)
    figures.legend_below(fig, ncols=4)
    return figures.save(
        ctx, fig, "c3_rectification.png",
        "Left: RAdam's rectifier and the untuned warmup rules as lr multipliers; the rectifier and the linear "
        "rule reach 1 on the same time scale. Middle and right: in Adam's first steps the adaptive lr varies "
        "wildly and each coordinate moves by about a full lr, settling after some hundred steps.",
        "Three panels: warmup multipliers rising from 0 to 1 on a log step axis; the adaptive lr's variance "
        "falling by three orders of magnitude, with the chi-square prediction on top; the update size falling "
        "from 1 to its asymptote near 0.23.",
    )


def training_figure(ctx: Context, results: list[dict]) -> figures.FigureRef:
    fig, ((a, b), (c, d)) = figures.new(12, 8, 2, 2)
    names = labels()
    for k, v in enumerate(VARIANTS):
        runs = [r for r in results if r["run"]["variant"] == v]
        look = figures.line_style(k)

        def mean(key, runs=runs):
            return np.mean([r[key] for r in runs], axis=0)

        loss = mean("loss")
        smooth = np.convolve(loss, np.ones(10) / 10, mode="valid") if len(loss) >= 10 else loss
        a.plot(np.arange(len(smooth)) + len(loss) - len(smooth) + 1, smooth, **look, label=names[v])
        jitter = np.linspace(-0.08, 0.08, len(runs)) if len(runs) > 1 else [0.0]
        b.scatter(k + np.asarray(jitter), [r["final_val_loss"] for r in runs], color=look["color"],
                  marker=figures.MARKERS[k])
        tracked = np.arange(1, len(runs[0]["update_ratio"]) + 1)
        c.semilogy(tracked, mean("update_ratio"), **look)
        d.semilogy(tracked, mean("sqrt_vhat_median"), **look)
    a.set(xlabel="step", ylabel="train loss (10-step mean)", title="Training loss, mean over seeds")
    b.set_xticks(range(len(VARIANTS)), [names[v] for v in VARIANTS], fontsize=8)
    b.set(ylabel="validation loss (nats/char)", title="Final validation loss, one dot per seed")
    c.set(xlabel="step", ylabel="||update|| / ||weights||", title="Relative update size, first steps")
    d.set(xlabel="step", ylabel="median sqrt(vhat)", title="Gradient scale Adam divides by (median coordinate)")
    for ax in (a, b, c, d):
        ax.grid(alpha=0.3)
    figures.legend_below(fig, (a,), ncols=4)
    return figures.save(
        ctx, fig, "c3_training.png",
        f"The transformer at lr {LM_LR:g} with and without warmup. Without warmup (blue) the first updates change "
        "the weights by far more than with warmup (bottom left), and the run ends with a clearly higher "
        "validation loss (top right).",
        "Four panels: training-loss curves per variant, final validation loss as dots per seed, the relative "
        "update size and the median gradient scale over the first hundred steps, on log axes.",
    )


def tables(m: dict) -> list[dict]:
    theory = [[f"rho_{t}", f"{x:.4f}"] for t, x in zip(RHO_STEPS, m["rho_t"])]
    theory += [[f"r_{t}", f"{x:.4f}"] for t, x in m["r_t"].items()]
    theory += [[f"Var adaptive lr, t = {t} (MC / chi-square)", f"{x:.3g} / {m['variance_scaled_inv_chi2'][t]:.3g}"]
               for t, x in m["variance_monte_carlo"].items()]
    theory += [[f"update RMS / lr, t = {t}", f"{x:.3f}"] for t, x in m["update_rms"].items()]
    theory += [["asymptote sqrt((1-b1)/(1+b1))", f"{m['update_rms_asymptote']:.4f}"]]
    theory += [[f"warmup period, {k}", f"{m['warmup_period_' + k]:.1f}"]
               for k in ("untuned", "exponential", "radam", "radam_all_steps")]
    names = labels()
    lm = [[names[v], ", ".join(f"{x:.3f}" for x in m["val_loss"][v]), f"{m['val_loss_mean'][v]:.3f}",
           f"{m['update_ratio_first20'][v]:.4f}"] for v in VARIANTS]
    return [
        {"caption": f"RAdam and Adam statistics, beta2 = {THEORY_BETAS[1]}; RAdam rectifies when rho_t > "
                    f"{RECT_THRESHOLD:g} (from t = {m['first_rectified_step']})",
         "columns": ["quantity", "value"], "rows": theory},
        {"caption": "Transformer: validation loss after training",
         "columns": ["variant", "per seed", "mean", "mean ||update||/||w||, steps 1-20"], "rows": lm},
    ]


def notes(m: dict) -> str:
    r, g = m["update_ratio_first20"], m["sqrt_vhat_median_end_of_tracking"]
    return (
        f"Without warmup the first 20 updates change the weights by {r['none']:.1%} of their norm per step on "
        f"average, against {r['untuned']:.2%} under the untuned rule and {r['radam']:.2%} for RAdam; afterwards the "
        f"median sqrt(vhat) is {g['none']:.2g} without warmup against {g['untuned']:.2g} with the untuned rule. "
        f"RAdam's implied warmup lasts {m['warmup_period_radam']:.1f} steps at beta2 = {THEORY_BETAS[1]}, counted "
        f"from its first rectified step (rho_t > {RECT_THRESHOLD:g}); {m['warmup_period_radam_all_steps']:.1f} "
        "counting every step."
    )


def judge_periods(m: dict) -> bool:
    return abs(m["warmup_period_ratio"] - 1) <= PERIOD_TOL


def judge_training(m: dict):
    if m["lm_steps"] < FULL.lm_steps:  # too short for warmup to matter
        return None
    return (
        m["gap_untuned"] >= UNTUNED_GAP_MIN
        and bool(m["untuned_all_below_none"])
        and m["gap_linear"] >= LINEAR_GAP_MIN
        and m["gap_radam"] > RADAM_GAP_MIN
    )


def headline_periods(m: dict) -> str:
    return (f"RAdam's implied warmup is {m['warmup_period_radam']:.1f} steps at beta2 = {THEORY_BETAS[1]}, the "
            f"untuned rule's {m['warmup_period_untuned']:.1f} (ratio {m['warmup_period_ratio']:.3f}).")


def headline_training(m: dict) -> str:
    mean = m["val_loss_mean"]
    text = (f"Mean validation loss: {mean['none']:.2f} without warmup, {mean['untuned']:.2f} with the untuned rule, "
            f"{mean['linear']:.2f} with linear warmup, {mean['radam']:.2f} with RAdam.")
    if m["lm_steps"] < FULL.lm_steps:
        text += f" {m['lm_steps']} steps are too short for warmup to matter."
    elif m["gap_radam"] <= 0:
        text += " RAdam did worse than no warmup."
    return text


PARTS = (
    Part("periods", "RAdam's warmup is as long as the untuned rule's",
         f"RAdam's implied warmup period (from its first rectified step) within {PERIOD_TOL:.0%} of the untuned "
         "rule's.", judge_periods, headline_periods),
    Part("training", "Warmup makes a high lr usable on a transformer",
         f"Mean validation loss without warmup minus with the untuned rule >= {UNTUNED_GAP_MIN}, and every untuned "
         f"seed below every no-warmup seed; linear warmup improves the mean by >= {LINEAR_GAP_MIN}; RAdam improves "
         f"the mean. Needs the full {FULL.lm_steps} steps.", judge_training, headline_training),
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
        f"Closed forms at beta2 = {THEORY_BETAS[1]} (rho_t, r_t with rectification when rho_t > "
        f"{RECT_THRESHOLD:g}, the scaled-inverse-chi-square variance, effective warmup periods). Monte Carlo: "
        f"adamlab.Adam (betas {THEORY_BETAS}) on {FULL.mc_coords:,} coordinates of i.i.d. N(0,1) gradients for "
        f"{FULL.mc_steps} steps. Training: a 2-layer pre-LN decoder-only transformer (d_model 64, 4 heads, "
        "context 64, batch 16) on character-level text from the docstrings of Python's standard library (about "
        f"600k characters, shipped with the package, 90/10 split); adamlab.Adam at lr {LM_LR:g}, betas (0.9, "
        f"{LM_BETA2}), {FULL.lm_steps} steps of cosine decay after: no warmup, linear warmup over {LINEAR_WARMUP} "
        f"steps, the untuned rule's {untuned_warmup_steps(LM_BETA2)} = 2/(1-{LM_BETA2}) steps, or adamlab.RAdam; "
        f"{FULL.lm_seeds} seeds, each fixing init and data order for all four; validation loss on "
        f"{FULL.val_windows} fixed windows. adamlab.Monitor on the first {monitoring.MONITOR_STEPS} steps of the "
        "first seed's four runs."
    ),
    quick_setup=(f"Monte Carlo on {QUICK.mc_coords:,} coordinates for {QUICK.mc_steps} steps; {QUICK.lm_steps} "
                 f"training steps, {QUICK.lm_seeds} seed, warmups scaled to the run: too short to judge training."),
    parts=PARTS,
    run=run,
)
