"""C7 (low-precision state): the quick run end to end, memory and the one-step check against their oracles, the
paper's dynamic map, and each part's verdict flipping where its criterion says."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from labcheck import assert_well_formed, part_verdicts, quick_outcome

from adamlab.lab.claims.c3_warmup.transformer import TinyGPT, char_data
from adamlab.lab.claims.c7_low_precision import claim as c7
from adamlab.lab.claims.c7_low_precision import dynamic_map, one_step, training
from adamlab.lab.framework.claim import Context


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    return quick_outcome(c7.CLAIM, tmp_path_factory)


@pytest.mark.slow  # the quick run: seconds
def test_quick_run_is_well_formed_and_judges_only_the_one_step_check(outcome):
    assert_well_formed(outcome)
    assert [f.path.name for f in outcome.figures] == ["c7_low_precision.png"]
    assert len(outcome.tables) == 3
    # one seed and a few steps decide nothing about training; the one-step check needs no long run
    assert part_verdicts(c7.CLAIM, outcome.metrics) == {"lm": "not tested", "digits": "not tested",
                                                        "one_step": "reproduced"}


def eight_bit_bytes(shapes) -> float:
    """State bytes per param, counted from the shapes: tensors of 4096+ elements keep two 1-byte codes per value
    and two fp32 scales per block of 256; smaller ones two fp32 moments."""
    total = count = 0
    for shape in shapes:
        n = int(np.prod(shape))
        total += 2 * n + 2 * 4 * -(-n // 256) if n >= 4096 else 8 * n
        count += n
    return total / count


@pytest.mark.slow  # the quick run: seconds
def test_every_way_runs_on_both_tasks_and_reports_its_memory(outcome):
    m = outcome.metrics
    lm_model = TinyGPT(char_data().vocab_size, context=c7.QUICK.lm_context, d_model=c7.QUICK.lm_width)
    shapes = {"lm": [p.shape for p in lm_model.parameters()],
              "digits": [p.shape for p in training.digits_model(c7.QUICK.digits_hidden).parameters()]}
    for key in ("lm", "digits"):
        ways = m[key]["ways"]
        assert list(ways) == list(training.WAYS)
        for v in ways.values():
            assert len(v["final_val_loss"]) == 1 and v["final_val_loss"][0] > 0
        assert ways["fp32 state"]["state_bytes_per_param"] == 8.0
        assert ways["bf16 state"]["state_bytes_per_param"] == 4.0
        assert ways["8-bit state"]["state_bytes_per_param"] == pytest.approx(eight_bit_bytes(shapes[key]))
        assert ways["bf16 params, nearest"]["param_bytes_per_param"] == 2.0
        assert ways["bf16 params, Kahan"]["state_bytes_per_param"] == 8.0 + 2.0  # the bf16 compensation buffer
        assert m[key]["gaps"]["fp32 state"] == 0.0


def test_summaries_follow_numpy():
    rng = np.random.default_rng(0)
    losses = {w: 2 + 0.01 * rng.standard_normal(3) for w in training.WAYS}
    results = [{"task": "lm", "way": w, "seed": s, "final_val_loss": float(x[s]), "curve": [1.0, 0.5],
                "state_bytes_per_param": 8.0, "param_bytes_per_param": 4.0, "full_precision_state": 0}
               for w, x in losses.items() for s in range(3)]
    s = training.summarise(results, "lm")
    base = losses["fp32 state"]
    assert s["tolerance"] == pytest.approx(max(np.std(base, ddof=1), 0.01 * base.mean()))
    for w, x in losses.items():
        assert s["gaps"][w] == pytest.approx(x.mean() - base.mean())
        assert s["ways"][w]["paired_gaps"] == pytest.approx((x - base).tolist())


# ---------------------------------------------------------------- the one-step check


def test_block_errors_are_per_block_relative_norms():
    want = torch.randn(600, dtype=torch.float64)
    want[256:512] = 0  # an all-zero block has no relative error: it is left out
    got = want + 0.01 * torch.randn(600, dtype=torch.float64)
    blocks = [(0, 256), (512, 600)]
    expected = [np.linalg.norm((got - want)[a:b]) / np.linalg.norm(want[a:b]) for a, b in blocks]
    assert one_step.block_errors(got, want) == pytest.approx(expected, rel=1e-12)


@pytest.mark.slow  # the quick run: seconds
def test_the_one_step_check_measures_the_codes_against_torch(outcome):
    check = outcome.metrics["one_step"]
    # the 8-bit step stores its fp32 moments through the codes, so its error is the codes' round trip
    for name in ("exp_avg", "exp_avg_sq"):
        assert check[f"step_{name}"]["median"] == pytest.approx(check[f"ours_{name}"]["median"], rel=1e-3)
    assert check["step_update"]["max"] < 1e-5  # the step itself used the same (unrounded) moments as torch
    assert check["ours_update"]["median"] < check["map_update"]["median"]


def test_the_dynamic_map_has_256_levels_with_zero_and_one():
    for signed in (True, False):
        table = dynamic_map.levels(signed)
        assert table.numel() == 256 and len(set(table.tolist())) == 256
        assert 0.0 in table.tolist() and table.max() == 1.0
    assert dynamic_map.levels(True).min() < 0 and dynamic_map.levels(False).min() == 0
    x = torch.randn(1024, dtype=torch.float64)
    q = dynamic_map.quantize(x, True)
    absmax = x.view(-1, 256).abs().amax(1).repeat_interleave(256)
    table = dynamic_map.levels(True)
    nearest = table[(x / absmax).unsqueeze(1).sub(table).abs().argmin(1)] * absmax  # the nearest level, by search
    assert torch.allclose(q, nearest, rtol=1e-12, atol=0)


# ---------------------------------------------------------------- each part flips where its criterion says


def decided(outcome, tol: float = 0.01, **gaps) -> dict:
    """The quick run's metrics, made a full-size run whose ways all sit at fp32 state and nearest stalls."""
    m = copy.deepcopy(outcome.metrics)
    m["settings"] = {"lm_steps": c7.MIN_STEPS, "digits_steps": c7.MIN_STEPS}
    for key in ("lm", "digits"):
        m[key]["seeds"] = c7.MIN_SEEDS
        m[key]["tolerance"] = tol
        m[key]["gaps"] = {w: 0.0 for w in training.WAYS} | {c7.STALLING: 2 * tol}
    for key, changes in gaps.items():
        m[key]["gaps"].update(changes)
    return m


