"""Preference data: load pairs from files, folders or the Hub, validate them, split them.

Public API: :func:`read_preferences` (dataset and :class:`LoadReport`), :func:`load_preferences`
(dataset only, problems logged), :func:`split_train_valid`, and :class:`DataError`;
:func:`parse_mapping` and :func:`parse_winner_values` check ``--map`` / ``--winner-values``
text. See :mod:`rewardlab.data.formats` for the input layouts understood (and
:mod:`rewardlab.data.dialogue` for how dialogues become text, :mod:`rewardlab.data.ranked` for
scores and rankings), :mod:`rewardlab.data.mapping` for mappings and winner labels,
:mod:`rewardlab.data.readers` for file kinds and size limits, and :mod:`rewardlab.data.checks`
for the suspicious-pair kinds.
"""

from __future__ import annotations

from rewardlab.data.checks import SUSPICIOUS_KINDS
from rewardlab.data.errors import DataError
from rewardlab.data.formats import FORMATS
from rewardlab.data.load import ON_BAD, TIES, load_preferences, read_preferences
from rewardlab.data.load_report import LoadReport
from rewardlab.data.mapping import parse_mapping, parse_winner_values
from rewardlab.data.split import split_train_valid, split_train_valid_test
from rewardlab.data.streams import DEFAULT_MAX_RECORD_BYTES

__all__ = [
    "DEFAULT_MAX_RECORD_BYTES",
    "FORMATS",
    "ON_BAD",
    "SUSPICIOUS_KINDS",
    "TIES",
    "DataError",
    "LoadReport",
    "load_preferences",
    "parse_mapping",
    "parse_winner_values",
    "read_preferences",
    "split_train_valid",
    "split_train_valid_test",
]
