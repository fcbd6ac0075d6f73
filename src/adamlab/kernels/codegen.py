"""Trace a rule from :mod:`adamlab.rules` into one C loop.

The rule is called with symbolic values instead of tensors. Each arithmetic
operation appends one line of C, so the generated loop body is the rule's own
algebra, in the rule's own order: there is no second copy of the math to keep
in sync. Scalar-only expressions are evaluated in double before the loop, as
torch evaluates them in Python floats; they are cast to the compute type where
they meet array elements, as torch casts a Python scalar argument.
"""

from __future__ import annotations

from types import SimpleNamespace

from ..rules import RULES, Config

# C storage type, and its load/store expressions, per torch dtype name
STORAGE = {
    "float64": ("double", "{x}", "{x}"),
    "float32": ("float", "{x}", "{x}"),
    "float16": ("uint16_t", "fp16_to_float({x})", "float_to_fp16({x})"),
    "bfloat16": ("uint16_t", "bf16_to_float({x})", "float_to_bf16({x})"),
}

PRELUDE = r"""
#include <stdint.h>
#include <string.h>
#include <math.h>
#include <stdlib.h>

static inline float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16; float f; memcpy(&f, &u, 4); return f;
}
static inline uint16_t float_to_bf16(float f) {  /* round to nearest even, NaN -> 0xffff, as torch */
    uint32_t u; memcpy(&u, &f, 4);
    uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)(((u & 0x7fffffffu) > 0x7f800000u) ? 0xffffu : rounded);
}
/* IEEE half <-> float with integer ops only, so the loop vectorises on any x86-64
   (after F. Giesen's branch-free conversions); round to nearest even, as torch. */
static inline float fp16_to_float(uint16_t h) {
    const uint32_t exp_mask = 0x7c00u << 13;
    uint32_t o = ((uint32_t)h & 0x7fffu) << 13;
    const uint32_t exp = o & exp_mask;
    o += (127u - 15u) << 23;
    const uint32_t inf_nan = o + ((128u - 16u) << 23);
    uint32_t sub_bits = o + (1u << 23), magic_bits = 113u << 23;
    float sub, magic; memcpy(&sub, &sub_bits, 4); memcpy(&magic, &magic_bits, 4);
    sub -= magic; memcpy(&sub_bits, &sub, 4);
    o = exp == exp_mask ? inf_nan : (exp == 0 ? sub_bits : o);
    o |= ((uint32_t)h & 0x8000u) << 16;
    float f; memcpy(&f, &o, 4); return f;
}
static inline uint16_t float_to_fp16(float x) {
    uint32_t f; memcpy(&f, &x, 4);
    const uint32_t sign = f & 0x80000000u; f ^= sign;
    const uint32_t magic_bits = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    float magic, t; memcpy(&magic, &magic_bits, 4); memcpy(&t, &f, 4);
    t += magic; uint32_t sub_bits; memcpy(&sub_bits, &t, 4);
    const uint32_t subnormal = sub_bits - magic_bits;
    const uint32_t normal = (f + ((uint32_t)(15 - 127) << 23) + 0xfffu + ((f >> 13) & 1u)) >> 13;
    const uint32_t big = f > (255u << 23) ? 0x7e00u : 0x7c00u;
    const uint32_t o = f >= ((127u + 16u) << 23) ? big : (f < (113u << 23) ? subnormal : normal);
    return (uint16_t)(o | (sign >> 16));
}
"""

KERNEL = r"""
typedef {ctype} T;
#define SQRT(x) {sqrt}(x)
#define FMA(a, b, c) {fma}(a, b, c)
#define MAXIMUM(a, b) maximum_nan(a, b)
static inline T maximum_nan(T a, T b) {{  /* torch.maximum: NaN wins */
    const T larger = a > b ? a : b;
    return (a != a) ? a : ((b != b) ? b : larger);
}}

void adamlab_step(int64_t n_tensors, const int64_t* numels, char** ptrs,
                  const double* sc, int n_threads, int64_t chunk) {{
{scalars}
    int64_t n_chunks = 0;
    for (int64_t i = 0; i < n_tensors; i++) n_chunks += (numels[i] + chunk - 1) / chunk;
    int64_t* owner = (int64_t*)malloc(sizeof(int64_t) * (n_chunks + 1));
    int64_t* first = (int64_t*)malloc(sizeof(int64_t) * (n_chunks + 1));
    for (int64_t i = 0, c = 0; i < n_tensors; i++)
        for (int64_t s = 0; s < numels[i]; s += chunk, c++) {{ owner[c] = i; first[c] = s; }}
    #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
    for (int64_t c = 0; c < n_chunks; c++) {{
        const int64_t i = owner[c], lo = first[c];
        const int64_t hi = lo + chunk < numels[i] ? lo + chunk : numels[i];
{pointers}
        for (int64_t j = lo; j < hi; j++) {{
{loads}
{body}
{stores}
        }}
    }}
    free(owner); free(first);
}}
"""


