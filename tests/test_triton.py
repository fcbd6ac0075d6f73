"""The Triton backend, run by Triton's interpreter on CPU tensors (conftest sets TRITON_INTERPRET=1).

The kernel is printed from the same trace as the C loop and emits only
exactly rounded operations, so on the same inputs it must give the C loop's
bits: every configuration of the case table, in every dtype, over 20 steps
with the lr changing each step. Against the reference path and torch.optim
the foundation's tolerances apply. The interpreter checks indexing, masking
and the formula as written; which instructions a GPU runs is checked by
reading the generated source here, and by benchmarks/gpu_check.py on a GPU.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from cases import ALL_CASES, TORCH_CASES, by_name, lr_multiplier, params, rel_diff, set_lr, tiered, traced_programs

import adamlab

pytest.importorskip("triton")
from adamlab.algorithms import base as algorithms_base  # noqa: E402
from adamlab.backends import dispatch, triton_launch, triton_print  # noqa: E402

if not triton_launch.interpreted():
    pytest.skip("Triton's interpreter is off (TRITON_INTERPRET=1 before triton is imported)", allow_module_level=True)

DTYPES = [torch.float64, torch.float32, torch.float16, torch.bfloat16]
STEPS = 20
SIZE = 300  # one program and one masked block per tensor: the interpreter runs each operation in Python
# as tests/test_fused.py (reference path) and tests/test_parity.py (torch.optim)
REFERENCE_TOLERANCE = {torch.float64: 1e-12, torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}
TORCH_TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}
CHUNK, BLOCK = triton_launch.INTERPRETER["chunk"], triton_launch.INTERPRETER["block"]


def trajectory(make, dtypes=DTYPES, sizes=(SIZE,), steps=STEPS, grad_layout=lambda g: g, amp=None):
    """Params, grads and states after `steps` steps of seeded random gradients, the lr changing each step.

    ``amp``: a function of the step number giving (grad_scale, found_inf) to hand the optimizer, as
    torch.amp.GradScaler does (the gradients are then multiplied by grad_scale).
    """
    gen = torch.Generator().manual_seed(0)
    ps = [torch.randn(n, generator=gen).to(dtype).requires_grad_() for dtype in dtypes for n in sizes]
    opt = make(ps)
    base = opt.param_groups[0]["lr"]
    for t in range(1, steps + 1):
        set_lr(opt, base * lr_multiplier(t))
        scale = 1.0
        if amp is not None:
            opt.grad_scale, opt.found_inf = amp(t)
            scale = float(opt.grad_scale)
        for p in ps:
            p.grad = grad_layout((torch.randn(p.shape, generator=gen) * scale).to(p.dtype))
        opt.step()
    return ps, [opt.state[p] for p in ps], opt


def assert_bitwise(got, want) -> None:
    (ps, states, _), (ref_ps, ref_states, _) = got, want
    for p, q in zip(ps, ref_ps):
        assert p.dtype == q.dtype and torch.equal(p, q), f"param ({p.dtype}) differs"
        assert torch.equal(p.grad, q.grad), "grad differs"
    for st, ref in zip(states, ref_states):
        assert set(st) == set(ref)
        for key in ref:
            assert st[key].dtype == ref[key].dtype and torch.equal(st[key], ref[key]), key


def assert_close(got, want, tolerance) -> None:
    (ps, states, _), (ref_ps, ref_states, _) = got, want
    for p, q, st, ref in zip(ps, ref_ps, states, ref_states):
        assert rel_diff([p], [q]) <= tolerance[p.dtype]
        for key in ref:
            assert rel_diff([st[key]], [ref[key].to(st[key].dtype)]) <= tolerance[p.dtype], key


def triton(case, **kw):
    return lambda ps: case.make(ps, backend="triton", lr=case.lr * 0.1, **kw)


def c_loop(case, **kw):
    return lambda ps: case.make(ps, backend="c", lr=case.lr * 0.1, **kw)


@pytest.mark.parametrize("case", tiered(ALL_CASES))
def test_triton_equals_the_c_loop_bit_for_bit(case):
    """All four dtypes in one optimizer (one launch per dtype per step), 20 steps; then the tolerances."""
    got = trajectory(triton(case))
    assert_bitwise(got, trajectory(c_loop(case)))
    assert_close(got, trajectory(lambda ps: case.make(ps, fused=False, lr=case.lr * 0.1)), REFERENCE_TOLERANCE)
    if case in TORCH_CASES:  # the same gradients; compared in fp64 and fp32 (torch keeps half state in half)
        want = trajectory(lambda ps: case.make_torch(ps, lr=case.lr * 0.1))
        assert_close(tuple(x[:2] for x in got[:2]) + (None,), want, TORCH_TOLERANCE)


LAYOUT_CASES = [by_name(n) for n in ("adamw_amsgrad", "radam", "sgd_nesterov", "rmsprop_centered_momentum")]
SIZES = [0, (), 1, BLOCK - 1, BLOCK, BLOCK + 1, CHUNK - 1, CHUNK + 3, 2 * CHUNK + BLOCK]


@pytest.mark.parametrize("case", params(LAYOUT_CASES))
def test_chunk_and_block_edges(case):
    """An empty tensor, a 0-d param, and sizes around the block and the work-item chunk."""
    dtypes = [torch.float32, torch.bfloat16]
    got = trajectory(triton(case), dtypes=dtypes, sizes=SIZES, steps=3)
    assert_bitwise(got, trajectory(c_loop(case), dtypes=dtypes, sizes=SIZES, steps=3))
    assert got[0][1].dim() == 0 and not torch.equal(got[0][1], trajectory(triton(case), dtypes, SIZES, 0)[0][1])


def transposed(g):
    return g.reshape(40, -1).t().contiguous().t().reshape(g.shape) if g.numel() % 40 == 0 else g


def test_transposed_grads_follow_the_element():
    case = by_name("adamw")
    plain = trajectory(triton(case), dtypes=[torch.float32], sizes=[1200], steps=3)
    strided = trajectory(triton(case), dtypes=[torch.float32], sizes=[1200], steps=3, grad_layout=transposed)
    assert all(torch.equal(a, b) for a, b in zip(plain[0], strided[0]))


@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_two_thousand_tensors_take_one_launch(monkeypatch):
    calls, real = [], triton_launch.Launch.__call__
    counted = lambda self, *a: calls.append(len(self.work)) or real(self, *a)  # noqa: E731
    monkeypatch.setattr(triton_launch.Launch, "__call__", counted)
    sizes = [1 + k % 5 for k in range(2000)]
    make = lambda ps: adamlab.SGD(ps, lr=0.1, backend="triton")  # noqa: E731
    got = trajectory(make, dtypes=[torch.float32], sizes=sizes, steps=1)
    assert calls == [2000]
    assert_bitwise(got, trajectory(lambda ps: adamlab.SGD(ps, lr=0.1, backend="c"), [torch.float32], sizes, 1))


# ------------------------------------------------------------------ AMP and capturable


def amp_with_overflow_at(*bad_steps):
    return lambda t: (torch.tensor(1024.0), torch.tensor(1.0 if t in bad_steps else 0.0))


@pytest.mark.parametrize("case", params([by_name(n) for n in ("adamw", "nadam", "radam", "sgd_momentum")]))
def test_amp_unscales_and_skips_on_the_device(case):
    """grad_scale divides the grads inside the kernel (written back unscaled); a found_inf step changes nothing.

    The C loop reads found_inf on the host; the device step only on the device (counters there too).
    """
    amp = amp_with_overflow_at(2, 5)
    got = trajectory(triton(case), dtypes=[torch.float32, torch.bfloat16], steps=6, amp=amp)
    assert_bitwise(got, trajectory(c_loop(case), dtypes=[torch.float32, torch.bfloat16], steps=6, amp=amp))
    for st in got[1]:
        if "step" in st:
            assert float(st["step"]) == 4.0  # six steps, two skipped


def test_a_skipped_step_writes_nothing():
    case = by_name("adamw_amsgrad")
    ps, states, opt = trajectory(triton(case), dtypes=[torch.float32], steps=2)
    before = [p.detach().clone() for p in ps], [{k: v.clone() for k, v in st.items()} for st in states]
    for p in ps:
        p.grad = torch.randn_like(p)
    opt.grad_scale, opt.found_inf = torch.tensor(2.0), torch.tensor(1.0)
    opt.step()
    assert opt.last_step_skipped
    assert all(torch.equal(p, q) for p, q in zip(ps, before[0]))
    assert all(torch.equal(st[k], old[k]) for st, old in zip(states, before[1]) for k in old)


CAPTURABLE = [c for c in ALL_CASES if "capturable" in getattr(adamlab, c.optimizer).__signature__.parameters]


@pytest.mark.parametrize("case", params(CAPTURABLE))
def test_capturable_computes_the_scalars_from_device_counters(case):
    """capturable=True: counters are float32 tensors beside the params, the plan runs on them.

    The bias corrections are then torch's pow on the device instead of Python's, which may differ in
    the last bit of an fp64 scalar; rounded to fp32 they agree, so fp32 params keep the C loop's bits.
    """
    got = trajectory(triton(case, capturable=True), dtypes=[torch.float32], steps=8)
    assert_bitwise(got, trajectory(c_loop(case), dtypes=[torch.float32], steps=8))
    wide = trajectory(triton(case, capturable=True), dtypes=[torch.float64], steps=8)
    assert_close(wide, trajectory(c_loop(case), dtypes=[torch.float64], steps=8), {torch.float64: 1e-14})
    step = got[1][0]["step"]
    assert step.dtype == torch.float32 and step.device == got[0][0].device and float(step) == 8


def test_a_tensor_lr_changes_without_a_new_kernel():
    """A Tensor lr read on the device each step gives the bits of the same lr passed as a float."""
    case = by_name("adamw_amsgrad")

    def run(tensor_lr: bool):
        gen = torch.Generator().manual_seed(0)
        ps = [torch.randn(SIZE, generator=gen).requires_grad_()]
        lr = torch.tensor(case.lr, dtype=torch.float64)
        opt = case.make(ps, backend="triton", capturable=True, lr=lr) if tensor_lr else case.make(ps, backend="c")
        for t in range(1, 6):
            lr.fill_(case.lr * lr_multiplier(t))
            if not tensor_lr:
                set_lr(opt, float(lr))
            ps[0].grad = torch.randn(SIZE, generator=gen)
            opt.step()
            if t == 1:
                kernels = len(triton_launch._kernels)
        return ps[0], kernels

    (got, kernels), (want, _) = run(True), run(False)
    assert len(triton_launch._kernels) == kernels and torch.equal(got, want)


def test_a_device_step_reads_no_tensor_on_the_host(monkeypatch):
    """No .item(), bool(), float() or .tolist() on any tensor during a capturable AMP step with a Tensor lr.

    On a GPU each of those would wait for the device (and break CUDA-graph capture).
    """
    p = torch.randn(SIZE, requires_grad=True)
    p.grad = torch.randn(SIZE)
    lr = torch.tensor(1e-3)
    opt = adamlab.AdamW([p], lr=lr, backend="triton", capturable=True, weight_decay=0.1)
    opt.grad_scale, opt.found_inf = torch.tensor(8.0), torch.tensor(0.0)
    opt.step()  # the first step creates state and counters

    def trap(*args, **kwargs):
        raise AssertionError("a tensor was read on the host")

    # here the "device" is the CPU, whose tensors the decay-factor check may read: treat them as a GPU's
    monkeypatch.setattr(algorithms_base, "_on_host", lambda x: not isinstance(x, torch.Tensor))
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, trap)
    lr.fill_(2e-3)
    opt.step()
    monkeypatch.undo()
    assert float(opt.state[p]["step"]) == 2


def test_gradscaler_end_to_end_matches_torch_fused():
    """torch.amp.GradScaler drives the step (grad_scale, found_inf), with an inf injected at step 3."""
    def train(make):
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 4))
        opt, scaler = make(model.parameters()), torch.amp.GradScaler("cpu", init_scale=2.0**10)
        x, y = torch.randn(32, 8), torch.randn(32, 4)
        for t in range(6):
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y) * (float("inf") if t == 3 else 1.0)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        return list(model.parameters()), opt

    got, opt = train(lambda ps: adamlab.AdamW(ps, lr=1e-2, backend="triton"))
    want, torch_opt = train(lambda ps: torch.optim.AdamW(ps, lr=1e-2, fused=True))
    assert rel_diff(got, want) <= 1e-6
    assert [float(s["step"]) for s in opt.state.values()] == [float(s["step"]) for s in torch_opt.state.values()]


# ------------------------------------------------------------------ what the kernel is made of


FP64_ONLY = re.compile(r"@triton\.jit\ndef (div_f64|sqrt_f64)\(.*?\n\n\n", re.S)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: str(d)[6:])
def test_the_source_uses_only_exactly_rounded_operations(dtype):
    """No approximate division or square root, no float-to-half cast: only fma, div_rn, sqrt_rn, integer packing."""
    for case in ALL_CASES:
        for _, program, codecs in traced_programs(case, str(dtype)[6:]):
            source = triton_print.source(program, codecs)
            helpers = FP64_ONLY.findall(source)
            assert helpers == ["div_f64", "sqrt_f64"]
            for body in FP64_ONLY.finditer(source):
                assert "tl.static_assert" in body.group(0) and "tl.float64" in body.group(0)
            rest = FP64_ONLY.sub("", source)
            assert not re.search(r"(?<!/)/(?!/)", rest), "a bare division"
            for banned in ("tl.sqrt(", "tl.rsqrt(", "tl.fdiv(", "tl.float16", "tl.bfloat16"):
                assert banned not in rest, banned
            if program.element_lines() and any(ln.op == "div" for ln in program.element_lines()):
                assert ("tl.math.div_rn(" if dtype != torch.float64 else "div_f64(") in rest
            compile(source, "kernel", "exec")


def test_every_launch_turns_fma_contraction_off(monkeypatch):
    seen = []
    real = triton_launch.Launch.args
    monkeypatch.setattr(triton_launch.Launch, "args", lambda self, *a: seen.append(real(self, *a)) or seen[-1])
    trajectory(triton(by_name("adam")), dtypes=[torch.float32], steps=1)
    assert seen and all(kw["enable_fp_fusion"] is False for _, kw in seen)


def test_a_step_allocates_nothing_the_size_of_the_model():
    """Beyond its tables, a step creates no tensor near a param's size (the interpreter computes in numpy)."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Sizes(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (list, tuple)) else [out]:
                if isinstance(t, torch.Tensor) and func.__name__ not in ("detach.default", "alias.default"):
                    Sizes.largest = max(Sizes.largest, t.numel())
            return out

    n = 4 * CHUNK
    ps = [torch.randn(n, requires_grad=True) for _ in range(3)]
    opt = adamlab.AdamW(ps, backend="triton", capturable=True)
    for first in (True, False):
        for p in ps:
            p.grad = torch.randn(n)
        if first:
            opt.step()  # creates the state: the only step that allocates param-sized tensors
            continue
        with Sizes():
            opt.step()
    assert 0 < Sizes.largest < n // 8  # the tables: a few numbers per tensor and per chunk


