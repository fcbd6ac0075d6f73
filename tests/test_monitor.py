"""The monitor's statistics against direct computations from the state, written here.

Every oracle below reads the optimizer's state after a step (torch's keys)
and the params the test copied before it, and computes each statistic
with NumPy in float64 from the papers' formulas; the fp32 update that
half-precision params round is taken from a torch.optim twin stepped from
the same state. Nothing here calls the monitor's own code.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from cases import by_name, params

import adamlab

MONITORED = [by_name(n) for n in ("adam", "adam_amsgrad", "adamw_wd", "radam", "nadam", "adamax",
                                  "adagrad_lr_decay", "sgd_momentum", "rmsprop", "rmsprop_centered_momentum",
                                  "adam_no_bias_correction")]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SHAPES = [(24, 17), (9,), (3, 4, 5)]
STEPS = 7  # RAdam rectifies from step 6 at beta2 = 0.999
PERCENTILES = (1, 50, 99)
BINS_PER_OCTAVE = 32


def make_params(dtype, gen):
    """Params of every magnitude from 1e-3 to 10, so that some updates fall under half an ulp."""
    out = []
    for shape in SHAPES:
        mag = 10 ** (torch.rand(shape, generator=gen, dtype=torch.float64) * 4 - 3)
        sign = torch.where(torch.rand(shape, generator=gen) < 0.5, -1.0, 1.0)
        out.append(torch.nn.Parameter((mag * sign).to(dtype)))
    return out


def make_grads(ps, gen, dead):
    """Gradients from 1e-11 to 1 (some under eps), and exactly 0 on the ``dead`` coordinates every step."""
    for p, mask in zip(ps, dead):
        mag = 10 ** (torch.rand(p.shape, generator=gen, dtype=torch.float64) * 11 - 11)
        sign = torch.where(torch.rand(p.shape, generator=gen) < 0.5, -1.0, 1.0)
        p.grad = torch.where(mask, 0.0, mag * sign).to(p.dtype)


def f64(t) -> np.ndarray:
    return t.detach().double().reshape(-1).numpy()


def ulp_by_bits(x: torch.Tensor) -> np.ndarray:
    """The gap from |x| to the next representable value of its dtype, by incrementing the bit pattern."""
    a = x.detach().abs()
    up = (a.view(torch.int16) + 1).view(a.dtype)
    return f64(up) - f64(a)


# ---------------------------------------------------------------- the oracle


def preconditioner(case, hyper, state, t):
    """(v, root eps is added to or None, eps, effective step, vmax or None), in float64, from torch's state."""
    name, lr, eps = case.algorithm, hyper["lr"], hyper.get("eps")
    if name == "adam":
        b1, b2 = hyper["betas"]
        bc1, bc2 = (1 - b1**t, 1 - b2**t) if hyper["bias_correction"] else (1.0, 1.0)
        v = f64(state["exp_avg_sq"])
        vmax = f64(state["max_exp_avg_sq"]) if hyper["amsgrad"] else None
        root = np.sqrt((vmax if vmax is not None else v) / bc2)
        return v, root, eps, lr / bc1 / (root + eps), vmax
    if name == "radam":
        b1, b2 = hyper["betas"]
        v = f64(state["exp_avg_sq"])
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        if rho > 5:
            r = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
            eff = lr * r * math.sqrt(1 - b2**t) / (np.sqrt(v) + eps) / (1 - b1**t)
        else:
            eff = np.full_like(v, lr / (1 - b1**t))
        return v, np.sqrt(v), eps, eff, None
    if name == "nadam":
        b1, b2 = hyper["betas"]
        psi = hyper["momentum_decay"]
        mu_next = b1 * (1 - 0.5 * 0.96 ** ((t + 1) * psi))
        product = float(state["mu_product"])  # mu_1 ... mu_t, as the optimizer keeps it
        v = f64(state["exp_avg_sq"])
        root = np.sqrt(v / (1 - b2**t))
        return v, root, eps, lr * mu_next / (1 - product * mu_next) / (root + eps), None
    if name == "adamax":
        u = f64(state["exp_inf"])
        return u, None, None, lr / (1 - hyper["betas"][0] ** t) / u, None
    if name == "adagrad":
        acc = f64(state["sum"])
        clr = lr / (1 + (t - 1) * hyper["lr_decay"])
        return acc, np.sqrt(acc), eps, clr / (np.sqrt(acc) + eps), None
    if name == "rmsprop":
        v = f64(state["square_avg"])
        root = np.sqrt(v - f64(state["grad_avg"]) ** 2) if hyper["centered"] else np.sqrt(v)
        return v, root, eps, lr / (root + eps), None
    return None


