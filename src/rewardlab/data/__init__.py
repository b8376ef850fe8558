"""Preference data: load pairs from files, folders or the Hub, validate them, split them.

Public API: :func:`read_preferences` (dataset and :class:`LoadReport`), :func:`load_preferences`
(dataset only, problems logged), :func:`split_train_valid`, and :class:`DataError`. See
:mod:`rewardlab.data.formats` for the input layouts understood and :mod:`rewardlab.data.checks`
for the suspicious-pair kinds.
"""

from __future__ import annotations

from rewardlab.data.checks import SUSPICIOUS_KINDS
from rewardlab.data.errors import DataError
from rewardlab.data.formats import FORMATS
from rewardlab.data.load import ON_BAD, load_preferences, read_preferences
from rewardlab.data.load_report import LoadReport
from rewardlab.data.split import split_train_valid, split_train_valid_test

__all__ = [
    "FORMATS",
    "ON_BAD",
    "SUSPICIOUS_KINDS",
    "DataError",
    "LoadReport",
    "load_preferences",
    "read_preferences",
    "split_train_valid",
    "split_train_valid_test",
]