# ------------------------------------------------------------------ choosing a backend


def test_choosing_a_backend():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert dispatch.choose(None, None, False, cpu) == "c"  # the C loop stays the CPU default
    assert dispatch.choose("triton", None, False, cpu) == "triton"  # the interpreter takes CPU tensors
    assert dispatch.choose("triton", True, False, cpu) == "triton"
    with pytest.raises(ValueError, match="fused=False"):
        dispatch.choose("triton", False, False, cpu)
    with pytest.raises(ValueError, match="TRITON_INTERPRET"):
        dispatch.choose("triton", None, False, cuda)  # the interpreter cannot run CUDA tensors
    with pytest.raises(RuntimeError, match="fused=True"):
        dispatch.choose(None, True, False, cuda)
    with pytest.raises(ValueError, match="differentiable"):
        dispatch.choose("triton", None, True, cpu)
    with pytest.raises(ValueError, match="backend must be one of"):
        dispatch.choose("cuda", None, False, cpu)


def run_python(code: str, **env):
    import os

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **env})


@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_the_library_imports_and_steps_without_triton():
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch, adamlab\n"
        "p = torch.randn(5, requires_grad=True); p.grad = torch.randn(5)\n"
        "adamlab.AdamW([p]).step()\n"
        "try:\n    adamlab.AdamW([p], backend='triton').step()\nexcept ValueError as e:\n    print(e)\n"
    )
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert "adamlab[gpu]" in out.stdout


