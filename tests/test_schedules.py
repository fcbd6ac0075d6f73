"""adamlab.schedules against oracles written out here: the peers' formulas, torch's own schedulers, closed forms."""

import ast
import copy
import io
import math
from pathlib import Path

import pytest
import torch
from cases import lrs_seen
from torch.optim.lr_scheduler import CosineAnnealingLR, LambdaLR, LinearLR, SequentialLR

import adamlab
from adamlab import schedules as S

CASES = [(10, 100, 0.0), (10, 100, 0.1), (0, 50, 0.2), (7, 7, 0.0), (1, 30, 0.5)]


# ------------------------------------------------------------- oracles


def hf_cosine_with_warmup(step, warmup, total, num_cycles=0.5):
    """transformers' get_cosine_schedule_with_warmup lambda, as written there."""
    if step < warmup:
        return float(step) / float(max(1, warmup))
    progress = float(step - warmup) / float(max(1, total - warmup))
    return max(0.0, 0.5 * (1.0 + math.cos(math.pi * float(num_cycles) * 2.0 * progress)))


def hf_linear_with_warmup(step, warmup, total):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    return max(0.0, float(total - step) / float(max(1, total - warmup)))


def hf_inverse_sqrt(step, warmup, timescale):
    if step < warmup:
        return float(step) / float(max(1, warmup))
    shift = timescale - warmup
    return 1.0 / math.sqrt((step + shift) / timescale)


def optax_warmup_cosine(count, init, peak, warmup, decay_steps, end):
    """optax.warmup_cosine_decay_schedule: join(linear_schedule, cosine_decay_schedule) at warmup."""
    if count < warmup:
        c = min(max(count, 0), warmup)
        return (init - peak) * (1 - c / warmup) + peak
    count -= warmup
    steps = decay_steps - warmup
    alpha = end / peak
    count = min(count, steps)
    return peak * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * count / steps)) + alpha)


# ---------------------------------------------------------- warmup_cosine


@pytest.mark.parametrize("warmup,total,floor", CASES)
def test_warmup_cosine_is_the_documented_formula(warmup, total, floor):
    f = S.warmup_cosine(warmup, total, floor)
    for s in range(total + 20):
        if s < warmup:
            want = (s + 1) / warmup
        elif s < total:
            want = floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
        else:
            want = floor
        assert f(s) == pytest.approx(want, rel=1e-12, abs=1e-15), s


@pytest.mark.parametrize("warmup", [1, 2, 10, 2000])
def test_first_step_runs_at_lr_over_warmup_never_zero(warmup):
    f = S.warmup_cosine(warmup, 3 * warmup)
    assert f(0) == pytest.approx(1 / warmup)
    assert min(f(s) for s in range(warmup)) > 0