def expected(case, hyper, states, before, after, grads, twin_after=None):
    """Every statistic of one group, from the state after the step and the params before it."""
    n = sum(b.size for b in before)
    out = {
        "grad_norm": math.sqrt(sum((g**2).sum() for g in grads)),
        "param_rms": math.sqrt(sum((b**2).sum() for b in before) / n),
        "update_rms": math.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(after, before)) / n),
    }
    out["update_to_param"] = out["update_rms"] / out["param_rms"]
    t = float(states[0]["step"]) if "step" in states[0] else None
    pieces = [preconditioner(case, hyper, st, t) for st in states]
    if pieces[0] is not None:
        v = np.concatenate([p[0] for p in pieces])
        out["effective"] = np.concatenate([p[3] for p in pieces])
        out["v_zero"] = (v == 0).mean()
        if pieces[0][1] is not None:
            out["eps_dominated"] = (np.concatenate([p[1] for p in pieces]) < pieces[0][2]).mean()
        if pieces[0][4] is not None:
            vmax = np.concatenate([p[4] for p in pieces])
            out["vmax_over_v"] = (vmax[v > 0] / v[v > 0]).mean()
    if twin_after is not None:
        lost = []
        for b, intended, ulp in twin_after:
            u = intended - b
            lost.append((u != 0) & (np.abs(u) < ulp / 2))
        out["lost_to_rounding"] = np.concatenate(lost).mean()
    if case.algorithm == "radam":
        b2 = hyper["betas"][1]
        rho_inf = 2 / (1 - b2) - 1
        rho = rho_inf - 2 * t * b2**t / (1 - b2**t)
        out["radam_rectified"] = float(rho > 5)
        if rho > 5:
            out["radam_rect"] = math.sqrt((rho - 4) * (rho - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho))
    if t is not None:
        out["t"] = t
    return out


def assert_percentiles(record, prefix, effective):
    """Each percentile lies within one histogram bin of the order statistics around its rank."""
    x = np.sort(effective)
    for q in PERCENTILES:
        got = record[f"{prefix}effective_step_p{q:g}"]
        k = q / 100 * len(x)
        lo, hi = x[max(0, math.ceil(k) - 2)], x[min(len(x) - 1, math.ceil(k))]
        slack = 2 ** (1 / BINS_PER_OCTAVE) * (1 + 1e-9)
        assert lo / slack <= got <= hi * slack, (q, got, lo, hi)


def check(record, prefix, want, dtype=torch.float32):
    for key, value in want.items():
        if key == "effective":
            assert_percentiles(record, prefix, value)
        elif key in ("v_zero", "eps_dominated", "lost_to_rounding", "radam_rectified", "t"):
            assert record[prefix + key] == pytest.approx(value, abs=1e-12), key
        elif dtype == torch.bfloat16 and key in ("grad_norm", "param_rms", "update_to_param"):
            assert record[prefix + key] == pytest.approx(value, rel=2**-8), key  # norms rounded to bf16
        else:
            assert record[prefix + key] == pytest.approx(value, rel=2e-5), key


def twin_step(case, ps, opt):
    """torch.optim's fp32 result of this step, from the same params, grads and state, before rounding."""
    copies = [torch.nn.Parameter(p.detach().float().clone()) for p in ps]
    twin = case.make_torch(copies)
    twin.load_state_dict(copy.deepcopy(opt.state_dict()))  # torch's loader would share same-dtype tensors
    for c, p in zip(copies, ps):
        c.grad = p.grad.float()
    twin.step()
    return [f64(c) for c in copies]


