"""Lightning with adamlab.AdamW from configure_optimizers, a per-step LambdaLR in the returned dict.

Oracles: a plain loop (no Lightning) with torch.optim.AdamW and the same
schedule, stepped per batch; and for resume, the uninterrupted fit, which a
fit stopped after epoch STOP and resumed from its checkpoint must equal
bitwise. Batches are not shuffled, so the data order is the loop's.
"""

import pytest
import torch
from torch.optim.lr_scheduler import LambdaLR

import adamlab

L = pytest.importorskip("lightning", reason="needs the integrations extra")
from lightning.pytorch.callbacks import Callback, ModelCheckpoint  # noqa: E402

pytestmark = pytest.mark.slow  # trainers and process groups: minutes, run in CI

EPOCHS, STOP, WARMUP, LR, WD = 4, 2, 3, 1e-2, 0.1
LIBS = {"adamlab": adamlab.AdamW, "torch": torch.optim.AdamW}


def make_net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))


def loader():
    gen = torch.Generator().manual_seed(1)
    data = torch.utils.data.TensorDataset(torch.randn(32, 6, generator=gen), torch.randn(32, 2, generator=gen))
    return torch.utils.data.DataLoader(data, batch_size=8)


TOTAL = EPOCHS * len(loader())


def optimizer_and_schedule(module, lib):
    opt = LIBS[lib](adamlab.param_groups(module, weight_decay=WD), lr=LR)
    return opt, LambdaLR(opt, adamlab.schedules.warmup_cosine(WARMUP, TOTAL, min_ratio=0.1))


class Regressor(L.LightningModule):
    def __init__(self, lib):
        super().__init__()
        self.lib, self.net = lib, make_net()

    def training_step(self, batch, batch_idx):
        x, y = batch
        return torch.nn.functional.mse_loss(self.net(x), y)

    def configure_optimizers(self):
        opt, sched = optimizer_and_schedule(self, self.lib)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class StopAfterEpoch(Callback):
    def __init__(self, epochs):
        self.epochs = epochs

    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch + 1 == self.epochs:
            trainer.should_stop = True


def fit(root, lib, callbacks=(), ckpt_path=None):
    module = Regressor(lib)
    trainer = L.Trainer(max_epochs=EPOCHS, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=root, callbacks=list(callbacks),
                        enable_checkpointing=bool(callbacks))
    trainer.fit(module, loader(), ckpt_path=ckpt_path)
    return [p.detach().clone() for p in module.net.parameters()], trainer


def plain_loop():
    net = make_net()
    opt, sched = optimizer_and_schedule(net, "torch")
    for _ in range(EPOCHS):
        for x, y in loader():
            torch.nn.functional.mse_loss(net(x), y).backward()
            opt.step()
            sched.step()
            opt.zero_grad()
    return [p.detach() for p in net.parameters()]


def test_fit_matches_a_plain_loop_with_torch_adamw(tmp_path):
    params, trainer = fit(tmp_path, "adamlab")
    opt = trainer.optimizers[0]
    assert type(opt) is adamlab.AdamW
    assert trainer.global_step == TOTAL and all(float(s["step"]) == TOTAL for s in opt.state.values())
    assert trainer.lr_scheduler_configs[0].scheduler.last_epoch == TOTAL  # stepped per batch
    for a, b in zip(params, plain_loop(), strict=True):
        assert torch.allclose(a, b, rtol=0, atol=LR / 100), (a - b).abs().max()


@pytest.mark.parametrize("saver, loader_lib", [("adamlab", "adamlab"), ("adamlab", "torch"), ("torch", "adamlab")])
def test_interrupted_fit_resumes_exactly(tmp_path, saver, loader_lib):
    """Stopped after epoch STOP, resumed by a new Trainer: the same params as the uninterrupted fit."""
    saving = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, save_top_k=0)
    fit(tmp_path / "stopped", saver, [StopAfterEpoch(STOP), saving])
    resumed, trainer = fit(tmp_path / "resumed", loader_lib, ckpt_path=tmp_path / "ckpt" / "last.ckpt")
    assert type(trainer.optimizers[0]) is LIBS[loader_lib]
    assert trainer.global_step == TOTAL
    uninterrupted, _ = fit(tmp_path / "full", loader_lib)
    for a, b in zip(resumed, uninterrupted, strict=True):
        if saver == loader_lib:
            assert torch.equal(a, b)
        else:
            assert torch.allclose(a, b, rtol=0, atol=LR / 100), (a - b).abs().max()
