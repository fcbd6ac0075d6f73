"""State dicts: torch's format both ways, from any torch version, refused before anything changes."""

from __future__ import annotations

import torch

from . import lowp_state


def fill_defaults(opt) -> None:
    """Fill the options a saved group may lack: those torch added later (as its __setstate__ does) and ours."""
    late = opt.algorithm.filled_on_load()
    for group in opt.param_groups:
        group.update(opt._fixed)  # as torch's AdamW forces decoupled_weight_decay=True
        for key in late:
            group.setdefault(key, opt._class_defaults[key])
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    for state in opt.state.values():  # very old checkpoints kept the step as a number
        for name in opt.algorithm.counters:
            if name in state and not torch.is_tensor(state[name]):
                state[name] = torch.tensor(float(state[name]), dtype=torch.float32)


def hide_beyond_torch(opt, state_dict: dict) -> dict:
    """Leave out options torch's class lacks while they are at their defaults: the keys equal torch's."""
    extra = opt.algorithm.beyond_torch()
    for group in state_dict["param_groups"]:
        for key, default in extra.items():
            if key in group and _same(group[key], default):
                del group[key]
    return state_dict


def _same(a, b) -> bool:
    return type(a) is type(b) and a == b


def required_state(opt, group: dict, state: dict) -> tuple[str, ...]:
    """The keys a param's saved state must have, given its group's options."""
    plan = opt.algorithm.plan({**opt._class_defaults, **group}, _counters(opt, state), not state)
    return plan.config.state_names() + tuple(n for n in opt.algorithm.counters)


def _counters(opt, state):
    from .counters import Counters

    values = {n: float(state.get(n, opt.algorithm.counter_start[n])) + (n == "step") for n in opt.algorithm.counters}
    return Counters(values, torch.float32)


def check_state_dict(opt, state_dict: dict) -> None:
    """Refuse a state dict that does not fit, before anything is changed."""
    saved_groups = state_dict.get("param_groups")
    if not isinstance(saved_groups, list) or not isinstance(state_dict.get("state"), dict):
        raise ValueError("state_dict must have 'state' (dict) and 'param_groups' (list)")
    if len(saved_groups) != len(opt.param_groups):
        raise ValueError(f"state_dict has {len(saved_groups)} param groups, the optimizer has {len(opt.param_groups)}")
    for gi, (group, saved) in enumerate(zip(opt.param_groups, saved_groups)):
        if len(group["params"]) != len(saved["params"]):
            raise ValueError(
                f"param group {gi}: state_dict has {len(saved['params'])} params, "
                f"the optimizer has {len(group['params'])}"
            )
        options = {k: v for k, v in saved.items() if k != "params"}
        for pi, (p, pid) in enumerate(zip(group["params"], saved["params"])):
            state = state_dict["state"].get(pid, {})
            for key, value in state.items():
                if key in opt.algorithm.counters:
                    if torch.is_tensor(value) and value.numel() != 1:
                        raise ValueError(f"param group {gi}, param {pi}: '{key}' must be a scalar")
                elif torch.is_tensor(value) and not value.is_sparse and value.shape != p.shape and not \
                        lowp_state.is_block_or_scalar_key(key):
                    raise ValueError(
                        f"param group {gi}, param {pi}: state '{key}' has shape "
                        f"{tuple(value.shape)}, the param has shape {tuple(p.shape)}"
                    )
            if state:
                missing = [k for k in required_state(opt, options, state) if not lowp_state.present(state, k)]
                if missing:
                    raise ValueError(f"param group {gi}, param {pi}: saved state lacks {missing}")


def restore_state_dtypes(opt, state_dict: dict, state_dtype) -> None:
    """torch's loader casts floating state to the param's dtype; half params keep fp32 moments here."""
    params = [p for g in opt.param_groups for p in g["params"]]
    saved_ids = [i for g in state_dict["param_groups"] for i in g["params"]]
    for p, pid in zip(params, saved_ids):
        for key, value in state_dict["state"].get(pid, {}).items():
            if not (torch.is_tensor(value) and value.is_floating_point()):
                continue
            if key in opt.algorithm.counters:  # counters keep their own dtype, as torch keeps 'step'
                opt.state[p][key] = value.clone()
            elif lowp_state.is_block_or_scalar_key(key):  # block scales keep fp32, whatever the param
                opt.state[p][key] = value.to(device=p.device).clone()
            else:
                opt.state[p][key] = value.to(device=p.device, dtype=state_dtype(p)).clone()