class Sym:
    """A traced value: a C variable that is either a per-element value or a scalar."""

    def __init__(self, tracer: "Tracer", name: str, elementwise: bool):
        self.tracer, self.name, self.elementwise = tracer, name, elementwise

    def _binary(self, other, op, reverse=False):
        a, b = (other, self) if reverse else (self, other)
        vec = _is_vec(a) or _is_vec(b)
        return self.tracer.emit(f"{_operand(a, vec)} {op} {_operand(b, vec)}", vec)

    def __add__(self, o): return self._binary(o, "+")
    def __radd__(self, o): return self._binary(o, "+", True)
    def __sub__(self, o): return self._binary(o, "-")
    def __rsub__(self, o): return self._binary(o, "-", True)
    def __mul__(self, o): return self._binary(o, "*")
    def __rmul__(self, o): return self._binary(o, "*", True)
    def __truediv__(self, o): return self._binary(o, "/")
    def __rtruediv__(self, o): return self._binary(o, "/", True)

    def __neg__(self):
        return self.tracer.emit(f"-{self.name}", self.elementwise)

    def sqrt(self):
        return self.tracer.emit(f"SQRT({self.name})" if self.elementwise else f"sqrt({self.name})", self.elementwise)

    def lerp(self, end, weight):
        """torch's CPU lerp: fma(w, b - a, a) for |w| < 0.5, else fma(w - 1, b - a, b).

        The branch depends on the scalar w only, so it is taken before the loop
        and the loop body stays branch-free (and vectorises).
        """
        small = self.tracer.emit(f"fabs({_operand(weight, False)}) < 0.5", False).name
        coeff = self.tracer.emit(f"{small} ? {_operand(weight, False)} : {_operand(weight, False)} - 1.0", False)
        diff = self.tracer.emit(f"{_operand(end, True)} - {_operand(self, True)}", True).name
        base = self.tracer.emit(f"{small} ? {_operand(self, True)} : {_operand(end, True)}", True).name
        return self.tracer.emit(f"FMA({_operand(coeff, True)}, {diff}, {base})", True)

    def add_scaled(self, other, alpha):
        """torch's add(alpha=): fma(other, alpha, self)."""
        return self.tracer.emit(f"FMA({_operand(other, True)}, {_operand(alpha, True)}, {_operand(self, True)})", True)

    def add_product(self, a, b, value):
        """torch's addcmul: fma(value * a, b, self)."""
        scaled = self.tracer.emit(f"{_operand(value, True)} * {_operand(a, True)}", True).name
        return self.tracer.emit(f"FMA({scaled}, {_operand(b, True)}, {_operand(self, True)})", True)

    def maximum(self, other):
        vec = _is_vec(self) or _is_vec(other)
        return self.tracer.emit(f"MAXIMUM({_operand(self, vec)}, {_operand(other, vec)})", vec)


def _is_vec(x) -> bool:
    return isinstance(x, Sym) and x.elementwise


def _operand(x, vec: bool) -> str:
    if isinstance(x, Sym):
        return f"(T){x.name}" if vec and not x.elementwise else x.name
    literal = f"({float(x)!r})"
    return f"((T){literal})" if vec else literal


class Tracer:
    def __init__(self):
        self.scalar_lines: list[str] = []
        self.body_lines: list[str] = []
        self.count = 0

    def emit(self, expr: str, elementwise: bool) -> Sym:
        name = f"t{self.count}"
        self.count += 1
        if elementwise:
            self.body_lines.append(f"            const T {name} = {expr};")
        else:
            self.scalar_lines.append(f"    const double {name} = {expr};")
        return Sym(self, name, elementwise)


def generate(cfg: Config, scalar_names: tuple[str, ...], param_dtype: str, state_dtype: str) -> str:
    """C source of ``adamlab_step`` for one config and dtype pair.

    ``ptrs`` holds, per tensor, the param, the grad, then each state tensor in
    ``cfg.state_names`` order.
    """
    tr = Tracer()
    scalars = SimpleNamespace()
    for k, name in enumerate(scalar_names):
        tr.scalar_lines.append(f"    const double s_{name} = sc[{k}];")
        setattr(scalars, name, Sym(tr, f"s_{name}", False))
    arrays = [("p", param_dtype), ("g", param_dtype)] + [(n, state_dtype) for n in cfg.state_names]
    pointers, loads, inputs = [], [], {}
    for k, (name, dtype) in enumerate(arrays):
        ctype, load, _ = STORAGE[dtype]
        pointers.append(f"        {ctype}* restrict a_{name} = ({ctype}*)ptrs[i * {len(arrays)} + {k}];")
        loads.append(f"            const T x_{name} = (T)({load.format(x=f'a_{name}[j]')});")
        inputs[name] = Sym(tr, f"x_{name}", True)
    state_in = {n: inputs[n] for n in cfg.state_names}
    new_p, new_state = RULES[cfg.algorithm](cfg, inputs["p"], inputs["g"], state_in, scalars)
    stores = []
    for name, value in [("p", new_p)] + [(n, new_state[n]) for n in cfg.state_names]:
        dtype = param_dtype if name == "p" else state_dtype
        store = STORAGE[dtype][2].format(x=_operand(value, True))
        stores.append(f"            a_{name}[j] = {store};")
    compute = "double" if param_dtype == "float64" else "float"
    return PRELUDE + KERNEL.format(
        ctype=compute,
        sqrt="sqrt" if compute == "double" else "sqrtf",
        fma="fma" if compute == "double" else "fmaf",
        scalars="\n".join(tr.scalar_lines),
        pointers="\n".join(pointers),
        loads="\n".join(loads),
        body="\n".join(tr.body_lines),
        stores="\n".join(stores),
    )
