"""torch.compile traces the step: one custom op, at most two compilations, no graph breaks, eager's results.

Oracles: torch._dynamo's own counters (compilations, graph breaks), torch.library.opcheck, torch.optim's
eager trajectories, and adamlab's eager step, which runs the same kernel, so a compiled step must match it
bit for bit.
"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from cases import by_name, rel_diff
from torch._dynamo.testing import CompileCounterWithBackend
from torch._dynamo.utils import counters
from torch.optim.lr_scheduler import LambdaLR

import adamlab
from adamlab.algorithms import ADAM
from adamlab.backends import ops
from adamlab.optim.counters import Counters


@pytest.fixture(autouse=True)
def _fresh_dynamo():
    torch._dynamo.reset()
    counters.clear()
    yield
    torch._dynamo.reset()


def twins(shapes=((20, 10), (10,), (3, 4, 5)), seed=0):
    """Two identical lists of fp32 params."""
    gen = torch.Generator().manual_seed(seed)
    ps = [torch.randn(s, generator=gen).requires_grad_() for s in shapes]
    return ps, [p.detach().clone().requires_grad_() for p in ps]


def give_grads(gen, *param_lists, which=None):
    """The same random gradient to the same position in every list (None where ``which`` leaves one out)."""
    for k, group in enumerate(zip(*param_lists)):
        g = torch.randn(group[0].shape, generator=gen) if which is None or k in which else None
        for p in group:
            p.grad = None if g is None else g.clone()


def assert_bitwise(opt, ps, eager, qs):
    for p, q in zip(ps, qs):
        assert torch.equal(p, q)
        assert opt.state[p].keys() == eager.state[q].keys()
        for key, value in eager.state[q].items():
            assert torch.equal(opt.state[p][key], value), key


WARMUP_COSINE = adamlab.schedules.warmup_cosine(10, 100, min_ratio=0.1)


def side_by_side(opt, others, steps, schedule=WARMUP_COSINE, fullgraph=True):
    """Step ``opt`` compiled and ``others`` eagerly on the same gradients under a LambdaLR ``schedule``.

    The schedulers are built first, so the step is compiled after LambdaLR has seen the optimizer.
    Returns the compile counter.
    """
    optimizers = [opt, *others]
    schedules = [LambdaLR(o, schedule) for o in optimizers]
    backend = CompileCounterWithBackend("inductor")
    step = torch.compile(opt.step, backend=backend, fullgraph=fullgraph)
    lists = [[p for g in o.param_groups for p in g["params"]] for o in optimizers]
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        give_grads(gen, *lists)
        step()
        for o in [*others, *schedules]:
            o.step()
    return backend


def graph_breaks() -> int:
    return sum(counters["graph_break"].values())


# ---------------------------------------------------------------- the op


def test_the_step_op_passes_opcheck():
    group = adamlab.AdamW([torch.zeros(1)], lr=1e-2).param_groups[0]
    plan = ADAM.plan(group, Counters({"step": 3.0}, torch.float32), False)
    key = ops.register(plan.config, tuple(plan.scalars), "c", False)
    gen = torch.Generator().manual_seed(0)
    flat = [torch.randn(n, generator=gen).abs() for n in (7, 7, 7, 7, 100, 100, 100, 100)]
    flat[0].requires_grad_()
    scalars = torch.tensor([list(plan.scalars.values())], dtype=torch.float64)
    written, grads = ops.split(flat, 4)
    assert all(a is b for a, b in zip(ops.slots(written, grads), flat, strict=True))
    torch.library.opcheck(torch.ops.adamlab.step.default, (written, grads, scalars, key))


@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_the_op_steps_rows_of_scalars_apart():
    """Params at different step counts in one call: each row of scalars is its param's own."""
    ps, qs = twins(((5,), (6,), (7,)))
    opt, eager = adamlab.AdamW(ps, lr=1e-2), adamlab.AdamW(qs, lr=1e-2)
    gen = torch.Generator().manual_seed(1)
    step = torch.compile(opt.step, fullgraph=True)
    for which in ((0, 1, 2), (0, 1), (0, 2), (0, 1, 2), (0, 1, 2)):  # counts drift apart: 5, 4, 4 at the end
        give_grads(gen, ps, qs, which=which)
        step()
        eager.step()
    assert [int(opt.state[p]["step"]) for p in ps] == [5, 4, 4]
    assert_bitwise(opt, ps, eager, qs)


