"""Param groups that keep biases and normalisation weights out of weight decay."""

from __future__ import annotations

from fnmatch import fnmatchcase

import torch

from .validation import check_nonnegative


def _matches(name: str, patterns) -> bool:
    return any(fnmatchcase(name, pat) for pat in patterns)


def param_groups(
    model: torch.nn.Module,
    weight_decay: float,
    *,
    no_decay: tuple[str, ...] = (),
    decay: tuple[str, ...] = (),
    **options,
) -> list[dict]:
    """Split ``model``'s trainable params into a decayed and a non-decayed group.

    The rule is nanoGPT's and timm's: tensors with two or more dimensions
    (matmul and conv weights, embeddings) are decayed; biases, normalisation
    weights and every other 1-d or 0-d param are not. ``no_decay`` and
    ``decay`` are glob patterns over parameter names (``"*.bias"``,
    ``"pos_emb*"``) that override the rule; ``decay`` wins where both match.
    Extra keyword ``options`` (lr, betas, ...) are copied into both groups.
    Groups that would be empty are left out.

    Args:
        model (torch.nn.Module): whose ``named_parameters()`` are split; params with
            ``requires_grad=False`` are left out.
        weight_decay (float): the decayed group's ``weight_decay``, in [0, inf); the other group's is 0.0.
        no_decay (tuple of str, default ()): name patterns (case-sensitive globs) never decayed.
        decay (tuple of str, default ()): name patterns always decayed, even if ``no_decay`` matches.
        **options: other group options, the same in both groups.

    Returns:
        list[dict]: up to two param groups, decayed first, for any torch.optim or adamlab
        optimizer: ``adamlab.AdamW(param_groups(model, 0.1), lr=3e-4)``.
    """
    check_nonnegative("weight_decay", weight_decay)
    decayed, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        wants_decay = p.ndim >= 2
        if _matches(name, no_decay):
            wants_decay = False
        if _matches(name, decay):
            wants_decay = True
        (decayed if wants_decay else plain).append(p)
    groups = [
        {"params": decayed, "weight_decay": weight_decay, **options},
        {"params": plain, "weight_decay": 0.0, **options},
    ]
    return [g for g in groups if g["params"]]
