"""Print a traced program as one C loop over every tensor of a bucket.

All tensors are cut into fixed-size chunks that one OpenMP loop shares out,
so hundreds of small tensors cost no more than one large one; each element
is read once and written once. With one thread (or in a forked child, where
OpenMP cannot be used) the same body runs in a plain loop.

Arrays are kept as their codecs say (:mod:`.storage`). When a codec stores
block by block (8-bit state), the chunk is walked in blocks: the element
loop keeps each block's new values in a small local array and reduces them,
then the block is written; chunks start on block boundaries.
"""

from __future__ import annotations

from .storage import C_PRELUDE, C_TYPES, CODECS, Codec
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
{loop}
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


PLAIN_LOOP = """\
    for (int64_t j = lo; j < hi; j++) {{
{loads}
{body}
{stores}
    }}"""

# the element loop may be vectorised: iterations touch distinct elements
BLOCKED_LOOP = """\
    for (int64_t b0 = lo; b0 < hi; b0 += {block}) {{
        const int64_t b1 = b0 + {block} < hi ? b0 + {block} : hi, blk = b0 / {block};
{block_setup}
        #pragma omp simd
        for (int64_t j = b0; j < b1; j++) {{
{loads}
{body}
{stores}
        }}
{block_stores}
    }}"""


def buffer_names(name: str, codec: Codec) -> list[str]:
    """The C pointers of one array, in pointer-table order: the main buffer, then the codec's extras."""
    return [f"a_{name}"] + [f"a_{name}_{b.role}" for b in codec.buffers]


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
    used = {name: CODECS[codecs[name]] for name in program.arrays}
    pointers, loop = _arrays(program, used, body, operand)
    double = codecs["p"] == "float64"
    preludes = dict.fromkeys(c.c_prelude for c in used.values() if c.c_prelude)
    return C_PRELUDE + "".join(preludes) + C_CHUNKS + KERNEL.format(
        ctype="double" if double else "float",
        sqrt="sqrt" if double else "sqrtf",
        fabs="fabs" if double else "fabsf",
        fma="fma" if double else "fmaf",
        scalars="\n".join(scalars),
        pointers="\n".join(pointers),
        loop=loop,
    )


def _arrays(program: Program, used: dict[str, Codec], body: list[str], operand) -> tuple[list[str], str]:
    """(pointer and per-chunk lines, the element loop) with each array loaded and stored by its codec."""
    blocks = {c.block for c in used.values() if c.block}
    if len(blocks) > 1:
        raise ValueError(f"codecs with different block sizes in one kernel: {sorted(blocks)}")
    width = sum(1 + len(c.buffers) for c in used.values())
    pointers, setups, loads, stores, block_setup, block_stores = [], [], [], [], [], []
    slot = 0
    for name, codec in used.items():
        types = [codec.c_type] + [C_TYPES[b.dtype] for b in codec.buffers]
        for pointer, c_type in zip(buffer_names(name, codec), types):
            pointers.append(f"    {c_type}* restrict {pointer} = ({c_type}*)ptrs[i * {width} + {slot}];")
            slot += 1
        a = f"a_{name}"
        if codec.c_setup:
            setups.append("    " + codec.c_setup.format(a=a))
        loads.append(f"        const T x_{name} = (T)({codec.c_load.format(x=f'{a}[j]', a=a, j='j')});")
    for name, value in program.stores:
        codec, a, x = used[name], f"a_{name}", operand(value, True)
        if codec.block:
            block_setup.append(f"        T {a}_keep[{codec.block}];")
            stores.append(f"        {a}_keep[j - b0] = {x};")
            block_stores.append("        " + codec.c_block_store.format(a=a, keep=f"{a}_keep", n="b1 - b0", blk="blk",
                                                                         b0="b0"))
        else:
            stores.append(f"        {a}[j] = {codec.c_store.format(x=x, a=a, j='j')};")
            if codec.c_store_extra:
                stores.append("        " + codec.c_store_extra.format(x=x, a=a, j="j"))
    parts = dict(loads="\n".join(loads), body="\n".join(body), stores="\n".join(stores))
    if not blocks:
        return pointers + setups, PLAIN_LOOP.format(**parts)
    loop = BLOCKED_LOOP.format(
        block=blocks.pop(), block_setup="\n".join(block_setup), block_stores="\n".join(block_stores),
        **{k: "\n".join("    " + ln for ln in v.split("\n")) for k, v in parts.items()},
    )
    return pointers + setups, loop
