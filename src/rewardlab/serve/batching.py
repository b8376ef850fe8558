"""Dynamic batching: concurrent requests merged into one forward pass, up to a token budget.

Requests queue up as *jobs* (one per request, with its items and their token count). One worker
takes the oldest job and adds the jobs behind it, in order, while their tokens fit in the budget
(:func:`take_batch`). If the batch still has room, it waits for more jobs until the first job has
waited ``wait_s``; jobs that queued while the previous forward pass ran have already waited that
long and go at once. The merged batch runs in one background thread (so the event loop keeps
accepting requests, and the model is never called from two threads), and each job gets back its
own columns of the ``[M, n]`` result.

A lone request pays for its own items and at most ``wait_s``, never for a full batch: nothing is
padded to a fixed batch size. With batching off (``enabled=False``) every job runs alone, one
forward pass per request, as OpenRLHF's ``serve_rm`` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

__all__ = ["BatchStats", "DynamicBatcher", "take_batch"]

log = logging.getLogger("rewardlab")

ScoreFn = Callable[[list[str], list[str]], np.ndarray]
"""``(prompts, responses) -> [M, n]`` rewards; called from the worker thread only."""


def take_batch(tokens: Sequence[int], budget: int) -> int:
    """How many of the queued jobs, oldest first, go into the next batch.

    Always at least one (a job over the budget runs alone: a request is never split or
    refused here), then every next job while the running total stays within ``budget``. Order
    is kept: a big job at the head is never overtaken by small ones behind it.

    Args:
        tokens: token count of each queued job, oldest first (at least one job).
        budget: tokens one forward pass may hold.
    """
    if not tokens:
        raise ValueError("take_batch needs at least one queued job")
    total, count = tokens[0], 1
    while count < len(tokens) and total + tokens[count] <= budget:
        total += tokens[count]
        count += 1
    return count


@dataclass
class _Job:
    prompts: list[str]
    responses: list[str]
    tokens: int
    future: asyncio.Future
    arrived: float


@dataclass
class BatchStats:
    """What the batcher did so far (reported by ``/info``)."""

    requests: int = 0
    items: int = 0
    forward_passes: int = 0
    largest_batch: int = 0
    """Most requests merged into one forward pass."""
    failures: int = 0


class DynamicBatcher:
    """Merge concurrent scoring jobs into forward passes of at most ``token_budget`` tokens.

    Use from one event loop: ``await start()``, then ``await submit(...)`` from any number of
    request handlers, and ``await stop()`` at shutdown (it finishes every job already queued).
    """

    def __init__(self, score: ScoreFn, *, token_budget: int, wait_s: float,
                 enabled: bool = True) -> None:
        if token_budget < 1 or wait_s < 0:
            raise ValueError(f"token_budget must be >= 1 and wait_s >= 0, got {token_budget} "
                             f"and {wait_s}")
        self.score, self.token_budget, self.wait_s = score, token_budget, wait_s
        self.enabled = enabled
        self.stats = BatchStats()
        self._queue: deque[_Job] = deque()
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._closing = False
        # One thread: the model is only ever called from here, one batch at a time.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rewardlab-score")

    async def start(self) -> None:
        self._wakeup = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finish every queued job, then stop the worker and its thread."""
        self._closing = True
        if self._wakeup is not None:
            self._wakeup.set()
        if self._task is not None:
            await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, prompts: list[str], responses: list[str], tokens: int) -> np.ndarray:
        """Rewards ``[M, n]`` of these ``n`` items, once their batch has run."""
        if self._task is None or self._closing:
            raise RuntimeError("the batcher is not running")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(prompts, responses, tokens, future, time.monotonic()))
        self.stats.requests += 1
        self.stats.items += len(prompts)
        assert self._wakeup is not None
        self._wakeup.set()
        return await future

    async def _run(self) -> None:
        assert self._wakeup is not None
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._gather()
            batch = self._pop_batch()
            if batch:
                await self._forward(batch)

    async def _gather(self) -> None:
        """Wait for more jobs while the batch has room and the oldest job is young."""
        assert self._wakeup is not None
        if not self.enabled:
            return
        while not self._closing:
            tokens = [job.tokens for job in self._queue]
            if take_batch(tokens, self.token_budget) < len(tokens) or \
                    sum(tokens) >= self.token_budget:
                return  # full: go now
            left = self._queue[0].arrived + self.wait_s - time.monotonic()
            if left <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=left)
            except asyncio.TimeoutError:
                return

    def _pop_batch(self) -> list[_Job]:
        count = 1
        if self.enabled:
            count = take_batch([job.tokens for job in self._queue], self.token_budget)
        jobs = [self._queue.popleft() for _ in range(count)]
        # A client that went away cancelled its future: do not spend a forward pass on it.
        return [job for job in jobs if not job.future.done()]

    async def _forward(self, jobs: list[_Job]) -> None:
        prompts = [p for job in jobs for p in job.prompts]
        responses = [r for job in jobs for r in job.responses]
        loop = asyncio.get_running_loop()
        self.stats.forward_passes += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(jobs))
        try:
            rewards = await loop.run_in_executor(self._executor, self.score, prompts, responses)
        except Exception as exc:  # handed to each waiting request, which answers with it
            self.stats.failures += 1
            log.error("scoring a batch of %d items failed: %s", len(prompts), exc)
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        start = 0
        for job in jobs:
            stop = start + len(job.prompts)
            if not job.future.done():
                job.future.set_result(rewards[:, start:stop])
            start = stop