@pytest.mark.parametrize("warmup,total", [(10, 100), (3, 40), (1, 5)])
def test_transformers_cosine_equal_after_warmup_and_one_step_behind_during_it(warmup, total):
    f = S.warmup_cosine(warmup, total)
    assert hf_cosine_with_warmup(0, warmup, total) == 0.0 < f(0)
    for s in range(warmup):
        assert f(s) == pytest.approx(hf_cosine_with_warmup(s + 1, warmup, total), rel=1e-12)
    for s in range(warmup, total + 1):
        assert f(s) == pytest.approx(hf_cosine_with_warmup(s, warmup, total), rel=1e-12, abs=1e-15)
    # past total_steps transformers' cosine climbs again; ours stays at the floor
    assert hf_cosine_with_warmup(total + total // 2, warmup, total) > 0 == f(total + total // 2)


@pytest.mark.parametrize("warmup,total,floor", CASES)
def test_optax_equal_after_warmup_and_one_step_behind_during_it(warmup, total, floor):
    if warmup == total:
        pytest.skip("optax refuses a cosine of 0 steps")
    peak = 3e-4
    f = S.warmup_cosine(warmup, total, floor)
    optax = lambda c: optax_warmup_cosine(c, 0.0, peak, warmup, total, floor * peak)  # noqa: E731
    for s in range(warmup):
        assert peak * f(s) == pytest.approx(optax(s + 1), rel=1e-12)
    for s in range(warmup, total + 10):
        assert peak * f(s) == pytest.approx(optax(s), rel=1e-12, abs=1e-18)


@pytest.mark.parametrize("total,floor", [(50, 0.0), (37, 0.1)])
def test_torch_cosine_annealing_equals_no_warmup(total, floor):
    lr = 0.1
    ours = lrs_seen(lambda o: LambdaLR(o, S.warmup_cosine(0, total, floor)), total + 1, lr)
    torchs = lrs_seen(lambda o: CosineAnnealingLR(o, T_max=total, eta_min=floor * lr), total + 1, lr)
    assert ours == pytest.approx(torchs, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize("warmup,total,floor", [(5, 20, 0.1), (2, 30, 0.0)])
def test_torch_linear_then_cosine_annealing_equals_warmup_cosine(warmup, total, floor):
    lr = 0.1

    def torch_recipe(o):
        ramp = LinearLR(o, start_factor=1 / warmup, end_factor=1.0, total_iters=warmup - 1)
        cosine = CosineAnnealingLR(o, T_max=total - warmup, eta_min=floor * lr)
        return SequentialLR(o, [ramp, cosine], milestones=[warmup])

    ours = lrs_seen(lambda o: LambdaLR(o, S.warmup_cosine(warmup, total, floor)), total + 1, lr)
    assert ours == pytest.approx(lrs_seen(torch_recipe, total + 1, lr), rel=1e-9)


def test_lambdalr_runs_step_k_at_base_lr_times_schedule_of_k():
    f = S.warmup_cosine(4, 12, 0.25)
    model = torch.nn.Linear(2, 1)
    opt = adamlab.AdamW(model.parameters(), lr=2e-3)
    sched = LambdaLR(opt, f)
    for k in range(15):
        assert opt.param_groups[0]["lr"] == pytest.approx(2e-3 * f(k), rel=1e-12)
        model(torch.ones(2)).sum().backward()
        opt.step()
        sched.step()


# ------------------------------------------------------------ other recipes


@pytest.mark.parametrize("warmup,total", [(10, 100), (1, 7)])
def test_warmup_linear_matches_transformers_after_warmup(warmup, total):
    f = S.warmup_linear(warmup, total)
    for s in range(warmup, total + 5):
        assert f(s) == pytest.approx(hf_linear_with_warmup(s, warmup, total), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("warmup,timescale", [(100, None), (10, 40)])
def test_warmup_inverse_sqrt_matches_transformers_after_warmup(warmup, timescale):
    f = S.warmup_inverse_sqrt(warmup, timescale)
    for s in range(warmup, 10 * warmup):
        assert f(s) == pytest.approx(hf_inverse_sqrt(s, warmup, timescale or warmup), rel=1e-12)
    if timescale is None:  # the Transformer's rsqrt, scaled to peak at 1
        assert f(4 * warmup) == pytest.approx(0.5)


@pytest.mark.parametrize("decay,shape", [
    ("linear", lambda p: 1 - p),
    ("cosine", lambda p: 0.5 * (1 + math.cos(math.pi * p))),
    ("1-sqrt", lambda p: 1 - math.sqrt(p)),
])
def test_wsd_phases(decay, shape):
    warmup, total, cooldown, floor = 4, 30, 10, 0.05
    f = S.wsd(warmup, total, cooldown, floor, decay)
    for s in range(total + 5):
        if s < warmup:
            want = (s + 1) / warmup
        elif s < total - cooldown:
            want = 1.0
        elif s < total:
            want = floor + (1 - floor) * shape((s - (total - cooldown)) / cooldown)
        else:
            want = floor
        assert f(s) == pytest.approx(want, rel=1e-12), s


def test_join_switches_at_each_boundary_and_restarts_the_count():
    steps = S.join([S.constant(1.0), S.constant(0.5), S.constant(0.25)], [3, 5])
    assert [steps(s) for s in range(7)] == [1, 1, 1, 0.5, 0.5, 0.25, 0.25]
    tail = S.join([S.constant(1.0), S.linear_decay(4)], [2])
    assert [tail(s) for s in range(2, 8)] == [1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    nested = S.join([S.constant(0.1), steps], [10])
    assert [nested(s) for s in (9, 10, 13, 15)] == [0.1, 1, 0.5, 0.25]


def test_product_of_exponential_warmup_and_cosine():
    b2, total = 0.99, 300
    f = S.product(S.exponential_warmup(b2), S.cosine_decay(total, 0.1))
    for s in range(0, total, 7):
        omega = 1 - math.exp(-(1 - b2) * (s + 1))
        assert f(s) == pytest.approx(omega * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / total))), rel=1e-12)


def test_combinators_refuse_functions_that_would_not_resume_with_weights_only():
    with pytest.raises(ValueError, match="schedules"):
        S.join([lambda s: 1.0, S.constant()], [3])
    with pytest.raises(ValueError, match="boundaries"):
        S.join([S.constant(), S.constant()], [3, 4])
    with pytest.raises(ValueError, match="boundaries"):
        S.join([S.constant(), S.constant(), S.constant()], [5, 4])


# ------------------------------------------------------- the untuned rule


def test_untuned_warmup_steps_is_two_over_one_minus_beta2():
    assert S.untuned_warmup_steps(0.999) == 2000
    assert S.untuned_warmup_steps(0.99) == 200
    assert S.untuned_warmup_steps(0.9) == 20
    assert isinstance(S.untuned_warmup_steps(0.999), int)


@pytest.mark.parametrize("beta2", [0.999, 0.99])
def test_untuned_linear_warmup_is_ma_yarats_omega(beta2):
    f = S.linear_warmup("untuned", beta2=beta2)
    for t in range(1, 3 * S.untuned_warmup_steps(beta2)):
        assert f(t - 1) == pytest.approx(min(1.0, t * (1 - beta2) / 2), rel=1e-9)


def test_effective_warmup_periods():
    """T(omega) = sum_t (1 - omega_t): 1/(1-b2) - 1/2 for the linear rule; a geometric series for the exponential."""
    b2 = 0.999
    linear, expo = S.linear_warmup("untuned", beta2=b2), S.exponential_warmup(b2)
    assert sum(1 - linear(s) for s in range(5000)) == pytest.approx(1 / (1 - b2) - 0.5, rel=1e-9)
    r = math.exp(-(1 - b2))
    assert sum(1 - expo(s) for s in range(60_000)) == pytest.approx(r / (1 - r), rel=1e-9)


def test_untuned_reads_beta2_from_the_optimizer():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.LayerNorm(3))
    for opt in (
        adamlab.AdamW(adamlab.param_groups(model, 0.1), betas=(0.9, 0.99)),
        torch.optim.Adam(model.parameters(), betas=(0.8, 0.99)),
    ):
        assert S.warmup_cosine("untuned", total_steps=1000, optimizer=opt) == S.warmup_cosine(200, 1000)
    assert S.warmup_cosine("untuned", 5000, beta2=0.999) == S.warmup_cosine(2000, 5000)
    assert S.beta2_of(adamlab.RAdam(model.parameters(), betas=(0.9, 0.95))) == 0.95


