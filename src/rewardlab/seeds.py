"""Seed streams: every random choice of a run gets its own seed, derived from ``--seed``.

Pure. Deriving by hashing a label (``derive_seed(seed, "strength", fold)``) instead of adding
offsets keeps streams independent: the strength ensemble's first member and the experiments'
first baseline model never share a seed, whatever the settings.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["derive_seed", "member_seed"]

_MODULUS = 2**31 - 1


def derive_seed(seed: int, *labels: str | int) -> int:
    """A seed in [0, 2^31 - 1) fixed by ``seed`` and the ``labels`` naming one random stream.

    Different labels give unrelated seeds; the same labels give the same seed on every machine.
    """
    data = json.dumps([seed, *labels]).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big") % _MODULUS


def member_seed(seed: int, member: int) -> int:
    """Seed of ensemble member ``member`` of a model seeded ``seed`` (distinct, stable)."""
    return (seed * 1_000_003 + member * 7919 + 17) % _MODULUS
