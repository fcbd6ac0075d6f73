"""Constructor options shared by several records, each written once with its doc and check.

Records list them in torch's order; :func:`positional` marks those that are
positional-or-keyword in torch's signature of that optimizer.
"""

from __future__ import annotations

from dataclasses import replace

from .. import validation as V
from .base import Option


def positional(*options: Option) -> tuple[Option, ...]:
    return tuple(replace(o, positional=True) for o in options)


def late(*options: Option) -> tuple[Option, ...]:
    """Options torch added after the optimizer's first release (its __setstate__ fills them)."""
    return tuple(replace(o, late=True) for o in options)


def beyond_torch(*options: Option) -> tuple[Option, ...]:
    """Options that torch's class of this algorithm does not have."""
    return tuple(replace(o, beyond_torch=True) for o in options)


def lr(default: float) -> Option:
    return Option("lr", default, "Learning rate gamma (a float, or a 1-element Tensor).", V.check_nonnegative)


def eps(default: float, doc: str = "Added to the denominator for numerical stability.") -> Option:
    return Option("eps", default, doc, V.check_nonnegative)


def weight_decay(default: float = 0.0, doc: str | None = None) -> Option:
    return Option(
        "weight_decay",
        default,
        doc or "Weight decay lambda: L2 (added to the gradient) unless ``decoupled_weight_decay``.",
        V.check_nonnegative,
    )


