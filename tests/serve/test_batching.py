"""Dynamic batching: which jobs merge, what each gets back, and how it fails and stops.

The model is a stand-in that records its calls and returns rewards that identify each item,
so every test checks exactly which forward pass carried which item.
"""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from rewardlab.serve.batching import DynamicBatcher, take_batch


@pytest.mark.parametrize("jobs, budget, turn, expected", [
    ([[5]], 10, 10, [1]),
    ([[4], [4], [4]], 10, 10, [1, 1]),      # 4 + 4 fits, + 4 more would be 12
    ([[4], [6], [1]], 10, 10, [1, 1]),      # exactly the budget
    ([[30], [1], [1]], 10, 10, [1]),        # an item over the budget runs alone, never refused
    ([[1], [30], [1]], 10, 10, [1]),        # order kept: the small one behind the big one waits
    ([[1], [1], [1], [1]], 100, 100, [1, 1, 1, 1]),
    # Turns: a job puts at most `turn` tokens into a pass, then the next job has its turn.
    ([[2, 2, 2, 2, 2], [1], [1]], 100, 4, [2, 1, 1]),   # 2 + 2 = 4; a third 2 would be 6
    ([[2, 2, 2, 2, 2], [1], [1]], 100, 5, [2, 1, 1]),
    ([[2, 2, 2, 2, 2], [1], [1]], 100, 6, [3, 1, 1]),
    ([[9, 1], [1]], 100, 4, [1, 1]),        # an item over the turn goes alone as its piece
    ([[1], [3, 3, 3]], 5, 100, [1, 1]),     # the budget ends the second job's piece: 1 + 3
    ([[3, 3]], 5, 100, [1]),
])
def test_take_batch(jobs: list[list[int]], budget: int, turn: int,
                    expected: list[int]) -> None:
    assert take_batch(jobs, budget, turn) == expected


@pytest.mark.parametrize("jobs", [[], [[1], []]])
def test_take_batch_needs_jobs_with_items(jobs: list[list[int]]) -> None:
    with pytest.raises(ValueError):
        take_batch(jobs, 10, 10)