def test_untuned_refuses_ambiguous_or_missing_beta2():
    model = torch.nn.Linear(3, 3)
    mixed = adamlab.Adam([{"params": [model.weight], "betas": (0.9, 0.99)}, {"params": [model.bias]}])
    with pytest.raises(ValueError, match="disagree"):
        S.warmup_cosine("untuned", 1000, optimizer=mixed)
    with pytest.raises(ValueError, match="betas"):
        S.warmup_cosine("untuned", 1000, optimizer=adamlab.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match="optimizer= or beta2="):
        S.warmup_cosine("untuned", 1000)
    with pytest.raises(ValueError, match="optimizer= or beta2="):
        S.warmup_cosine("untuned", 1000, optimizer=mixed, beta2=0.99)
    with pytest.raises(ValueError, match="untuned"):
        S.warmup_cosine(100, 1000, beta2=0.99)
    with pytest.raises(ValueError, match="warmup_steps"):
        S.warmup_cosine("untuned", 1000, beta2=0.999)  # 2000 warmup steps > 1000


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("call,name", [
    (lambda: S.warmup_cosine(101, 100), "warmup_steps"),
    (lambda: S.warmup_cosine(-1, 100), "warmup_steps"),
    (lambda: S.warmup_cosine(10, -5), "total_steps"),
    (lambda: S.warmup_cosine(0, 0), "total_steps"),
    (lambda: S.warmup_cosine(2.5, 100), "warmup_steps"),
    (lambda: S.warmup_cosine("untunde", 100, beta2=0.9), "warmup_steps"),
    (lambda: S.warmup_cosine(10, 100, min_ratio=-0.1), "min_ratio"),
    (lambda: S.warmup_cosine(10, 100, min_ratio=1.5), "min_ratio"),
    (lambda: S.warmup_cosine(10, 100, min_ratio=float("nan")), "min_ratio"),
    (lambda: S.warmup_linear(10, 100, min_ratio=2), "min_ratio"),
    (lambda: S.cosine_decay(-3), "decay_steps"),
    (lambda: S.wsd(10, 100, 95), "decay_steps"),
    (lambda: S.wsd(10, 100, 20, decay="step"), "decay"),
    (lambda: S.inverse_sqrt(0), "timescale"),
    (lambda: S.untuned_warmup_steps(1.0), "beta2"),
    (lambda: S.untuned_warmup_steps(0.0), "beta2"),
    (lambda: S.untuned_warmup_steps(1.5), "beta2"),
    (lambda: S.untuned_warmup_steps(-0.1), "beta2"),
    (lambda: S.exponential_warmup(1.0), "beta2"),
    (lambda: S.warmup_cosine(3, 10)(-1), "step"),
])
def test_bad_arguments_raise_value_error_naming_them(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ----------------------------------------------------- state and resuming


def every_kind():
    return [
        S.constant(0.5),
        S.linear_warmup(7),
        S.exponential_warmup(0.9),
        S.cosine_decay(20, 0.1),
        S.linear_decay(20),
        S.inverse_sqrt(5),
        S.warmup_cosine(5, 20, 0.1),
        S.warmup_linear("untuned", 30, beta2=0.9),
        S.warmup_inverse_sqrt(4),
        S.wsd(3, 20, 5, decay="1-sqrt"),
        S.join([S.warmup_cosine(2, 6), S.constant(0.3)], [6]),
        S.product(S.exponential_warmup(0.8), S.warmup_cosine(3, 12)),
    ]


def is_plain(x):
    if isinstance(x, (list, tuple)):
        return all(is_plain(v) for v in x)
    if isinstance(x, dict):
        return all(isinstance(k, str) and is_plain(v) for k, v in x.items())
    return x is None or type(x) in (bool, int, float, str)


@pytest.mark.parametrize("schedule", every_kind(), ids=repr)
def test_lambdalr_state_dict_is_plain_and_resumes(schedule):
    lr = 0.1
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = LambdaLR(opt, schedule)
    for _ in range(9):
        opt.step()
        sched.step()
    assert is_plain(sched.state_dict()["lr_lambdas"])
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)

    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched2 = LambdaLR(opt2, copy.deepcopy(schedule))
    opt2.load_state_dict(saved["opt"])
    sched2.load_state_dict(saved["sched"])
    for _ in range(15):
        assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step()