BETAS = Option(
    "betas",
    (0.9, 0.999),
    "(beta1, beta2): EMA coefficients of the first and second moments (Kingma & Ba 2015).",
    V.check_betas,
)
PAIRED_BETAS = replace(BETAS, check=V.check_paired_betas)  # Adam's and AdamW's: both floats or both tensors
AMSGRAD = Option(
    "amsgrad",
    False,
    "Divide by the running max of v (Reddi et al. 2018), torch's variant: the max of raw v, "
    "divided by the current 1 - beta2^t.",
    V.check_bool,
    late=True,
)
DECOUPLED_WEIGHT_DECAY = Option(
    "decoupled_weight_decay",
    False,
    "Shrink theta by 1 - lr*wd instead of adding wd*theta to the gradient (Loshchilov & Hutter 2019).",
    V.check_bool,
    late=True,
)
MAXIMIZE = Option("maximize", False, "Maximize the objective: the gradient is negated.", V.check_bool, late=True)
FOREACH = Option(
    "foreach",
    None,
    "Accepted for torch compatibility and kept in the group. It selects no path: adamlab's default step is "
    "already horizontal across tensors (one fused pass for all of a group's params).",
    V.check_optional_bool,
    late=True,
)
CAPTURABLE = Option(
    "capturable",
    False,
    "Keep step counters on the device and compute each step's scalars (bias corrections, step size, decay "
    "factor) there from them, so a step can be captured in a CUDA graph and a Tensor lr costs no host sync. "
    "Takes effect on the Triton backend (CUDA tensors, or CPU tensors under Triton's interpreter); AMP's "
    "found_inf is then read on the device too, and a skipped step is not counted.",
    V.check_bool,
    late=True,
)
DIFFERENTIABLE = Option(
    "differentiable",
    False,
    "Record the step in autograd (for meta-learning): the update is differentiable with respect to the "
    "params, the state and Tensor hyperparameters. Runs the readable reference backend.",
    V.check_bool,
    late=True,
)
FUSED = Option(
    "fused",
    None,
    "None: the fastest backend for the params' device. True: a fused backend (the generated C loop on CPU, "
    "the generated Triton kernel on CUDA), or an error. False: the readable reference backend (torch ops, "
    "param by param).",
    V.check_optional_bool,
    late=True,
)
BIAS_CORRECTION = Option(
    "bias_correction",
    True,
    "Divide the moments by 1 - beta^t (Kingma & Ba 2015, sec. 3). False drops both corrections "
    "(beyond torch).",
    V.check_bool,
    beyond_torch=True,
)
DECAY_SCALE = Option(
    "decay_scale",
    "lr",
    'How decoupled decay is scaled: "lr" shrinks theta by 1 - lr*wd (torch); "schedule" by '
    "1 - (lr/base_lr)*wd, the schedule multiplier of Loshchilov & Hutter's Algorithm 2, so wd is "
    "their lambda (beyond torch; base_lr is the group's lr at construction).",
    V.choice("lr", "schedule"),
    beyond_torch=True,
)
BACKEND = Option(
    "backend",
    None,
    'Force a backend: "triton" (one generated Triton kernel per step, CUDA tensors; needs the triton '
    'package, pip install adamlab[gpu]), "c" (the generated C loop, CPU tensors) or "reference" (torch ops, '
    "any device); an error where it cannot run. None picks the fastest for the params' device: Triton for "
    "CUDA when triton is importable, the C loop for CPU, else the reference backend (beyond torch).",
    V.choice(None, "triton", "c", "reference"),
    beyond_torch=True,
)
COUNT_PRIMING = Option(
    "count_priming",
    False,
    "A first step at lr 0 on all-zero gradients (how torch.distributed.checkpoint makes a fresh optimizer "
    "create its state) only creates the state: nothing moves, no step is counted, so the first real update "
    "is unchanged. True counts it as a step, as torch does (beyond torch).",
    V.check_bool,
    beyond_torch=True,
)
SKIP_NONFINITE = Option(
    "skip_nonfinite",
    False,
    "Skip a step whose gradients hold inf or NaN: params, state and step counts stay bit-identical, and "
    "the optimizer's last_step_skipped is True. The decision covers every group (beyond torch).",
    V.check_bool,
    beyond_torch=True,
)
MAX_CONSECUTIVE_SKIPS = Option(
    "max_consecutive_skips",
    None,
    "With skip_nonfinite: raise instead of skipping once this many steps in a row were skipped; None skips "
    "forever (beyond torch).",
    V.check_optional_count,
    beyond_torch=True,
)
SAFETY = (SKIP_NONFINITE, MAX_CONSECUTIVE_SKIPS)
STATE_PRECISION = Option(
    "state_precision",
    None,
    'How the state (moments) is kept, beyond torch: None keeps fp32 for fp16/bf16 params and the param\'s '
    'dtype otherwise; "bf16" rounds it to bf16 on every store (arithmetic stays fp32; 4 bytes per param for '
    'two moments); "8bit" keeps one byte per element and one fp32 absmax per block of 256 (about 2.03 bytes '
    "per param for two moments; tensors under 4096 elements keep the default state). fp64 and complex params "
    "always keep the default state. See docs/low_precision.md.",
    V.choice(None, "bf16", "8bit"),
    beyond_torch=True,
)
PARAM_UPDATE = Option(
    "param_update",
    "nearest",
    'How a bf16 param takes its new value, beyond torch: "nearest" rounds to nearest (updates under half a '
    'bf16 step are lost); "stochastic" rounds up with probability equal to the fraction cut off (random bits '
    'from rounding_seed, the step and the element: reproducible); "kahan" keeps what rounding cut off in a '
    'bf16 buffer (state key "kahan_comp") and adds it back before the next update. fp32 and fp64 params are '
    "unaffected; fp16 params accept only \"nearest\".",
    V.choice("nearest", "stochastic", "kahan"),
    beyond_torch=True,
)
ROUNDING_SEED = Option(
    "rounding_seed",
    0,
    'Seed of param_update="stochastic": with the param\'s position in the optimizer it keys the param\'s '
    "random stream (state key \"rounding_key\"), beyond torch. An integer in [0, 2^32).",
    V.check_seed,
    beyond_torch=True,
)
LOW_PRECISION = (STATE_PRECISION, PARAM_UPDATE, ROUNDING_SEED)