# ---------------------------------------------------------------- the statistics


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("case", params(MONITORED))
def test_statistics_match_the_state(case, dtype):
    gen = torch.Generator().manual_seed(1)
    ps = make_params(dtype, gen)
    dead = [torch.rand(p.shape, generator=gen) < 0.1 for p in ps]
    opt = case.make(ps)
    monitor = adamlab.Monitor(opt, percentiles=PERCENTILES, bins_per_octave=BINS_PER_OCTAVE)
    hyper = case.hyper()
    half = dtype != torch.float32
    for step in range(1, STEPS + 1):
        make_grads(ps, gen, dead)
        before = [f64(p) for p in ps]
        twin = None
        if half and case.torch_name:
            twin = list(zip(before, twin_step(case, ps, opt), [ulp_by_bits(p) for p in ps]))
        grads = [f64(p.grad) for p in ps]
        opt.step()
        want = expected(case, hyper, [opt.state[p] for p in ps], before, [f64(p) for p in ps], grads, twin)
        record = monitor.latest
        assert record["step"] == step
        check(record, "group0/", want, dtype)
    if half and case.torch_name:
        assert 0 < monitor.latest["group0/lost_to_rounding"] < 1  # the test data reach both sides


def test_half_precision_lost_updates_are_the_unchanged_coordinates():
    """A lost update leaves its coordinate bit-identical: the fraction is at most the unchanged share."""
    gen = torch.Generator().manual_seed(2)
    ps = make_params(torch.bfloat16, gen)
    opt = adamlab.Adam(ps, lr=1e-3)
    monitor = adamlab.Monitor(opt)
    make_grads(ps, gen, [torch.zeros(p.shape, dtype=torch.bool) for p in ps])
    before = [p.detach().clone() for p in ps]
    opt.step()
    unchanged = sum((p == b).sum().item() for p, b in zip(ps, before)) / sum(p.numel() for p in ps)
    lost = monitor.latest["group0/lost_to_rounding"]
    assert 0.2 < lost <= unchanged


def test_per_param_statistics_and_names():
    gen = torch.Generator().manual_seed(3)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Linear(5, 2))
    opt = adamlab.AdamW(model.parameters(), lr=1e-2)
    monitor = adamlab.Monitor(opt, per_param=True, model=model, percentiles=PERCENTILES,
                              bins_per_octave=BINS_PER_OCTAVE)
    case = by_name("adamw")
    hyper = case.hyper(lr=1e-2)
    ps = list(model.parameters())
    for _ in range(2):
        make_grads(ps, gen, [torch.zeros(p.shape, dtype=torch.bool) for p in ps])
        before = [f64(p) for p in ps]
        grads = [f64(p.grad) for p in ps]
        opt.step()
    record = monitor.latest
    for (name, p), b, g in zip(model.named_parameters(), before, grads):
        want = expected(case, hyper, [opt.state[p]], [b], [f64(p)], [g])
        check(record, f"group0/{name}/", want)
    whole = expected(case, hyper, [opt.state[p] for p in ps], before, [f64(p) for p in ps], grads)
    check(record, "group0/", whole)


def test_groups_are_reported_apart_and_params_without_grads_left_out():
    a, b, frozen = (torch.nn.Parameter(torch.randn(8)) for _ in range(3))
    opt = adamlab.Adam([{"params": [a, frozen], "lr": 1e-2}, {"params": [b], "lr": 1e-3, "name": "head"}])
    monitor = adamlab.Monitor(opt)
    a.grad, b.grad = torch.randn(8), torch.randn(8)
    before_a, before_b = f64(a), f64(b)
    opt.step()
    r = monitor.latest
    assert r["group0/lr"] == 1e-2 and r["head/lr"] == 1e-3
    assert r["group0/grad_norm"] == pytest.approx(np.linalg.norm(f64(a.grad)), rel=1e-6)
    assert r["group0/param_rms"] == pytest.approx(np.sqrt((before_a**2).mean()), rel=1e-6)
    assert r["head/update_rms"] == pytest.approx(np.sqrt(((f64(b) - before_b) ** 2).mean()), rel=1e-6)