def test_schedules_are_frozen_values():
    f = S.warmup_cosine(5, 20)
    assert f == S.warmup_cosine(5, 20) != S.warmup_cosine(5, 21)
    assert hash(f) == hash(S.warmup_cosine(5, 20))
    with pytest.raises(AttributeError):
        S.constant().value = 2.0


# ------------------------------------------- decoupled decay follows the schedule


@pytest.mark.parametrize("fused", [None, False])
@pytest.mark.parametrize("decay_scale", ["schedule", "lr"])
def test_decoupled_decay_under_a_schedule_is_the_closed_form_product(decay_scale, fused):
    lr, wd, steps = 0.5, 0.1, 30
    f = S.warmup_cosine(6, 24, 0.1)
    p0 = torch.linspace(-2, 3, 7, dtype=torch.float64)
    p = torch.nn.Parameter(p0.clone())
    opt = adamlab.AdamW([p], lr=lr, weight_decay=wd, decay_scale=decay_scale, fused=fused)
    sched = LambdaLR(opt, f)
    for _ in range(steps):
        p.grad = torch.zeros_like(p)  # no gradient step: only decay moves the param
        opt.step()
        sched.step()
    eta = [f(t) for t in range(steps)]
    paper = math.prod(1 - e * wd for e in eta)  # theta *= 1 - eta_t * lambda
    torch_like = math.prod(1 - lr * e * wd for e in eta)  # theta *= 1 - lr_t * lambda
    want = paper if decay_scale == "schedule" else torch_like
    assert torch.allclose(p.detach(), p0 * want, rtol=1e-12, atol=0)
    assert abs(paper - torch_like) > 1e-3  # the two modes are told apart


# ----------------------------------------------------------------- plotting


def test_plot_returns_the_figure_draws_the_schedule_and_saves(tmp_path):
    pytest.importorskip("matplotlib")
    f = S.warmup_cosine(10, 100, 0.1)
    path = tmp_path / "s.png"
    fig = S.plot(f, 100, path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    x, y = fig.axes[0].lines[0].get_data()
    assert list(x) == list(range(100))
    assert list(y) == [f(s) for s in range(100)]

    from matplotlib.figure import Figure

    ax = Figure().add_subplot()
    assert S.plot(S.constant(), 50, ax=ax) is ax.figure
    assert len(ax.lines) == 1
    long = S.plot(S.cosine_decay(10**6), 10**6)
    assert len(long.axes[0].lines[0].get_xdata()) <= S.drawing.MAX_POINTS


def test_schedules_import_matplotlib_only_inside_functions():
    """The core library must import without matplotlib: no module-level import of it here."""
    package = Path(S.__file__).parent
    for source in package.glob("*.py"):
        for node in ast.parse(source.read_text()).body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "matplotlib" for n in names), source.name