class FakeModel:
    """Rewards ``[2, n]``: member 0 gives each item its number (the text is ``"i"``), member 1
    the negative. Records the texts of every call; ``gate`` holds calls until set."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, prompts: list[str], responses: list[str]) -> np.ndarray:
        self.gate.wait(timeout=30)
        self.calls.append(list(responses))
        if self.fail:
            raise RuntimeError("out of memory")
        values = np.array([float(r) for r in responses])
        return np.stack([values, -values])


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, timeout=60))  # a hang fails instead of blocking


async def _submit_all(batcher: DynamicBatcher, jobs: list[list[str]], tokens: int = 1):
    await batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(j, j, [tokens] * len(j)) for j in jobs))
    finally:
        await batcher.stop()


def test_concurrent_jobs_merge_and_get_their_own_columns() -> None:
    model = FakeModel()
    batcher = DynamicBatcher(model, token_budget=100, wait_s=1.0)
    results = run(_submit_all(batcher, [["1"], ["2", "3"], ["4"]]))
    assert model.calls == [["1", "2", "3", "4"]]  # one forward pass, in arrival order
    assert [r.tolist() for r in results] == [[[1.0], [-1.0]], [[2.0, 3.0], [-2.0, -3.0]],
                                             [[4.0], [-4.0]]]
    assert batcher.stats.forward_passes == 1 and batcher.stats.largest_batch == 3


def test_the_wait_window_lets_a_later_request_join() -> None:
    async def scenario(batcher: DynamicBatcher) -> None:
        await batcher.start()
        first = asyncio.ensure_future(batcher.submit(["1"], ["1"], [1]))
        await asyncio.sleep(0.05)  # well inside the window of the first request
        second = asyncio.ensure_future(batcher.submit(["2"], ["2"], [1]))
        await asyncio.gather(first, second)
        await batcher.stop()

    model = FakeModel()
    run(scenario(DynamicBatcher(model, token_budget=100, wait_s=1.0)))
    assert model.calls == [["1", "2"]]
    model = FakeModel()
    run(scenario(DynamicBatcher(model, token_budget=100, wait_s=0.0)))
    assert model.calls == [["1"], ["2"]]  # no window: the first went alone at once


def test_the_token_budget_splits_batches() -> None:
    model = FakeModel()
    batcher = DynamicBatcher(model, token_budget=2, wait_s=1.0)
    results = run(_submit_all(batcher, [["1"], ["2"], ["3"], ["4"], ["5"]]))
    assert model.calls == [["1", "2"], ["3", "4"], ["5"]]
    assert [float(r[0, 0]) for r in results] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_without_batching_every_request_runs_alone() -> None:
    model = FakeModel()
    batcher = DynamicBatcher(model, token_budget=100, wait_s=1.0, enabled=False)
    run(_submit_all(batcher, [["1"], ["2"], ["3"]]))
    assert model.calls == [["1"], ["2"], ["3"]]


def test_a_full_batch_does_not_wait_for_the_window() -> None:
    # A lone job that fills the budget goes at once: with an hour-long window this test would
    # hang (and fail at run()'s timeout) if it waited.
    model = FakeModel()
    batcher = DynamicBatcher(model, token_budget=1, wait_s=3600.0)
    results = run(_submit_all(batcher, [["7"]]))
    assert results[0].tolist() == [[7.0], [-7.0]]


def test_jobs_queued_during_a_forward_pass_go_next_together() -> None:
    async def scenario(model: FakeModel, batcher: DynamicBatcher) -> list[np.ndarray]:
        await batcher.start()
        model.gate.clear()  # the first pass blocks until the others have queued
        first = asyncio.ensure_future(batcher.submit(["1"], ["1"], [1]))
        await asyncio.sleep(0.05)
        rest = [asyncio.ensure_future(batcher.submit([t], [t], [1])) for t in ("2", "3")]
        await asyncio.sleep(0.05)
        model.gate.set()
        out = await asyncio.gather(first, *rest)
        await batcher.stop()
        return out

    model = FakeModel()
    batcher = DynamicBatcher(model, token_budget=100, wait_s=0.0)
    run(scenario(model, batcher))
    assert model.calls == [["1"], ["2", "3"]]


def test_a_failing_forward_pass_fails_its_requests_only() -> None:
    model = FakeModel(fail=True)
    batcher = DynamicBatcher(model, token_budget=100, wait_s=0.5)

    async def scenario():
        await batcher.start()
        results = await asyncio.gather(batcher.submit(["1"], ["1"], [1]),
                                       batcher.submit(["2"], ["2"], [1]), return_exceptions=True)
        model.fail = False
        after = await batcher.submit(["3"], ["3"], [1])  # the batcher keeps serving
        await batcher.stop()
        return results, after

    results, after = run(scenario())
    assert all(isinstance(r, RuntimeError) and "out of memory" in str(r) for r in results)
    assert after.tolist() == [[3.0], [-3.0]]
    assert batcher.stats.failures == 1


def test_stop_finishes_queued_jobs_and_refuses_new_ones() -> None:
    model = FakeModel()
    batcher = DynamicBatcher(model, token_budget=1, wait_s=0.0)

    async def scenario():
        await batcher.start()
        model.gate.clear()
        pending = [asyncio.ensure_future(batcher.submit([t], [t], [1])) for t in "123"]
        await asyncio.sleep(0.05)
        stopping = asyncio.ensure_future(batcher.stop())
        await asyncio.sleep(0.05)
        model.gate.set()
        await stopping
        with pytest.raises(RuntimeError, match="not running"):
            await batcher.submit(["4"], ["4"], [1])
        return await asyncio.gather(*pending)

    results = run(scenario())
    assert [float(r[0, 0]) for r in results] == [1.0, 2.0, 3.0]
    assert model.calls == [["1"], ["2"], ["3"]]


def test_a_cancelled_request_is_not_scored() -> None:
    model = FakeModel()
    batcher = DynamicBatcher(model, token_budget=100, wait_s=0.2)

    async def scenario():
        await batcher.start()
        gone = asyncio.ensure_future(batcher.submit(["1"], ["1"], [1]))
        kept = asyncio.ensure_future(batcher.submit(["2"], ["2"], [1]))
        await asyncio.sleep(0)
        gone.cancel()  # the client went away before its batch ran
        out = await kept
        await batcher.stop()
        return out

    assert run(scenario()).tolist() == [[2.0], [-2.0]]
    assert model.calls == [["2"]]


@pytest.mark.parametrize("budget, wait, turn", [(0, 0.1, None), (10, -1.0, None), (10, 0.1, 0)])
def test_bad_settings_are_refused(budget: int, wait: float, turn: int | None) -> None:
    with pytest.raises(ValueError):
        DynamicBatcher(FakeModel(), token_budget=budget, wait_s=wait, turn_tokens=turn)


def test_a_big_request_takes_turns_and_a_small_one_waits_for_one_pass_only() -> None:
    """A 6-item request in turns of 2 items; a small request sent while its first piece runs
    rides in the very next pass, and the big one still gets its rewards in item order."""
    async def scenario(model: FakeModel, batcher: DynamicBatcher):
        await batcher.start()
        model.gate.clear()  # hold the first pass until the small request has queued
        big_items = [str(i) for i in range(1, 7)]
        big = asyncio.ensure_future(batcher.submit(big_items, big_items, [1] * 6))
        await asyncio.sleep(0.05)
        small = asyncio.ensure_future(batcher.submit(["9"], ["9"], [1]))
        await asyncio.sleep(0.05)
        model.gate.set()
        out = await asyncio.gather(big, small)
        await batcher.stop()
        return out

    model = FakeModel()
    batcher = DynamicBatcher(model, token_budget=100, turn_tokens=2, wait_s=0.0)
    big, small = run(scenario(model, batcher))
    assert model.calls == [["1", "2"], ["9", "3", "4"], ["5", "6"]]
    assert big.tolist() == [[1.0, 2, 3, 4, 5, 6], [-1.0, -2, -3, -4, -5, -6]]
    assert small.tolist() == [[9.0], [-9.0]]
    assert batcher.stats.split_requests == 1 and batcher.stats.forward_passes == 3


def test_without_batching_a_big_request_runs_whole() -> None:
    model = FakeModel()
    batcher = DynamicBatcher(model, token_budget=2, turn_tokens=1, wait_s=0.0, enabled=False)
    run(_submit_all(batcher, [["1", "2", "3"], ["4"]]))
    assert model.calls == [["1", "2", "3"], ["4"]]