def test_radam_reports_rectification_as_it_switches_on():
    p = torch.nn.Parameter(torch.randn(10))
    opt = adamlab.RAdam([p])
    monitor = adamlab.Monitor(opt)
    for _ in range(8):
        p.grad = torch.randn(10)
        opt.step()
    flags = [r["group0/radam_rectified"] for r in monitor.history]
    assert flags == [0, 0, 0, 0, 0, 1, 1, 1]  # rho_t = 5.99 > 5 first at t = 6 (beta2 = 0.999)
    assert all(math.isnan(r["group0/radam_rect"]) for r in monitor.history[:5])


# ---------------------------------------------------------------- sampling


def test_sampled_statistics_estimate_the_whole_param():
    """A param over ``sample`` elements is read at sampled positions; sample=None reads all of it."""
    gen = torch.Generator().manual_seed(4)
    p = torch.nn.Parameter(torch.randn(300, 700, generator=gen))
    opt = adamlab.Adam([p], lr=1e-3)
    sampled = adamlab.Monitor(opt, sample=8192)
    whole = adamlab.Monitor(opt, sample=None)
    dead = torch.rand(p.shape, generator=gen) < 0.3
    case = by_name("adam")
    for _ in range(2):
        make_grads([p], gen, [dead])
        before, grads = [f64(p)], [f64(p.grad)]
        opt.step()
    want = expected(case, case.hyper(lr=1e-3), [opt.state[p]], before, [f64(p)], grads)
    check(whole.latest, "group0/", want)
    est = sampled.latest
    sigma = math.sqrt(0.25 / 8192)
    for key in ("v_zero", "eps_dominated"):
        assert est["group0/" + key] == pytest.approx(want[key], abs=5 * sigma)
    assert est["group0/update_rms"] == pytest.approx(want["update_rms"], rel=0.05)
    assert est["group0/grad_norm"] == pytest.approx(want["grad_norm"], rel=1e-5)  # never sampled (fp32 sums)
    for q in PERCENTILES:  # the estimate's rank among all coordinates is q% within sampling error
        rank = (want["effective"] <= est[f"group0/effective_step_p{q}"]).mean()
        assert rank == pytest.approx(q / 100, abs=5 * math.sqrt(q / 100 * (1 - q / 100) / 8192) + 0.005)


# ---------------------------------------------------------------- hooks, schedule, output


def test_every_monitors_steps_one_plus_multiples():
    p = torch.nn.Parameter(torch.randn(4))
    opt = adamlab.Adam([p])
    monitor = adamlab.Monitor(opt, every=3)
    for _ in range(8):
        p.grad = torch.randn(4)
        opt.step()
    assert [r["step"] for r in monitor.history] == [1, 4, 7]


def test_off_by_default_and_read_only():
    """No hooks without a monitor, none after close; a monitored run is bit-identical to an unmonitored one."""
    gen = torch.Generator().manual_seed(5)
    ps = [make_params(torch.bfloat16, gen), None]
    ps[1] = [torch.nn.Parameter(p.detach().clone()) for p in ps[0]]
    plain, watched = adamlab.AdamW(ps[0], amsgrad=True), adamlab.AdamW(ps[1], amsgrad=True)
    assert not plain._optimizer_step_pre_hooks and not plain._optimizer_step_post_hooks
    monitor = adamlab.Monitor(watched, every=2, per_param=True)
    for _ in range(5):
        make_grads(ps[0], gen, [torch.zeros(p.shape, dtype=torch.bool) for p in ps[0]])
        for a, b in zip(*ps):
            b.grad = a.grad.clone()
        plain.step()
        watched.step()
    for a, b in zip(*ps):
        assert torch.equal(a, b)
    sa, sb = plain.state_dict(), watched.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    for i in sa["state"]:
        for k in sa["state"][i]:
            assert torch.equal(sa["state"][i][k], sb["state"][i][k])
    monitor.close()
    assert not watched._optimizer_step_pre_hooks and not watched._optimizer_step_post_hooks