@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_without_the_interpreter_cpu_tensors_are_refused():
    code = (
        "import torch, adamlab\n"
        "p = torch.randn(5, requires_grad=True); p.grad = torch.randn(5)\n"
        "opt = adamlab.AdamW([p], backend='triton')\n"
        "try:\n    opt.step()\nexcept ValueError as e:\n    print(e)\n"
        "print(float(opt.state[p]['step']) if opt.state[p] else 'unchanged')\n"
    )
    out = run_python(code, TRITON_INTERPRET="0")
    assert out.returncode == 0, out.stderr
    assert "TRITON_INTERPRET=1" in out.stdout and "unchanged" in out.stdout


# ------------------------------------------------------------------ the half-precision codecs

CODEC_KERNEL = '''
@triton.jit
def convert(src, dst_bf16, dst_fp16, back_bf16, back_fp16, N: tl.constexpr):
    i = tl.arange(0, N)
    x = tl.load(src + i).to(tl.float32, bitcast=True)
    tl.store(dst_bf16 + i, float_to_bf16(x))
    tl.store(dst_fp16 + i, float_to_fp16(x))
    h = tl.load(dst_fp16 + i)
    tl.store(back_bf16 + i, bf16_to_float(tl.load(dst_bf16 + i)).to(tl.uint32, bitcast=True))
    tl.store(back_fp16 + i, fp16_to_float(h).to(tl.uint32, bitcast=True))
'''


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy, on the NaN patterns
def test_the_integer_half_conversions_round_as_torch(tmp_path):
    """float -> bf16/fp16 -> float through the kernels' integer codecs, against torch's own casts.

    Random bit patterns (every exponent, denormals, infinities, NaNs) and the halfway cases, where
    round-to-nearest-even decides (Triton's interpreter truncates its own float-to-bf16 cast).
    """
    import importlib.util

    from adamlab.backends.storage import TRITON_PRELUDE

    path = tmp_path / "codec_kernel.py"
    path.write_text("import triton\nimport triton.language as tl\n" + TRITON_PRELUDE + CODEC_KERNEL)
    spec = importlib.util.spec_from_file_location("codec_kernel", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    n = 1 << 16
    gen = torch.Generator().manual_seed(0)
    bits = torch.randint(-(2**31), 2**31, (n,), generator=gen, dtype=torch.int64).to(torch.int32)
    ties = torch.tensor([1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-11, 1 + 3 * 2**-11, 3.14, 0.26914, 65504.0, 65520.0,
                         2.0**-24, 2.0**-25, 3 * 2.0**-26, 1e-45, 0.0, -0.0], dtype=torch.float32).view(torch.int32)
    bits[: len(ties)] = ties
    x = bits.view(torch.float32)
    out = [torch.empty(n, dtype=torch.int16), torch.empty(n, dtype=torch.int16),
           torch.empty(n, dtype=torch.int32), torch.empty(n, dtype=torch.int32)]
    module.convert[(1,)](bits, *out, N=n)
    for half, back, dtype in ((out[0], out[2], torch.bfloat16), (out[1], out[3], torch.float16)):
        want = x.to(dtype)
        got = half.view(dtype)
        nan = torch.isnan(want)
        assert torch.equal(torch.isnan(got), nan)
        assert torch.equal(got[~nan].view(torch.int16), want[~nan].view(torch.int16)), dtype
        assert torch.equal(back.view(torch.float32)[~nan], want[~nan].float())  # widening is exact


# ------------------------------------------------------------------ compiled for a GPU, without one

COMPILE_PTX = Path(__file__).resolve().parent / "scripts" / "compile_ptx.py"


def compiled_ptx_report(*args) -> dict:
    out = run_python_file(COMPILE_PTX, *args)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_python_file(path, *args):
    import os

    env = {**os.environ, "TRITON_INTERPRET": "0"}  # the real compiler, for an sm_90 target
    return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, env=env, timeout=1200)


