"""Seed streams: stable across processes, independent across labels."""

import os
import subprocess
import sys

from rewardlab.seeds import derive_seed, member_seed


def test_derived_seeds_are_in_range_and_stable_within_a_run() -> None:
    seeds = [derive_seed(s, "strength", k) for s in range(20) for k in range(20)]
    assert all(isinstance(x, int) and 0 <= x < 2**31 - 1 for x in seeds)
    # Spread over the whole range (a seed for torch, numpy and random alike).
    assert max(seeds) > 2**30 and min(seeds) < 2**27
    assert derive_seed(3, "strength", 0) == derive_seed(3, "strength", 0)


def test_labels_name_independent_streams() -> None:
    # Unlike seed + offset, no two (seed, labels) share a seed: "strength" member 1 of seed 0
    # is not seed 1's member 0, and the order of labels matters.
    seeds = {derive_seed(s, label, k) for s in range(30) for label in ("strength", "experiment",
                                                                       "folds") for k in range(30)}
    assert len(seeds) == 30 * 3 * 30
    assert derive_seed(0, "strength", 1) != derive_seed(1, "strength", 0)
    assert derive_seed(0, "a", "b") != derive_seed(0, "b", "a")
    assert derive_seed(0, 1) != derive_seed(0, "1")
    assert derive_seed(0) != derive_seed(0, "final")


def test_derived_seed_is_the_same_in_a_fresh_process() -> None:
    # Python's own hash() of a str changes per process (PYTHONHASHSEED); derive_seed must not.
    code = "from rewardlab.seeds import derive_seed; print(derive_seed(12, 'strength', 'k', 3))"
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    assert int(out.stdout) == derive_seed(12, "strength", "k", 3)


def test_member_seeds_are_distinct_and_in_range() -> None:
    seeds = {member_seed(s, m) for s in range(50) for m in range(50)}
    assert len(seeds) == 2500
    assert all(isinstance(x, int) and 0 <= x < 2**31 - 1 for x in seeds)
    assert 0 <= member_seed(2**40, 3) < 2**31 - 1
    assert member_seed(5, 0) == member_seed(5, 0)
