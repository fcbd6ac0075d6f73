"""The low-precision benchmark's bookkeeping (no timings are asserted: speed lives in the benchmark itself)."""

from __future__ import annotations

import pytest
import torch

from adamlab.bench import memory


@pytest.fixture(scope="module")
def report():
    return memory.measure(numel=1 << 16, repeats=1)


def test_state_bytes_per_param_come_from_the_state_tensors(report):
    rows = report["cases"]["fp32_params"]["rows"]
    assert rows["adamlab fp32 state"]["state_bytes_per_param"] == 8.0
    assert rows["adamlab bf16 state"]["state_bytes_per_param"] == 4.0
    assert rows["adamlab 8-bit state"]["state_bytes_per_param"] == 2 * (1 + 4 / 256)
    assert report["cases"]["bf16_params"]["rows"]["adamlab bf16 state"]["state_bytes_per_param"] == 4.0


def test_each_ceiling_moves_the_bytes_of_its_storage(report):
    rows = report["cases"]["fp32_params"]["rows"]
    assert [rows[f"ceiling {b}"]["bytes_per_param"] for b in ("28 B", "20 B", "16.06 B")] == [28, 20, 16 + 16 / 256]
    assert report["cases"]["bf16_params"]["rows"]["ceiling 14 B"]["bytes_per_param"] == 14


def test_the_ceiling_changes_nothing():
    p = torch.randn(5000)
    p.grad = torch.randn(5000)
    before = p.clone()
    ceiling = memory.Ceiling([p], 1)
    ceiling.step()
    assert torch.equal(p, before)


def test_every_target_is_reported_with_its_ratio(report):
    assert len(report["targets"]) == 5
    assert all(t["met"] == (t["ratio"] >= t["minimum"]) for t in report["targets"])
    assert "Targets:" in "\n".join(memory.report_lines(report))


def test_bad_arguments_are_refused_naming_the_flag(capsys):
    with pytest.raises(SystemExit):
        memory.main(["--repeats", "0"])
    assert "--repeats" in capsys.readouterr().err
