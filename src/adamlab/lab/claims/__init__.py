"""The claims, in report order: claim id -> the package under this one that defines ``CLAIM``.

Ids are listed here, not discovered, so ``--only`` can be checked before any
claim (and matplotlib, scipy, scikit-learn) is imported.
"""

PACKAGES = {
    "C1": "c1_bias_correction",
    "C2": "c2_adamw",
    "C3": "c3_warmup",
    "C4": "c4_amsgrad",
    "C5": "c5_generalisation",
    "C6": "c6_half_precision",
    "C7": "c7_low_precision",
}
