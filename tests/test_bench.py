"""adamlab.bench: the ceiling kernel moves the step's bytes and changes nothing; the table hides nothing.

Speeds are never asserted here (the bench prints them, measured side by side);
these tests check what the bench computes and prints.
"""

from __future__ import annotations

import pytest
import torch

from adamlab.bench import cases, text
from adamlab.bench.ceiling import Traffic


def tensors(dtype, shapes=((70_000,), (3, 5), (40_000,), (1,))):
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn(s, generator=gen).to(dtype) for s in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen).to(dtype)
    return params


@pytest.mark.parametrize("dtype, states", [(torch.float32, 2), (torch.float32, 3), (torch.bfloat16, 2)])
def test_traffic_reads_and_writes_every_element_and_changes_nothing(dtype, states):
    """At zero the pass leaves every value bitwise as it was; adding g once shows it reached every element
    of every tensor and state, across chunk boundaries (70 000 > 2^15 elements)."""
    params = tensors(dtype)
    before = [p.clone() for p in params]
    traffic = Traffic(params, states)
    traffic.step()
    assert all(torch.equal(p, b) for p, b in zip(params, before))
    assert all(torch.count_nonzero(s) == 0 for st in traffic.states for s in st)
    traffic.step(zero=1.0)
    for p, b, st in zip(params, before, traffic.states):
        torch.testing.assert_close(p, truncated(b.float() + p.grad.float(), dtype), rtol=0, atol=0)
        for s in st:
            torch.testing.assert_close(s, p.grad.float(), rtol=0, atol=0)


def truncated(x: torch.Tensor, dtype) -> torch.Tensor:
    """fp32 to ``dtype`` as the kernel stores bf16: the upper 16 bits, no rounding (fp32 stays as it is)."""
    if dtype == torch.float32:
        return x
    return (x.view(torch.int32) >> 16).to(torch.int16).view(torch.bfloat16)


def test_traffic_refuses_mixed_or_other_dtypes():
    with pytest.raises(ValueError):
        Traffic(tensors(torch.float32) + tensors(torch.bfloat16), 2)
    with pytest.raises(ValueError):
        Traffic(tensors(torch.float16), 2)


def test_the_command_line_names_every_case_and_variant():
    import adamlab.bench

    assert adamlab.bench.CASE_KEYS == tuple(cases.cases(quick=True)) == tuple(cases.cases(quick=False))
    assert adamlab.bench.VARIANTS == tuple(cases.VARIANTS)


def test_quick_cases_say_what_they_run():
    quick, full = cases.cases(quick=True), cases.cases(quick=False)
    params = sum(s[0] for s in quick["c"].shapes)
    assert quick["c"].label == f"many small tensors of 1k-20k elements: 500 tensors, {params / 1e6:.1f}M params"
    assert len(full["c"].shapes) == 2000 and "2000 tensors" in full["c"].label
    assert quick["a"].shapes == [(8 * 2**20,)] and full["a"].shapes == [(32 * 2**20,)]
    assert "d_model 256, 2 layers" in quick["b"].label


def report(fraction: float) -> dict:
    mps = {"adamlab": 1000.0 * fraction, "torch-loop": 100.0, "torch-foreach": 200.0, "torch-fused": 900.0}
    row = {"case": "a", "variant": "adamw", "params": 33_554_432, "tensors": 1, "mparams_per_s": mps,
           "ratio_vs_torch_fused": mps["adamlab"] / 900, "ceiling_mparams_per_s": 1000.0,
           "adamlab_fraction_of_ceiling": fraction}
    return {"bandwidth_gb_per_s": {"triad": 27.5, "adam_traffic": 28.2}, "threads": 2, "torch": "2.13.0",
            "quick": False, "repeats": 10, "results": [row], "first_step": None,
            "cases": {"a": "one large tensor: 1 tensors, 33.6M params"},
            "rows_over_ceiling": ["a/adamw"] if fraction > 1 else []}


def test_the_table_prints_every_value_and_flags_a_row_over_the_ceiling():
    lines = text.report_lines(report(0.97))
    assert not any(line.startswith("warning") for line in lines)
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["case", "variant"])
    assert lines[header + 1].split() == ["a", "adamw", "33.6M", "1", "970", "100", "200", "900", "1.08x", "1000",
                                         "97%"]
    assert lines[-1] == "  case a: one large tensor: 1 tensors, 33.6M params"
    over = text.report_lines(report(1.06))
    assert any(line.startswith("warning: adamlab beat the measured ceiling in a/adamw") for line in over)


def test_the_command_line_names_every_compile_layout():
    import adamlab.bench
    from adamlab.bench import compiled

    assert adamlab.bench.COMPILE_LAYOUTS == tuple(compiled.LAYOUTS)
    assert [len(shapes()) for _, shapes in compiled.LAYOUTS.values()] == [6, 2 + 12 * 2 + 2, 200]


def compile_report() -> dict:
    def contender(ms, compilations):
        return {"warmup_s": 1.5, "step_ms": ms, "compilations": compilations}

    layout = {"label": "MLP", "params": 90_000, "tensors": 6,
              "graph_breaks": {"adamlab-compiled": 0, "torch-compiled": 2},
              "contenders": {"adamlab": contender(0.2, 0), "adamlab-compiled": contender(0.1, 2),
                             "torch": contender(0.4, 0), "torch-compiled": contender(0.5, 3)}}
    return {"torch": "2.13.0", "threads": 2, "repeats": 30, "train_steps": 12, "layouts": {"mlp": layout},
            "train_step": {"adamlab": {"first_steps_s": 3.0, "step_ms": 1.25}, "torch": {"first_steps_s": 2.0,
                                                                                        "step_ms": 1.5}}}


def test_the_compile_table_prints_every_value_and_each_ratio_to_its_own_eager_step():
    from adamlab.bench.compiled import report_lines

    lines = report_lines(compile_report())
    table = lines[:lines.index("compiled training step (forward, backward, opt.step, zero_grad), MLP 64-256-10:")]
    rows = {line.split()[0]: line.split()[1:] for line in table if line.startswith("  ") and len(line.split()) >= 5}
    assert rows["adamlab-compiled"] == ["0.100", "2.00x", "1.50", "2", "0"]
    assert rows["torch-compiled"] == ["0.500", "0.80x", "1.50", "3", "2"]
    assert rows["torch"] == ["0.400", "1.00x", "1.50", "0"]
    assert "  compiled adamlab vs compiled torch: 5.00x" in lines
    assert lines[-2:] == ["  adamlab  first 12 steps: 3.00 s, then 1.250 ms per step",
                          "  torch    first 12 steps: 2.00 s, then 1.500 ms per step"]
