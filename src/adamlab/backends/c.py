"""Print a traced program as one C loop over every tensor of a bucket.

All tensors are cut into fixed-size chunks that one OpenMP loop shares out,
so hundreds of small tensors cost no more than one large one; each element
is read once and written once. With one thread (or in a forked child, where
OpenMP cannot be used) the same body runs in a plain loop.
"""

from __future__ import annotations

from .storage import C_PRELUDE, CODECS
from .trace import Program

# Every chunk of a bucket's tensors, so one parallel loop shares out all of them (used by each C kernel).
C_CHUNKS = r"""
/* The (tensor, first element) of every chunk of `chunk` elements, tensor after tensor; the caller frees both. */
static int64_t chunk_table(int64_t n_tensors, const int64_t* numels, int64_t chunk, int64_t** owner,
                           int64_t** first) {
    int64_t n_chunks = 0;
    for (int64_t i = 0; i < n_tensors; i++) n_chunks += (numels[i] + chunk - 1) / chunk;
    *owner = (int64_t*)malloc(sizeof(int64_t) * (n_chunks + 1));
    *first = (int64_t*)malloc(sizeof(int64_t) * (n_chunks + 1));
    for (int64_t i = 0, c = 0; i < n_tensors; i++)
        for (int64_t s = 0; s < numels[i]; s += chunk, c++) { (*owner)[c] = i; (*first)[c] = s; }
    return n_chunks;
}
"""

KERNEL = r"""
typedef {ctype} T;
#define SQRT(x) {sqrt}(x)
#define FABS(x) {fabs}(x)
#define FMA(a, b, c) {fma}(a, b, c)
static inline T maximum_nan(T a, T b) {{  /* torch.maximum: NaN wins */
    const T larger = a > b ? a : b;
    return (a != a) ? a : ((b != b) ? b : larger);
}}
static inline double maximum_nan_d(double a, double b) {{
    const double larger = a > b ? a : b;
    return (a != a) ? a : ((b != b) ? b : larger);
}}

/* One chunk [lo, hi) of tensor i. The dispatcher guarantees that no two arrays overlap. */
static inline void chunk_step(int64_t i, int64_t lo, int64_t hi, char** ptrs, const double* sc) {{
{scalars}
{pointers}
    for (int64_t j = lo; j < hi; j++) {{
{loads}
{body}
{stores}
    }}
}}

void adamlab_step(int64_t n_tensors, const int64_t* numels, char** ptrs,
                  const double* sc, int n_threads, int64_t chunk) {{
    int64_t *owner, *first;
    const int64_t n_chunks = chunk_table(n_tensors, numels, chunk, &owner, &first);
    if (n_threads > 1) {{
        #pragma omp parallel for schedule(dynamic, 1) num_threads(n_threads)
        for (int64_t c = 0; c < n_chunks; c++) {{
            const int64_t i = owner[c], lo = first[c], hi = lo + chunk < numels[i] ? lo + chunk : numels[i];
            chunk_step(i, lo, hi, ptrs, sc);
        }}
    }} else {{
        for (int64_t c = 0; c < n_chunks; c++) {{
            const int64_t i = owner[c], lo = first[c], hi = lo + chunk < numels[i] ? lo + chunk : numels[i];
            chunk_step(i, lo, hi, ptrs, sc);
        }}
    }}
    free(owner); free(first);
}}
"""

# (elementwise form, scalar form) of each operation; {0}, {1}, {2} are the operands
OPS = {
    "add": ("{0} + {1}",) * 2,
    "sub": ("{0} - {1}",) * 2,
    "mul": ("{0} * {1}",) * 2,
    "div": ("{0} / {1}",) * 2,
    "neg": ("-{0}",) * 2,
    "sqrt": ("SQRT({0})", "sqrt({0})"),
    "abs": ("FABS({0})", "fabs({0})"),
    "fma": ("FMA({0}, {1}, {2})", "fma({0}, {1}, {2})"),
    "max": ("maximum_nan({0}, {1})", "maximum_nan_d({0}, {1})"),
    "lt": (None, "{0} < {1}"),
    "select": ("{0} ? {1} : {2}",) * 2,
}


def source(program: Program, codecs: dict[str, str]) -> str:
    """C source of ``adamlab_step`` for ``program`` with each array kept as ``codecs[name]``."""
    elementwise = {f"x_{a}" for a in program.arrays} | {ln.name for ln in program.lines if ln.elementwise}

    def operand(x, vec: bool, cond: bool = False) -> str:
        if isinstance(x, str):
            return f"(T){x}" if vec and not cond and x not in elementwise else x
        literal = f"({x!r})"
        return f"((T){literal})" if vec else literal

    scalars = [f"    const double s_{n} = sc[{k}];" for k, n in enumerate(program.scalars)]
    body = []
    for ln in program.lines:
        form = OPS[ln.op][0 if ln.elementwise else 1]
        args = [operand(a, ln.elementwise, cond=(ln.op == "select" and k == 0)) for k, a in enumerate(ln.args)]
        expr = form.format(*args)
        if ln.elementwise:
            body.append(f"        const T {ln.name} = {expr};")
        else:
            scalars.append(f"    const double {ln.name} = {expr};")
    width = len(program.arrays)
    pointers, loads, stores = [], [], []
    for k, name in enumerate(program.arrays):
        codec = CODECS[codecs[name]]
        pointers.append(f"    {codec.c_type}* restrict a_{name} = ({codec.c_type}*)ptrs[i * {width} + {k}];")
        loads.append(f"        const T x_{name} = (T)({codec.c_load.format(x=f'a_{name}[j]')});")
    for name, value in program.stores:
        stores.append(f"        a_{name}[j] = {CODECS[codecs[name]].c_store.format(x=operand(value, True))};")
    double = codecs["p"] == "float64"
    return C_PRELUDE + C_CHUNKS + KERNEL.format(
        ctype="double" if double else "float",
        sqrt="sqrt" if double else "sqrtf",
        fabs="fabs" if double else "fabsf",
        fma="fma" if double else "fmaf",
        scalars="\n".join(scalars),
        pointers="\n".join(pointers),
        loads="\n".join(loads),
        body="\n".join(body),
        stores="\n".join(stores),
    )
