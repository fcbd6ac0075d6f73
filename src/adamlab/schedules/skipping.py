"""Keep a torch scheduler in step with the optimizer steps that were applied (skip_nonfinite, GradScaler)."""

from __future__ import annotations


class SkipAware:
    """Wrap an lr scheduler so that ``step()`` advances it only after an applied optimizer step.

    torch's schedulers advance on every call, so a skipped optimizer step would
    still move the schedule on. ``SkipAware(scheduler).step()`` reads the
    optimizer's ``last_step_skipped`` (set by every adamlab optimizer) and does
    nothing after a skipped step. Everything else (``state_dict``,
    ``get_last_lr``, ...) is the wrapped scheduler's.

    Args:
        scheduler (torch.optim.lr_scheduler.LRScheduler): the scheduler to wrap; its ``optimizer``
            is read (an optimizer without ``last_step_skipped`` counts every step as applied).
    """

    def __init__(self, scheduler):
        self.scheduler = scheduler

    def step(self) -> None:
        if not getattr(self.scheduler.optimizer, "last_step_skipped", False):
            self.scheduler.step()

    def __getattr__(self, name):
        return getattr(self.scheduler, name)
