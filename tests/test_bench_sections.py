"""``adamlab bench``'s host and safety sections: what they time is the step they claim, and timing changes nothing.

Speeds are never asserted (the bench prints them); these tests check what is measured.
"""

from __future__ import annotations

import pytest
import torch
from labcheck import run_cli

import adamlab
from adamlab.bench import host, safety


def test_the_host_sections_check_reads_the_steps_arrays_and_writes_nothing():
    params = host._params(30)
    ours = adamlab.AdamW(params, lr=1e-3, weight_decay=1e-2)
    ours.step()
    before = [p.detach().clone() for p in params]
    state = {k: v.clone() for k, v in ours.state[params[0]].items()}
    report = host.check_seconds(ours, repeats=3)
    assert report["arrays"] == 4 * len(params)  # p, g, exp_avg, exp_avg_sq of every param
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert all(torch.equal(ours.state[params[0]][k], v) for k, v in state.items())
    twin = host._params(30)  # the same values: torch.optim's one step is the oracle for what was applied
    torch.optim.AdamW(twin, lr=1e-3, weight_decay=1e-2).step()
    torch.testing.assert_close([p.detach() for p in params], [t.detach() for t in twin])


def test_the_safety_sections_contenders_take_the_same_step():
    opts = safety.contenders(5000)
    for opt in opts.values():
        opt.step()
        opt.step()
    plain, checked = (o.param_groups[0]["params"][0] for o in opts.values())
    assert torch.equal(plain, checked)
    assert opts["skip_nonfinite"].param_groups[0]["skip_nonfinite"] is True
    report = safety.measure(5000, repeats=3)
    assert report["ratio"] == report["step_s"]["skip_nonfinite"] / report["step_s"]["plain"]
    assert report["met"] == (report["ratio"] <= safety.TARGET)


@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_quick_bench_prints_each_chosen_section_and_only_those():
    result = run_cli("bench", "--quick", "--sections", "host,safety")
    assert result.returncode == 0, result.stderr
    assert "Host work: 500 tensors of 16 elements" in result.stdout
    assert "skip_nonfinite on one tensor of 8.4M fp32 params" in result.stdout
    assert "Mparams/s" not in result.stdout and "Monitor overhead" not in result.stdout