def test_numbers_stay_on_the_device_until_read():
    p = torch.nn.Parameter(torch.randn(6))
    opt = adamlab.Adam([p])
    seen = []
    monitor = adamlab.Monitor(opt, read_every=3, callback=seen.append)
    for _ in range(5):
        p.grad = torch.randn(6)
        opt.step()
    assert [r["step"] for r in seen] == [1, 2, 3]  # read once, at the third monitored step
    assert any(torch.is_tensor(v) for v in monitor._pending[0].values())
    assert [r["step"] for r in monitor.history] == [1, 2, 3, 4, 5]
    assert [r["step"] for r in seen] == [1, 2, 3, 4, 5]
    assert all(isinstance(v, float) for r in seen for v in r.values())


def test_a_skipped_step_is_reported():
    """An AMP overflow (found_inf) skips the step; the monitor sees its counters did not move."""
    p = torch.nn.Parameter(torch.randn(5))
    opt = adamlab.Adam([p])
    monitor = adamlab.Monitor(opt)
    p.grad = torch.randn(5)
    opt.step()
    opt.found_inf = torch.ones(())
    p.grad = torch.full((5,), float("inf"))
    opt.step()
    del opt.found_inf
    first, second = monitor.history
    assert first["step_skipped"] == 0 and second["step_skipped"] == 1
    assert math.isinf(second["group0/grad_norm"])
    assert math.isnan(second["group0/update_rms"]) and math.isnan(second["group0/effective_step_p50"])


def test_skip_counters_follow_skip_nonfinite():
    """The counters the optimizer keeps in its groups, on each record, as they were after that step."""
    p = torch.nn.Parameter(torch.randn(5))
    opt = adamlab.Adam([p], skip_nonfinite=True)
    monitor = adamlab.Monitor(opt)
    grads = [torch.randn(5), torch.full((5,), float("nan")), torch.full((5,), float("inf")), torch.randn(5)]
    for g in grads:
        p.grad = g.clone()
        opt.step()
    rows = [(r["step_skipped"], r["skip/nonfinite_skips"], r["skip/nonfinite_streak"], r["skip/last_good_step"])
            for r in monitor.history]
    assert rows == [(0, 0, 0, 1), (1, 1, 1, 1), (1, 2, 2, 1), (0, 2, 0, 2)]
    assert math.isnan(monitor.history[1]["group0/update_rms"])
    assert monitor.history[3]["group0/t"] == 2  # the skipped steps were not counted


def test_no_skip_counters_without_skip_nonfinite():
    p = torch.nn.Parameter(torch.randn(5))
    opt = adamlab.Adam([p])
    monitor = adamlab.Monitor(opt)
    p.grad = torch.randn(5)
    opt.step()
    assert not any(k.startswith("skip/") for k in monitor.latest)


def test_csv_writer_and_callback_see_the_history(tmp_path):
    import csv

    p = torch.nn.Parameter(torch.randn(6))
    opt = adamlab.RMSprop([p])
    with adamlab.Monitor(opt, callback=adamlab.monitor.CSVWriter(tmp_path / "m.csv")) as monitor:
        for _ in range(3):
            p.grad = torch.randn(6)
            opt.step()
        history = monitor.history
    with open(tmp_path / "m.csv") as f:
        rows = list(csv.DictReader(f))
    got = {(int(r["step"]), r["name"]): float(r["value"]) for r in rows}
    want = {(int(r["step"]), k): v for r in history for k, v in r.items() if k != "step"}
    assert got.keys() == want.keys()
    assert all(got[k] == want[k] or (math.isnan(got[k]) and math.isnan(want[k])) for k in want)


def test_tensorboard_writer_writes_every_scalar():
    class Summary:  # SummaryWriter's surface the writer uses
        def __init__(self):
            self.scalars = []

        def add_scalar(self, tag, value, step):
            self.scalars.append((tag, value, step))

        def flush(self):
            pass

    summary = Summary()
    p = torch.nn.Parameter(torch.randn(6))
    opt = adamlab.Adam([p])
    monitor = adamlab.Monitor(opt, callback=adamlab.monitor.TensorBoardWriter(summary))
    p.grad = torch.randn(6)
    opt.step()
    record = monitor.latest
    assert sorted(summary.scalars) == sorted((k, v, 1) for k, v in record.items() if k != "step")


