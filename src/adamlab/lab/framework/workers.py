"""Train many small models at once: one single-threaded worker process per core.

The lab's models are small enough that one thread per run is fastest, so two
runs side by side use a 2-core machine fully. Workers are spawned, not
forked: forking after torch has started its thread pool can hang, and spawn
behaves the same under pytest and the command line.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager

import torch


def _single_thread() -> None:
    torch.set_num_threads(1)


@contextmanager
def one_thread():
    """Run the block on one torch thread: small tensors gain nothing from more, and stall when other
    processes hold the cores."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class Workers:
    """``with Workers(n) as w: results = w.map(fn, jobs, advance)``.

    n >= 2: a pool of n spawned processes, kept for every ``map`` inside the
    ``with``. n <= 1: jobs run here, one after another, also on one thread,
    so results match the pool's. ``fn`` must be a module-level function and
    jobs picklable.
    """

    def __init__(self, count: int):
        self.count = count
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> Workers:
        if self.count >= 2:
            spawn = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(self.count, mp_context=spawn, initializer=_single_thread)
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def map(self, fn, jobs: list, advance=lambda: None) -> list:
        """[fn(job) for job in jobs], calling ``advance()`` as each one finishes."""
        if self.pool is None:
            results = []
            with one_thread():
                for job in jobs:
                    results.append(fn(job))
                    advance()
            return results
        results: list = [None] * len(jobs)
        futures = {self.pool.submit(fn, job): i for i, job in enumerate(jobs)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            advance()
        return results