@pytest.mark.slow  # the quick run: seconds
def test_the_claim_holds_when_formats_reproduce_and_nearest_stalls(outcome):
    assert set(part_verdicts(c7.CLAIM, decided(outcome)).values()) == {"reproduced"}


@pytest.mark.parametrize("key", ["lm", "digits"])
@pytest.mark.parametrize("way", c7.REPRODUCING)
@pytest.mark.slow  # the quick run: seconds
def test_a_way_outside_the_tolerance_does_not_reproduce(outcome, key, way):
    other = "digits" if key == "lm" else "lm"
    for gap, verdict in ((0.0099, "reproduced"), (0.0101, "not reproduced"), (-0.0101, "not reproduced")):
        parts = part_verdicts(c7.CLAIM, decided(outcome, **{key: {way: gap}}))
        assert parts[key] == verdict and parts[other] == "reproduced"


@pytest.mark.parametrize("key", ["lm", "digits"])
@pytest.mark.slow  # the quick run: seconds
def test_nearest_rounding_must_fall_behind(outcome, key):
    assert part_verdicts(c7.CLAIM, decided(outcome, **{key: {c7.STALLING: 0.0099}}))[key] == "not reproduced"
    assert part_verdicts(c7.CLAIM, decided(outcome, **{key: {c7.STALLING: 0.0101}}))[key] == "reproduced"


@pytest.mark.parametrize("name", ["exp_avg", "exp_avg_sq"])
@pytest.mark.slow  # the quick run: seconds
def test_a_large_one_step_error_fails_the_check(outcome, name):
    m = decided(outcome)
    limit = c7.STEP_MEDIAN_MAX[name]
    m["one_step"][f"step_{name}"]["median"] = limit * 0.99
    assert part_verdicts(c7.CLAIM, m)["one_step"] == "reproduced"
    m["one_step"][f"step_{name}"]["median"] = limit * 1.01
    assert part_verdicts(c7.CLAIM, m)["one_step"] == "not reproduced"


@pytest.mark.parametrize("key", ["lm", "digits"])
@pytest.mark.slow  # the quick run: seconds
def test_too_few_seeds_or_steps_decide_nothing(outcome, key):
    m = decided(outcome)
    m[key]["seeds"] = c7.MIN_SEEDS - 1
    assert part_verdicts(c7.CLAIM, m)[key] == "not tested"
    m = decided(outcome)
    m["settings"][c7.STEPS_KEY[key]] = c7.MIN_STEPS - 1
    assert part_verdicts(c7.CLAIM, m)[key] == "not tested"


def test_the_full_settings_meet_the_claims_minimums():
    """claims.md: 3+ paired seeds per task; and long enough runs for the judges to decide."""
    assert c7.FULL.lm_seeds >= c7.MIN_SEEDS and c7.FULL.digits_seeds >= c7.MIN_SEEDS
    assert c7.FULL.lm_steps >= c7.MIN_STEPS and c7.FULL.digits_steps >= c7.MIN_STEPS


@pytest.mark.slow
def test_full_run_verdicts_follow_the_per_seed_losses(tmp_path):
    """The full run, re-judged by hand from its per-seed losses with numpy: the tolerance, the gaps, the stall."""
    m = c7.CLAIM.run(Context(tmp_path, quick=False, seed=0)).metrics
    expected = {}
    for key, seeds in (("lm", c7.FULL.lm_seeds), ("digits", c7.FULL.digits_seeds)):
        losses = {w: np.array(v["final_val_loss"]) for w, v in m[key]["ways"].items()}
        assert all(len(x) == seeds for x in losses.values())
        base = losses["fp32 state"]
        tol = max(base.std(ddof=1), 0.01 * base.mean())
        gaps = {w: x.mean() - base.mean() for w, x in losses.items()}
        holds = all(abs(gaps[w]) <= tol for w in c7.REPRODUCING) and gaps[c7.STALLING] > tol
        expected[key] = "reproduced" if holds else "not reproduced"
    check = m["one_step"]
    expected["one_step"] = ("reproduced" if check["step_exp_avg"]["median"] < 0.02
                            and check["step_exp_avg_sq"]["median"] < 0.01 else "not reproduced")
    assert part_verdicts(c7.CLAIM, m) == expected
