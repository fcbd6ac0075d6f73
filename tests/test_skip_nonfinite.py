"""skip_nonfinite: a bad batch changes nothing, is counted, and schedules can stay in step.

Oracle for a skipped step: the same run in which that step() was never
called (bit-identical params, state and counters). Without the option the
behaviour is torch's (non-finite values flow into the update).
"""

from __future__ import annotations

import pytest
import torch
from cases import ALL_CASES, BACKENDS, TORCH_CASES, through_bytes, tiered

import adamlab

BAD = {3: float("nan"), 5: float("inf"), 6: float("-inf")}  # step index -> value injected into one gradient
DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def grads(t: int, n: int, dtype):
    gen = torch.Generator().manual_seed(t)
    g = [torch.randn(n, generator=gen).to(dtype) for _ in range(2)]
    if t in BAD:
        g[1][n // 2] = BAD[t]
    return g


def train(case, dtype, fused, skip_bad_calls: bool, steps=8, n=300, **options):
    ps = [torch.nn.Parameter(torch.linspace(-1, 1, n).to(dtype)) for _ in range(2)]
    opt = case.make([{"params": ps[:1]}, {"params": ps[1:]}], fused=fused, **options)
    for t in range(steps):
        if skip_bad_calls and t in BAD:
            continue  # the oracle: this step() is never called
        for p, g in zip(ps, grads(t, n, dtype)):
            p.grad = g
        opt.step()
    return ps, opt


def assert_states_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa["state"].keys() == sb["state"].keys()
    for i, state in sb["state"].items():
        assert sa["state"][i].keys() == state.keys()
        for key, value in state.items():
            assert torch.equal(sa["state"][i][key], value), (i, key)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_a_skipped_step_is_bit_identical_to_a_step_never_taken(case, backend, dtype):
    ps, opt = train(case, DTYPES[dtype], BACKENDS[backend], skip_bad_calls=False, skip_nonfinite=True)
    qs, oracle = train(case, DTYPES[dtype], BACKENDS[backend], skip_bad_calls=True, skip_nonfinite=True)
    assert all(torch.equal(p, q) for p, q in zip(ps, qs))
    assert_states_equal(opt, oracle)
    group = opt.param_groups[0]
    assert (group["nonfinite_skips"], group["nonfinite_streak"], group["last_good_step"]) == (3, 0, 5)
    assert all(g["nonfinite_skips"] == 3 for g in opt.param_groups)  # one decision for all groups


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", tiered(TORCH_CASES))
def test_without_the_option_non_finite_values_flow_as_in_torch(case, backend):
    def run(make):
        ps = [torch.nn.Parameter(torch.linspace(-1, 1, 300)) for _ in range(2)]
        opt = make(ps)
        for t in range(5):
            for p, g in zip(ps, grads(t, 300, torch.float32)):
                p.grad = g
            opt.step()
        return ps

    ours, theirs = run(lambda ps: case.make(ps, fused=BACKENDS[backend])), run(case.make_torch)
    for p, q in zip(ours, theirs):
        assert torch.equal(torch.isfinite(p), torch.isfinite(q))
        assert torch.allclose(p[torch.isfinite(q)], q[torch.isfinite(q)], rtol=1e-4, atol=1e-6)


def test_the_counters_resume_from_a_checkpoint():
    case = next(c for c in ALL_CASES if c.name == "adamw")
    ps, opt = train(case, torch.float32, None, skip_bad_calls=False, steps=4, skip_nonfinite=True)  # one skip
    twin = case.make([{"params": [p.detach().clone()]} for p in ps], skip_nonfinite=True)
    twin.load_state_dict(through_bytes(opt.state_dict()))
    assert {k: twin.param_groups[1][k] for k in ("nonfinite_skips", "nonfinite_streak", "last_good_step")} == {
        "nonfinite_skips": 1, "nonfinite_streak": 1, "last_good_step": 3}  # the last of 4 steps was bad


def test_max_consecutive_skips_raises_and_changes_nothing():
    p = torch.nn.Parameter(torch.ones(4))
    opt = adamlab.Adam([p], skip_nonfinite=True, max_consecutive_skips=2)
    p.grad = torch.ones(4)
    opt.step()
    p.grad = torch.full((4,), float("nan"))
    opt.step()
    opt.step()
    state = {k: v.clone() for k, v in opt.state[p].items()}
    with pytest.raises(RuntimeError, match="max_consecutive_skips=2"):
        opt.step()
    assert opt.param_groups[0]["nonfinite_streak"] == 2
    assert all(torch.equal(opt.state[p][k], v) for k, v in state.items())


def test_a_sparse_gradient_with_nan_skips_the_step():
    emb = torch.nn.Embedding(5, 2, sparse=True)
    before = emb.weight.detach().clone()
    opt = adamlab.SGD(emb.parameters(), lr=0.1, skip_nonfinite=True)
    emb(torch.tensor([1, 3])).sum().backward()
    emb.weight.grad = torch.sparse_coo_tensor(emb.weight.grad._indices(),
                                              torch.full_like(emb.weight.grad._values(), float("nan")), (5, 2))
    opt.step()
    assert opt.last_step_skipped and torch.equal(emb.weight.detach(), before)


def test_skip_aware_scheduler_follows_applied_steps_only():
    """With SkipAware, the lr sequence of applied steps equals that of a run without the bad batches."""
    def lrs(skip_bad_calls: bool):
        p = torch.nn.Parameter(torch.ones(3))
        opt = adamlab.AdamW([p], lr=1.0, skip_nonfinite=True)
        sched = adamlab.schedules.SkipAware(torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5**s))
        applied = []
        for t in range(8):
            if skip_bad_calls and t in BAD:
                continue
            p.grad = torch.full((3,), BAD.get(t, 1.0))
            lr = opt.param_groups[0]["lr"]
            opt.step()
            if not opt.last_step_skipped:
                applied.append(lr)
            sched.step()
        return applied, sched.state_dict()["last_epoch"]

    assert lrs(False) == lrs(True)


def test_gradscaler_overflow_sets_last_step_skipped():
    p = torch.nn.Parameter(torch.ones(3))
    opt = adamlab.Adam([p])
    p.grad = torch.ones(3)
    opt.grad_scale, opt.found_inf = torch.tensor(2.0), torch.tensor(1.0)
    opt.step()
    assert opt.last_step_skipped and not opt.state


@pytest.mark.skipif(not torch.distributed.is_available() or not torch.distributed.is_gloo_available(),
                    reason="needs torch.distributed with gloo")
@pytest.mark.slow  # two ranks in subprocesses
def test_fsdp2_ranks_agree_on_a_skip(tmp_path):
    """A NaN in one rank's gradient shard: every rank skips that step, and no param moves on either."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).parent / "scripts" / "skip_fsdp2.py"
    subprocess.run([sys.executable, str(script), str(tmp_path)], check=True, timeout=300)
    ranks = [torch.load(tmp_path / f"skip{r}.pt", weights_only=True) for r in (0, 1)]
    for rank in ranks:
        assert [h["skipped"] for h in rank["history"]] == [False, True, False]
        assert rank["skips"] == 1
        assert all(torch.equal(a, b) for a, b in zip(rank["history"][0]["params"], rank["history"][1]["params"]))
    assert all(torch.equal(a, b) for a, b in zip(ranks[0]["history"][2]["params"], ranks[1]["history"][2]["params"]))