# ---------------------------------------------------------------- the default path


def test_adamw_under_a_schedule_compiles_at_most_twice_without_graph_breaks():
    ps, qs = twins()
    ts = [q.detach().clone().requires_grad_() for q in qs]
    opt, eager = adamlab.AdamW(ps, lr=1e-2), adamlab.AdamW(qs, lr=1e-2)
    backend = side_by_side(opt, [eager, torch.optim.AdamW(ts, lr=1e-2)], steps=100)
    assert backend.frame_count <= 2
    assert graph_breaks() == 0
    assert_bitwise(opt, ps, eager, qs)
    assert rel_diff(ps, ts) < 1e-5


def test_a_tensor_lr_compiles_once():
    """The graph computes the scalars in float64; eager (as torch) does so in the lr's float32: close, not equal."""
    ps, qs = twins()
    opt, eager = adamlab.AdamW(ps, lr=torch.tensor(1e-2)), adamlab.AdamW(qs, lr=torch.tensor(1e-2))
    backend = side_by_side(opt, [eager], steps=20)
    assert backend.frame_count == 1
    assert graph_breaks() == 0
    assert rel_diff(ps, qs) < 1e-6


def test_a_compiled_training_step_with_opt_step_trains_as_eager():
    def model(seed=0):
        torch.manual_seed(seed)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))

    net, twin = model(), model()
    opt, eager = adamlab.AdamW(net.parameters(), lr=1e-2), adamlab.AdamW(twin.parameters(), lr=1e-2)
    schedules = [LambdaLR(o, WARMUP_COSINE) for o in (opt, eager)]

    def train_step(module, optimizer, x):
        loss = module(x).square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss

    compiled = torch.compile(train_step)
    gen = torch.Generator().manual_seed(1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(12):
            x = torch.randn(4, 8, generator=gen)
            compiled(net, opt, x)
            train_step(twin, eager, x)
            for s in schedules:
                s.step()
    assert not [w for w in caught if "lr_scheduler" in str(w.message)]  # opt.step ran before sched.step
    # the compiled forward and backward may round differently from eager's: close, not bitwise
    assert rel_diff(list(net.parameters()), list(twin.parameters())) < 1e-5
    assert int(opt.state[next(net.parameters())]["step"]) == 12


# ---------------------------------------------------------------- every record


RECORDS = ["adamw_amsgrad", "adam_l2_amsgrad_maximize", "radam_decoupled", "radam_threshold4",
           "nadam_decoupled_maximize", "adamax_l2_maximize", "adagrad_lr_decay", "rmsprop_centered_momentum",
           "adamw_schedule_decay_no_bc_amsgrad", "sgd_l2"]


@pytest.mark.parametrize("name", RECORDS)
def test_every_record_compiles_to_eager_results_without_graph_breaks(name):
    """12 steps under a schedule; RAdam crosses its rectification threshold inside the one graph."""
    case = by_name(name)
    ps, qs = twins()
    opt, eager = case.make(ps), case.make(qs)
    backend = side_by_side(opt, [eager], steps=12, schedule=lambda t: 1 / (1 + t))
    assert backend.frame_count <= 2
    assert graph_breaks() == 0
    assert_bitwise(opt, ps, eager, qs)


def test_a_first_step_that_differs_runs_eagerly_then_the_graph_takes_over():
    """SGD's momentum buffer starts at g: that first step runs eagerly behind a graph break, then one graph."""
    case = by_name("sgd_dampening")
    ps, qs = twins()
    opt, eager = case.make(ps), case.make(qs)
    first = side_by_side(opt, [eager], steps=1, fullgraph=False)
    breaks = dict(counters["graph_break"])
    assert len(breaks) == 1 and "_eager_step" in next(iter(breaks)) and first.frame_count == 0
    later = side_by_side(opt, [eager], steps=7, schedule=lambda t: 1.0, fullgraph=False)
    assert dict(counters["graph_break"]) == breaks and later.frame_count == 1
    assert_bitwise(opt, ps, eager, qs)
    gen = torch.Generator().manual_seed(2)
    fresh, _ = twins()
    give_grads(gen, fresh)
    with pytest.raises(torch._dynamo.exc.Unsupported):  # fullgraph=True refuses that first step
        torch.compile(case.make(fresh).step, fullgraph=True)()


# ---------------------------------------------------------------- the graph follows eager changes


def test_compiled_and_eager_steps_mix_with_changing_gradients_groups_and_a_load():
    ps, qs = twins(((30,), (20,), (7,)))
    groups = lambda xs: [{"params": xs[:2]}, {"params": xs[2:], "lr": 3e-2}]  # noqa: E731
    opt, eager = adamlab.AdamW(groups(ps), lr=1e-2), adamlab.AdamW(groups(qs), lr=1e-2)
    step = torch.compile(opt.step)
    gen = torch.Generator().manual_seed(1)
    # (params with gradients, compiled or eager): counters drift apart, eager steps rebuild the counters
    for which, compiled in [((0, 1, 2), 1)] * 3 + [((0, 1), 1)] * 2 + [((0, 1, 2), 1), ((0,), 0), ((0, 1, 2), 1),
                                                                       ((0, 1, 2), 0), ((1, 2), 1), ((0, 1, 2), 1)]:
        give_grads(gen, ps, qs, which=which)
        (step if compiled else opt.step)()
        eager.step()
        assert_bitwise(opt, ps, eager, qs)
    opt.load_state_dict(copy.deepcopy(eager.state_dict()))  # new state tensors: the graph must notice
    for _ in range(3):
        give_grads(gen, ps, qs)
        step()
        eager.step()
        assert_bitwise(opt, ps, eager, qs)
    assert [int(opt.state[p]["step"]) for p in ps] == [13, 13, 11]


def test_priming_runs_eagerly_and_moves_nothing():
    """DCP's priming step (lr 0, zero gradients, no state) creates the state and counts nothing, compiled too."""
    ps, _ = twins()
    before = [p.detach().clone() for p in ps]
    opt = adamlab.AdamW(ps, lr=0.0)
    for p in ps:
        p.grad = torch.zeros_like(p)
    torch.compile(opt.step)()
    assert all(torch.equal(p, b) for p, b in zip(ps, before))
    assert all(int(opt.state[p]["step"]) == 0 for p in ps)


@pytest.mark.parametrize("options", [{"state_precision": "bf16"}, {"state_precision": "8bit"}])
def test_low_precision_state_runs_eagerly_behind_one_graph_break(options):
    """Its codecs are not the op's layout: each step runs the eager step, with the same results."""
    ps, qs = twins(((70, 70), (10,)))
    opt, eager = adamlab.AdamW(ps, lr=1e-2, **options), adamlab.AdamW(qs, lr=1e-2, **options)
    backend = side_by_side(opt, [eager], steps=4, fullgraph=False)
    assert backend.frame_count <= 2
    assert all("_eager_step" in reason for reason in counters["graph_break"])
    assert_bitwise(opt, ps, eager, qs)
    fresh, _ = twins()
    give_grads(torch.Generator().manual_seed(2), fresh)
    with pytest.raises(torch._dynamo.exc.Unsupported):
        torch.compile(adamlab.AdamW(fresh, **options).step, fullgraph=True)()