def test_tensorboard_writer_with_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    p = torch.nn.Parameter(torch.randn(6))
    opt = adamlab.Adam([p])
    with adamlab.Monitor(opt, callback=adamlab.monitor.TensorBoardWriter(tmp_path)):
        p.grad = torch.randn(6)
        opt.step()
    assert any(f.name.startswith("events.out.tfevents") for f in tmp_path.iterdir())


def test_plot_draws_the_history(tmp_path):
    pytest.importorskip("matplotlib")
    p = torch.nn.Parameter(torch.randn(30).to(torch.bfloat16))
    opt = adamlab.Adam([p], amsgrad=True)
    monitor = adamlab.Monitor(opt)
    for _ in range(4):
        p.grad = torch.randn(30).to(torch.bfloat16)
        opt.step()
    fig = monitor.plot(path=tmp_path / "m.png")
    assert (tmp_path / "m.png").stat().st_size > 0
    labels = {line.get_label() for ax in fig.axes for line in ax.get_lines()}
    assert {"group0/update_to_param", "group0/effective_step_p50", "group0/lost_to_rounding"} <= labels
    fig = monitor.plot(keys=["*/grad_norm"])
    assert len(fig.axes) == 1


@pytest.mark.parametrize(
    "kwargs, word",
    [({"every": 0}, "every"), ({"every": 1.5}, "every"), ({"sample": 0}, "sample"),
     ({"percentiles": (50, 101)}, "percentiles"), ({"bins_per_octave": 0}, "bins_per_octave"),
     ({"read_every": 0}, "read_every"), ({"callback": 3}, "callback")],
)
def test_bad_arguments_are_refused_naming_them(kwargs, word):
    p = torch.nn.Parameter(torch.randn(3))
    opt = adamlab.Adam([p])
    with pytest.raises(ValueError, match=word):
        adamlab.Monitor(opt, **kwargs)
    assert not opt._optimizer_step_pre_hooks  # nothing attached


def test_torch_optimizers_get_the_statistics_that_need_no_record():
    p = torch.nn.Parameter(torch.randn(12))
    opt = torch.optim.Adam([p])
    monitor = adamlab.Monitor(opt)
    p.grad = torch.randn(12)
    before = f64(p)
    opt.step()
    r = monitor.latest
    assert r["group0/update_rms"] == pytest.approx(np.sqrt(((f64(p) - before) ** 2).mean()), rel=1e-6)
    assert "group0/effective_step_p50" not in r


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_monitored_steps_do_not_sync_the_device(dtype):
    """After the first monitored step (which moves sampled positions to the device), the hooks never sync."""
    p = torch.nn.Parameter(torch.randn(1 << 16, device="cuda").to(dtype))
    opt = adamlab.AdamW([p], backend="reference", amsgrad=True)
    monitor = adamlab.Monitor(opt, read_every=10**6)
    p.grad = torch.randn_like(p)
    opt.step()
    for handle in monitor._handles:  # from here the test calls the hooks itself, around an unwatched step
        handle.remove()
    for _ in range(2):
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            monitor._before(opt, (), {})
        finally:
            torch.cuda.set_sync_debug_mode("default")
        opt.step()
        torch.cuda.set_sync_debug_mode("error")
        try:
            monitor._after(opt, (), {})
        finally:
            torch.cuda.set_sync_debug_mode("default")
    records = monitor.history
    assert len(records) == 3 and all(r["group0/update_rms"] > 0 for r in records)


def test_overhead_benchmark_runs_and_reports_its_ratios():
    """The benchmark's plumbing only (timings are never asserted)."""
    from adamlab.monitor import bench

    row = bench.measure([(256,), (64,)], torch.float32, every=3, repeats=2)
    assert row["plain_s"] > 0 and row["monitored_s"] > 0 and row["hooks_s"] > 0
    assert row["amortised"] == pytest.approx(
        1 + (row["monitored_step"] - 1) / 3 + 2 / 3 * row["hooks_s"] / row["plain_s"])
    text = bench.table([{"case": "tiny", "params": 320, "tensors": 2, "every": 3, **row}])
    assert "tiny" in text and "amortised" in text
