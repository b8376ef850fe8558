"""Dynamic batching: concurrent requests merged into one forward pass, up to a token budget,
with big requests taking turns.

Requests queue up as *jobs* (one per request, with its items and each item's token count). Each
forward pass takes the queued jobs in order and gives each a *turn*: its next items, up to
``turn_tokens`` tokens (at least one item), while the pass stays within ``token_budget``
(:func:`take_batch`). A job with items left after its turn goes to the back of the queue, behind
the requests that arrived meanwhile. So a big request is split into pieces that take turns with
the others, and a small request that arrives while a big one is being scored waits for at most
the one forward pass in flight: the next pass carries it (unless the queue holds more than one
budget of other turns). If the pass still has room, it waits for more jobs until the first job
has waited ``wait_s``; jobs that queued while the previous forward pass ran have already waited
that long and go at once. The merged batch runs in one background thread (so the event loop
keeps accepting requests, and the model is never called from two threads), and each job gets
back its own columns of the ``[M, n]`` results, in order.

A lone request pays for its own items and at most ``wait_s``, never for a full batch: nothing is
padded to a fixed batch size. With batching off (``enabled=False``) every job runs alone and
whole, one forward pass per request, as OpenRLHF's ``serve_rm`` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

__all__ = ["BatchStats", "DynamicBatcher", "take_batch"]

log = logging.getLogger("rewardlab")

ScoreFn = Callable[[list[str], list[str]], np.ndarray]
"""``(prompts, responses) -> [M, n]`` rewards; called from the worker thread only."""


def take_batch(jobs: Sequence[Sequence[int]], budget: int, turn: int) -> list[int]:
    """How many items each queued job, oldest first, puts into the next forward pass.

    Each job in order takes a turn: its next items while they add up to at most ``turn``
    tokens (at least one item) and the pass to at most ``budget``. The very first item always
    goes (an item over the budget runs alone: it is never refused here). The first job that
    cannot add even one item ends the pass: order is kept, so a job is never overtaken by
    smaller ones behind it.

    Args:
        jobs: per queued job, oldest first, the token count of each of its items still to
            score (at least one job, each with at least one item).
        budget: tokens one forward pass may hold.
        turn: tokens one job may put into one pass.

    Returns:
        Items taken from each of the first ``len(result)`` jobs (each >= 1).
    """
    if not jobs or not all(jobs):
        raise ValueError("take_batch needs at least one queued job, each with items")
    counts: list[int] = []
    total = 0
    for items in jobs:
        piece = count = 0
        while count < len(items):
            first = not counts and count == 0
            if not first and (total + items[count] > budget
                              or (count > 0 and piece + items[count] > turn)):
                break
            piece, total, count = piece + items[count], total + items[count], count + 1
        if count == 0:
            break
        counts.append(count)
    return counts


@dataclass
class _Job:
    prompts: list[str]
    responses: list[str]
    tokens: list[int]
    future: asyncio.Future
    arrived: float
    done: int = 0
    """Items already scored."""
    parts: list[np.ndarray] = field(default_factory=list)
    """``[M, k]`` rewards of the pieces scored so far, in order."""

    @property
    def left(self) -> list[int]:
        return self.tokens[self.done:]


@dataclass
class BatchStats:
    """What the batcher did so far (reported by ``/info``)."""

    requests: int = 0
    items: int = 0
    forward_passes: int = 0
    largest_batch: int = 0
    """Most requests merged into one forward pass."""
    failures: int = 0
    split_requests: int = 0
    """Requests scored over more than one forward pass, taking turns with the others."""


class DynamicBatcher:
    """Merge concurrent scoring jobs into forward passes of at most ``token_budget`` tokens, each
    job taking turns of at most ``turn_tokens`` (default: the budget).

    Use from one event loop: ``await start()``, then ``await submit(...)`` from any number of
    request handlers, and ``await stop()`` at shutdown (it finishes every job already queued).
    """

    def __init__(self, score: ScoreFn, *, token_budget: int, wait_s: float,
                 turn_tokens: int | None = None, enabled: bool = True) -> None:
        turn = token_budget if turn_tokens is None else turn_tokens
        if token_budget < 1 or wait_s < 0 or turn < 1:
            raise ValueError(f"token_budget and turn_tokens must be >= 1 and wait_s >= 0, got "
                             f"{token_budget}, {turn} and {wait_s}")
        self.score, self.token_budget, self.wait_s = score, token_budget, wait_s
        self.turn_tokens, self.enabled = turn, enabled
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

    async def submit(self, prompts: list[str], responses: list[str],
                     tokens: Sequence[int]) -> np.ndarray:
        """Rewards ``[M, n]`` of these ``n`` items (``tokens``: each one's token count), once
        all their pieces have run."""
        if self._task is None or self._closing:
            raise RuntimeError("the batcher is not running")
        if not len(prompts) == len(responses) == len(tokens) > 0:
            raise ValueError(f"submit needs one token count per item and at least one item, "
                             f"got {len(prompts)}, {len(responses)} and {len(tokens)}")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Job(prompts, responses, [int(t) for t in tokens], future,
                                time.monotonic()))
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

    def _plan(self) -> list[int]:
        """Items of each queued job in the next pass (with batching off: the first job, whole)."""
        if not self.enabled:
            return [len(self._queue[0].left)]
        return take_batch([job.left for job in self._queue], self.token_budget, self.turn_tokens)

    async def _gather(self) -> None:
        """Wait for more jobs while the batch has room and the oldest job is young."""
        assert self._wakeup is not None
        if not self.enabled:
            return
        while not self._closing:
            plan = self._plan()
            taken = sum(sum(job.left[:n]) for job, n in zip(self._queue, plan))
            if taken >= self.token_budget or any(
                    n < len(job.left) for job, n in zip(self._queue, plan)) or \
                    len(plan) < len(self._queue):
                return  # full, or some job must wait its turn anyway: go now
            left = self._queue[0].arrived + self.wait_s - time.monotonic()
            if left <= 0:
                return
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=left)
            except asyncio.TimeoutError:
                return

    def _pop_batch(self) -> list[tuple[_Job, int]]:
        """The jobs of the next pass with their item counts, out of the queue (a job with items
        left is queued again, at the back, once its piece has run)."""
        plan = self._plan()
        jobs = [(self._queue.popleft(), n) for n in plan]
        # A client that went away cancelled its future: do not spend a forward pass on it.
        return [(job, n) for job, n in jobs if not job.future.done()]

    async def _forward(self, batch: list[tuple[_Job, int]]) -> None:
        prompts = [p for job, n in batch for p in job.prompts[job.done:job.done + n]]
        responses = [r for job, n in batch for r in job.responses[job.done:job.done + n]]
        loop = asyncio.get_running_loop()
        self.stats.forward_passes += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        try:
            rewards = await loop.run_in_executor(self._executor, self.score, prompts, responses)
        except Exception as exc:  # handed to each waiting request, which answers with it
            self.stats.failures += 1
            log.error("scoring a batch of %d items failed: %s", len(prompts), exc)
            for job, _ in batch:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        start = 0
        for job, n in batch:
            job.parts.append(rewards[:, start:start + n])
            job.done, start = job.done + n, start + n
            if job.future.done():
                continue
            if job.done < len(job.tokens):
                if len(job.parts) == 1:
                    self.stats.split_requests += 1
                self._queue.append(job)  # behind the requests that arrived meanwhile
            else:
                job.future.set_result(np.concatenate(job.parts, axis=1))
