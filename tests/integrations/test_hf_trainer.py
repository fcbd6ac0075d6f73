"""The Hugging Face Trainer with adamlab.AdamW, both ways of passing it, against torch.optim.AdamW.

A tiny GPT-2 built from a config (nothing downloaded) trains STEPS steps.
The oracle is the same Trainer run with torch.optim.AdamW; an interrupted run
(saved and stopped at STOP by a callback, resumed by a new Trainer) must end
bitwise equal to the uninterrupted one, and a checkpoint must resume in the
other library.
"""

import functools

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

import adamlab

transformers = pytest.importorskip("transformers", reason="needs the integrations extra")
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback, TrainingArguments  # noqa: E402

pytestmark = pytest.mark.slow  # trainers and process groups: minutes, run in CI

STEPS, STOP, WARMUP, LR, WD = 8, 4, 2, 1e-2, 0.1
LIBS = {"adamlab": adamlab.AdamW, "torch": torch.optim.AdamW}
HOW = ("optimizers", "optimizer_cls_and_kwargs")


def tiny_gpt2():
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=2, n_head=2, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(config)


class Tokens(torch.utils.data.Dataset):
    def __init__(self):
        self.ids = torch.randint(0, 64, (32, 12), generator=torch.Generator().manual_seed(1))

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


class StopAt(TrainerCallback):
    """An interruption: save a checkpoint at the given step and stop."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_save = control.should_training_stop = True


def fit(out, lib, how, stop=None, resume=None):
    """One Trainer run; returns (final params, the optimizer the Trainer stepped)."""
    model = tiny_gpt2()
    args = TrainingArguments(str(out), max_steps=STEPS, per_device_train_batch_size=4, learning_rate=LR,
                             weight_decay=WD, warmup_steps=WARMUP, lr_scheduler_type="cosine", seed=0,
                             save_strategy="no", logging_strategy="no", report_to="none", use_cpu=True,
                             disable_tqdm=True)
    if how == "optimizers":
        opt = LIBS[lib](adamlab.param_groups(model, weight_decay=WD), lr=LR)
        sched = LambdaLR(opt, adamlab.schedules.warmup_cosine(WARMUP, STEPS, min_ratio=0.1))
        passed = {"optimizers": (opt, sched)}
    else:
        passed = {"optimizer_cls_and_kwargs": (LIBS[lib], {"lr": LR})}
    trainer = Trainer(model=model, args=args, train_dataset=Tokens(), callbacks=[StopAt(stop)] if stop else [],
                      **passed)
    trainer.train(resume_from_checkpoint=resume)
    opt = getattr(trainer.optimizer, "optimizer", trainer.optimizer)  # accelerate wraps it
    return [p.detach().clone() for p in model.parameters()], opt


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return functools.cache(lambda lib, how: fit(root / f"full-{lib}-{how}", lib, how))


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """The checkpoint folder of a run stopped at STOP."""
    root = tmp_path_factory.mktemp("hf-stop")

    def run(lib, how):
        fit(root / f"{lib}-{how}", lib, how, stop=STOP)
        return root / f"{lib}-{how}" / f"checkpoint-{STOP}"

    return functools.cache(run)


def assert_close(got, want):
    """Within 1% of one step's size: Adam's update ignores the gradient's scale, so an fp32 rounding
    difference in a near-zero gradient can move an element by a fraction of LR; wrong math moves all by more."""
    for a, b in zip(got, want, strict=True):
        assert torch.allclose(a, b, rtol=0, atol=LR / 100), (a - b).abs().max()


@pytest.mark.parametrize("how", HOW)
def test_trainer_trains_as_with_torch_adamw(uninterrupted, how):
    params, opt = uninterrupted("adamlab", how)
    assert type(opt) is adamlab.AdamW
    assert all(float(s["step"]) == STEPS for s in opt.state.values())
    assert sorted(g["weight_decay"] for g in opt.param_groups) == [0.0, WD]  # ours or the Trainer's groups
    assert_close(params, uninterrupted("torch", how)[0])


@pytest.mark.parametrize("how", HOW)
def test_interrupted_and_resumed_run_equals_uninterrupted(tmp_path, uninterrupted, interrupted, how):
    params, opt = fit(tmp_path, "adamlab", how, resume=interrupted("adamlab", how))
    assert type(opt) is adamlab.AdamW
    for got, want in zip(params, uninterrupted("adamlab", how)[0], strict=True):
        assert torch.equal(got, want)


@pytest.mark.parametrize("saver, loader", [("adamlab", "torch"), ("torch", "adamlab")])
def test_a_checkpoint_resumes_in_the_other_library(tmp_path, uninterrupted, interrupted, saver, loader):
    """torch.optim.AdamW resumes an adamlab checkpoint (and back): it ends where its own run ends."""
    how = "optimizer_cls_and_kwargs"
    params, opt = fit(tmp_path, loader, how, resume=interrupted(saver, how))
    assert type(opt) is LIBS[loader]
    saved = torch.load(interrupted(saver, how) / "optimizer.pt", weights_only=True)
    assert [sorted(g) for g in saved["param_groups"]] == [sorted(g) for g in opt.state_dict()["param_groups"]]
    assert_close(params, uninterrupted(loader, how)[0])
