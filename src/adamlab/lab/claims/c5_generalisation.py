"""C5: adaptive methods can generalise worse than SGD.

The verdict comes from Wilson et al.'s constructed least-squares problem, where
the answer is known in closed form. A small CNN on real digit images is then
reported as measured: Adam against SGD with momentum, learning rates picked on
a validation split.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats

import adamlab

from ..core import Claim, Context, Outcome
from ..data_digits import TEST_SIZE
from ..data_wilson import constructed_problem, fresh_labels, predict_fresh
from ..models_cnn import CNNRun, train_cnn
from ..workers import Workers, one_thread

N_TRAIN, P_POS, N_FRESH = 100, 0.6, 100_000
STEPS_FULL, STEPS_QUICK = 3000, 1000
ADAPTIVE = ("adam", "rmsprop", "adagrad")
LABELS = {"gd": "GD", "sgd": "SGD (batch 10)", "heavy_ball": "heavy ball (0.9)", "adam": "Adam (1e-2)",
          "rmsprop": "RMSprop (1e-3)", "adagrad": "AdaGrad (0.1, torch.optim)"}
ADAPTIVE_TOL = 0.01
# the CNN study: lr sweeps (chosen on validation), seeds for the sweep and extra seeds at the chosen lr
CNN_LRS = {"sgd": (0.03, 0.1, 0.3), "adam": (1e-3, 3e-3, 1e-2)}
CNN_LRS_QUICK = {"sgd": (0.1,), "adam": (1e-2,)}
CNN_NAMES = {"sgd": "SGD, momentum 0.9", "adam": "Adam"}


# ---------------------------------------------------------------- the constructed example


def optimizers(lr_gd: float) -> dict:
    """How each method is built; GD-family lrs are 1/lambda_max of the Hessian 2 X^T X (larger diverges)."""
    return {
        "gd": lambda p: adamlab.SGD(p, lr=lr_gd),
        "sgd": lambda p: adamlab.SGD(p, lr=lr_gd),
        "heavy_ball": lambda p: adamlab.SGD(p, lr=lr_gd, momentum=0.9),
        "adam": lambda p: adamlab.Adam(p, lr=1e-2),
        "rmsprop": lambda p: adamlab.RMSprop(p, lr=1e-3),
        "adagrad": lambda p: torch.optim.Adagrad(p, lr=0.1),  # labelled comparison: adamlab has no AdaGrad
    }


def constructed_example(steps: int, seed: int) -> tuple[dict, dict]:
    gen = torch.Generator().manual_seed(seed)
    X, y = constructed_problem(N_TRAIN, P_POS, gen)
    y_new = fresh_labels(N_FRESH, P_POS, gen)
    min_norm = torch.linalg.pinv(X) @ y
    sign_dir = torch.sign(X.T @ y)
    lr_gd = 1.0 / torch.linalg.eigvalsh(2 * X @ X.T).max().item()
    cos = lambda a, b: (a @ b / (a.norm() * b.norm() + 1e-300)).item()
    record = sorted({int(t) for t in np.geomspace(1, steps, 40).round()})
    metrics, curves = {}, {}
    for name, make in optimizers(lr_gd).items():
        w = torch.zeros(X.shape[1], dtype=torch.float64)
        opt = make([w])
        order = torch.Generator().manual_seed(seed + 1)
        curves[name] = {"t": [], "cos_sign": []}
        for t in range(1, steps + 1):
            rows = torch.randperm(N_TRAIN, generator=order)[:10] if name == "sgd" else slice(None)
            Xb, yb = X[rows], y[rows]
            w.grad = 2 * Xb.T @ (Xb @ w - yb)  # gradient of ||Xw - y||^2 on the batch
            opt.step()
            if t in record:
                curves[name]["t"].append(t)
                curves[name]["cos_sign"].append(cos(w, sign_dir))
        metrics[name] = {
            "train_error": (torch.where(X @ w > 0, 1.0, -1.0) != y).double().mean().item(),
            "test_error": (predict_fresh(w, y_new) != y_new).double().mean().item(),
            "cos_sign_direction": cos(w, sign_dir),
            "relative_distance_to_min_norm": ((w - min_norm).norm() / min_norm.norm()).item(),
            "max_abs_diff_to_sign_over_4": (w - sign_dir / 4).abs().max().item(),
        }
    shared = {"p": P_POS, "n_train": N_TRAIN, "n_fresh": N_FRESH, "steps": steps, "lr_gd": lr_gd,
              "fresh_negative_fraction": (y_new < 0).double().mean().item()}
    return {"constructed": metrics, "constructed_setup": shared}, curves


# ---------------------------------------------------------------- the CNN on digits


def cnn_study(quick: bool, seed: int, progress) -> dict:
    lrs = CNN_LRS_QUICK if quick else CNN_LRS
    epochs = 10 if quick else 30
    sweep_seeds = [seed] if quick else [seed + i for i in range(3)]
    extra_seeds = [] if quick else [seed + 3 + i for i in range(3)]
    sweep_runs = [CNNRun(kind, lr, s, epochs) for kind, values in lrs.items() for lr in values for s in sweep_seeds]
    total = len(sweep_runs) + 2 * len(extra_seeds)
    advance = progress(f"C5 CNN on digits, {total} runs", total)
    with Workers(1 if quick else 2) as workers:
        sweep = dict(zip(sweep_runs, workers.map(train_cnn, sweep_runs, advance)))
        val = lambda kind, lr: [sweep[CNNRun(kind, lr, s, epochs)]["val"] for s in sweep_seeds]
        chosen = {kind: max(values, key=lambda lr: np.mean(val(kind, lr))) for kind, values in lrs.items()}
        extra_runs = [CNNRun(kind, chosen[kind], s, epochs) for kind in lrs for s in extra_seeds]
        extra = dict(zip(extra_runs, workers.map(train_cnn, extra_runs, advance)))
    results = {**sweep, **extra}
    seeds = sweep_seeds + extra_seeds
    final = {kind: [results[CNNRun(kind, chosen[kind], s, epochs)] for s in seeds] for kind in lrs}
    out = {
        "epochs": epochs,
        "sweep": {kind: {str(lr): val(kind, lr) for lr in values} for kind, values in lrs.items()},
        "chosen_lr": chosen,
        "seeds": seeds,
        "test_accuracy": {kind: [r["test"] for r in runs] for kind, runs in final.items()},
        "train_accuracy": {kind: [r["train"] for r in runs] for kind, runs in final.items()},
    }
    out.update(paired_gap(out["test_accuracy"]["sgd"], out["test_accuracy"]["adam"], TEST_SIZE))
    return out


def paired_gap(sgd: list[float], adam: list[float], test_size: int) -> dict:
    """Mean and spread of the per-seed differences SGD - Adam, and whether the gap is significant.

    Significant: the 95% t-interval of the paired differences excludes 0 and
    the gap exceeds one test image.
    """
    diffs = np.array(sgd) - np.array(adam)
    gap = float(diffs.mean())
    if len(diffs) < 2:
        return {"gap_sgd_minus_adam": gap, "gap_std": 0.0, "gap_ci95": None, "gap_significant": False,
                "test_size": test_size}
    spread = float(diffs.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(diffs) - 1)) * spread / np.sqrt(len(diffs))
    return {
        "gap_sgd_minus_adam": gap,
        "gap_std": spread,
        "gap_ci95": [gap - half, gap + half],
        "gap_significant": bool(abs(gap) > max(half, 1 / test_size)),
        "test_size": test_size,
    }


# ---------------------------------------------------------------- the claim


def run(ctx: Context) -> Outcome:
    steps = STEPS_QUICK if ctx.quick else STEPS_FULL
    advance = ctx.progress("C5 constructed example, 6 methods", 1)
    with one_thread():
        metrics, curves = constructed_example(steps, ctx.seed)
        advance()
        metrics["cnn"] = cnn_study(ctx.quick, ctx.seed, ctx.progress)
    figures = [constructed_figure(ctx, metrics, curves), cnn_figure(ctx, metrics["cnn"])]
    return Outcome(metrics, figures, tables(metrics), notes(metrics))


def constructed_figure(ctx: Context, m: dict, curves: dict):
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    a, b = fig.subplots(1, 2)
    names = list(LABELS)
    colors = ["tab:blue" if n not in ADAPTIVE else "tab:red" for n in names]
    errors = [m["constructed"][n]["test_error"] for n in names]
    a.bar(range(len(names)), errors, color=colors)
    for i, e in enumerate(errors):
        a.text(i, e + 0.01, f"{e:.3f}", ha="center", fontsize=8)
    a.axhline(1 - P_POS, ls="--", color="black", label=f"1 - p = {1 - P_POS:.1f} (always predicting +1)")
    a.set_xticks(range(len(names)), [LABELS[n] for n in names], rotation=20, ha="right", fontsize=8)
    a.set(ylabel=f"test error on {N_FRESH:,} fresh points", ylim=(0, 0.6),
          title="Constructed problem: GD family (blue) vs adaptive (red)")
    for n, color in zip(names, colors):
        style = "-" if n in ADAPTIVE else "--"
        b.semilogx(curves[n]["t"], curves[n]["cos_sign"], style, color=color, alpha=0.8, label=LABELS[n])
    b.set(xlabel="step", ylabel="cos(w, sign(X^T y))", ylim=(0, 1.05),
          title="Direction of w: adaptive methods align with sign(X^T y)")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    path = ctx.figure_path("c5_constructed.png")
    fig.savefig(path, dpi=110)
    return path


def cnn_figure(ctx: Context, cnn: dict):
    fig = Figure(figsize=(12, 4.2), layout="constrained")
    a, b = fig.subplots(1, 2)
    means = [100 * np.mean(v) for kind in cnn["sweep"] for v in cnn["sweep"][kind].values()]
    floor = max(0.0, min([x for x in means if x > 50] or [0.0]) - 3)  # a diverged run would flatten the rest
    for i, (kind, color) in enumerate((("sgd", "tab:blue"), ("adam", "tab:red"))):
        lrs = [float(x) for x in cnn["sweep"][kind]]
        vals = [np.array(v) * 100 for v in cnn["sweep"][kind].values()]
        shown = [max(v.mean(), floor) for v in vals]
        a.errorbar(lrs, shown, yerr=[v.std() for v in vals], marker="o", capsize=3,
                   color=color, label=f"{CNN_NAMES[kind]} (chosen lr {cnn['chosen_lr'][kind]:g})")
        for lr, v in zip(lrs, vals):
            if v.mean() < floor:
                a.annotate(f"{v.mean():.0f}% (chance level)", (lr, floor), textcoords="offset points", xytext=(-30, 8),
                           fontsize=8, color=color)
        test = np.array(cnn["test_accuracy"][kind]) * 100
        b.scatter(np.full(len(test), i) + np.linspace(-0.1, 0.1, len(test)), test, color=color)
        b.errorbar([i + 0.25], [test.mean()], yerr=[test.std(ddof=1) if len(test) > 1 else 0], fmt="s",
                   color=color, capsize=4, label="mean +- sd" if i == 0 else None)
    a.set(xscale="log", xlabel="learning rate", ylabel="validation accuracy (%)", ylim=(floor - 0.5, 100.5),
          title=f"Digits CNN: lr sweep on validation ({cnn['epochs']} epochs)")
    b.set_xticks([0, 1], [f"{CNN_NAMES['sgd']}", "Adam"])
    b.set(ylabel="test accuracy (%)", xlim=(-0.5, 1.5),
          title=f"Test accuracy at the chosen lr (dot = seed, 1 image = {100 / cnn['test_size']:.1f} pt)")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.grid(alpha=0.3)
    a.legend(fontsize=8)
    path = ctx.figure_path("c5_digits.png")
    fig.savefig(path, dpi=110)
    return path


def tables(m: dict) -> list[dict]:
    rows = [[LABELS[n], f"{r['train_error']:.3f}", f"{r['test_error']:.4f}", f"{r['cos_sign_direction']:.5f}",
             f"{r['relative_distance_to_min_norm']:.2g}", f"{r['max_abs_diff_to_sign_over_4']:.2g}"]
            for n, r in m["constructed"].items()]
    cnn = m["cnn"]
    cnn_rows = []
    for kind in ("sgd", "adam"):
        for lr, val in cnn["sweep"][kind].items():
            chosen = float(lr) == cnn["chosen_lr"][kind]
            test = np.array(cnn["test_accuracy"][kind]) * 100 if chosen else None
            cnn_rows.append([CNN_NAMES[kind], lr, f"{np.mean(val) * 100:.2f} +- {np.std(val) * 100:.2f}",
                             f"{test.mean():.2f} +- {test.std():.2f} ({len(test)} seeds)" if chosen else "-"])
    return [
        {"caption": f"Constructed problem (n = {N_TRAIN}, p = {P_POS}), {m['constructed_setup']['steps']} steps",
         "columns": ["method", "train error", "test error", "cos(w, sign(X^T y))", "||w - w_min_norm|| / ||w_min_norm||",
                     "max |w - sign(X^T y)/4|"],
         "rows": rows},
        {"caption": "Digits CNN: validation accuracy per lr (%), test accuracy only at the lr chosen on validation",
         "columns": ["optimizer", "lr", "validation", "test"], "rows": cnn_rows},
    ]


def notes(m: dict) -> str:
    c, cnn = m["constructed"], m["cnn"]
    gap = cnn["gap_sgd_minus_adam"] * 100
    text = (
        f"On the constructed problem every method fits the training labels; GD ends at the minimum-norm solution "
        f"(relative distance {c['gd']['relative_distance_to_min_norm']:.1g}) with test error "
        f"{c['gd']['test_error']:.3f}, while Adam, RMSprop and AdaGrad align with sign(X^T y) (cos >= "
        f"{min(c[n]['cos_sign_direction'] for n in ADAPTIVE):.4f}) and err on {c['adam']['test_error']:.1%} of "
        f"fresh points, the share of negatives. Digits CNN: SGD with momentum minus Adam test accuracy = "
        f"{gap:+.2f} points (sd {cnn['gap_std'] * 100:.2f} over {len(cnn['seeds'])} paired seeds; one test image "
        f"is {100 / cnn['test_size']:.1f} points). "
    )
    acc = {k: 100 * np.mean(v) for k, v in cnn["test_accuracy"].items()}
    text += f"Mean test accuracy: SGD {acc['sgd']:.2f}%, Adam {acc['adam']:.2f}%. "
    if len(cnn["seeds"]) < 2:
        text += "With one seed there is no spread, so no gap is called significant."
    elif cnn["gap_significant"]:
        text += "The 95% interval of the paired differences excludes 0: the gap is significant at this scale."
    else:
        text += ("No significant gap: the 95% interval of the paired differences includes 0 or the gap is under "
                 "one test image. This small task neither supports nor refutes the claim about vision models.")
    return text


def judge(m: dict) -> bool:
    c = m["constructed"]
    return (
        all(r["train_error"] == 0 for r in c.values())
        and c["gd"]["test_error"] == 0
        and all(abs(c[n]["test_error"] - (1 - m["constructed_setup"]["p"])) <= ADAPTIVE_TOL for n in ADAPTIVE)
    )


CLAIM = Claim(
    id="C5",
    title="Adaptive methods can generalise worse than SGD",
    citation="Wilson, Roelofs, Stern, Srebro & Recht 2017, The Marginal Value of Adaptive Gradient Methods in "
    "Machine Learning (NeurIPS)",
    statement=(
        "On an over-parameterised problem, the solution an optimizer reaches depends on the optimizer. Wilson et "
        "al. build a least-squares problem where gradient descent finds the minimum-norm interpolant, which "
        "classifies new points perfectly, while Adam, RMSprop and AdaGrad converge to the sign(X^T y) direction, "
        "which labels every new point +1. They also report that SGD with momentum matches or beats Adam on "
        "image classification; the reason for such a gap is still debated, so the lab measures it rather than "
        "assumes it."
    ),
    setup=(
        f"Constructed problem (Wilson et al. sec. 3.3): n = {N_TRAIN} training points, labels +1 with p = "
        f"{P_POS}, features (y, 1, 1) plus 1 private feature per positive and 5 per negative example; minimise "
        f"||Xw - y||^2 from w = 0 for {STEPS_FULL} steps with adamlab.SGD (full batch, lr = 1/lambda_max(2XX^T); "
        f"minibatches of 10; heavy ball 0.9), adamlab.Adam (1e-2), adamlab.RMSprop (1e-3) and "
        f"torch.optim.Adagrad (0.1, a comparison: adamlab has no AdaGrad); test error on {N_FRESH:,} fresh labels. "
        "Digits: scikit-learn's 8x8 digits, stratified 1000 train / 297 validation / 500 test; CNN Conv16-Conv32-"
        "MaxPool-FC64-FC10, batch 64, 30 epochs; adamlab.SGD (momentum 0.9, lr in 0.03/0.1/0.3) and "
        "adamlab.Adam (lr in 1e-3/3e-3/1e-2), the lr chosen by mean validation accuracy over 3 seeds, then 3 "
        "more seeds at the chosen lr; test accuracy reported for those 6 seeds, paired by seed (same init and "
        "batch order). Quick mode: 1000 steps; CNN 10 epochs, one seed, lrs 0.1 and 1e-2."
    ),
    criterion=(
        f"Constructed problem only: train error 0 for every method, GD test error 0, and each adaptive method's "
        f"test error within {ADAPTIVE_TOL} of 1 - p. The CNN result is reported as measured and does not enter "
        f"the verdict."
    ),
    run=run,
    judge=judge,
)