@pytest.mark.slow  # a subprocess or a whole run: seconds
def test_compiled_kernels_use_only_exactly_rounded_instructions():
    """PTX for sm_90 of a sample of kernels: no approximate division or root, no flush to zero, and every
    add, sub and mul carries an explicit rounding, so ptxas cannot contract them into an fma."""
    report = compiled_ptx_report()
    assert report["kernels"] >= 20 and report["inexact"] == {}
    assert report["vector_loads_when_aligned"]  # the alignment hint gives 16-byte loads


@pytest.mark.slow
def test_every_generated_kernel_compiles_to_exact_ptx():
    """Every distinct kernel of the case table (host and device steps, AMP, four dtypes)."""
    report = compiled_ptx_report("--all")
    assert report["kernels"] > 150 and report["inexact"] == {}


@pytest.mark.parametrize("storage, oracle", [(dict(state_precision="8bit"), "reference"),
                                             (dict(param_update="stochastic"), "reference"),
                                             (dict(state_precision="bf16"), "c")])
def test_low_precision_storage_on_the_triton_backend(storage, oracle):
    """bf16 state is a plain dtype, printed by Triton as by C (the same bits); 8-bit state and bf16
    rounding have C and torch forms only, so a Triton bucket leaves them to the reference backend."""
    def run(backend):
        gen = torch.Generator().manual_seed(0)
        p = torch.randn(5000, generator=gen).to(torch.bfloat16 if "param_update" in storage else torch.float32)
        opt = adamlab.AdamW([p], lr=1e-2, backend=backend, **storage)
        for _ in range(3):
            p.grad = torch.randn(5000, generator=gen).to(p.dtype)
            opt.step()
        return p, opt.state[p]

    (a, sa), (b, sb) = run("triton"), run(oracle)
    assert torch.equal(a, b)
    for key, value in sb.items():
        assert torch.equal(sa[key], value), key


@pytest.mark.parametrize("storage", [dict(state_precision="8bit"), dict(param_update="kahan")])
def test_fused_triton_refuses_storage_it_has_no_form_of(storage):
    p = torch.randn(5000).to(torch.bfloat16)
    p.grad = torch.randn(5000).to(torch.bfloat16)
    with pytest.raises(RuntimeError, match="Triton backend has no form"):
        adamlab.AdamW([p], backend="triton", fused=True, **storage).step()
