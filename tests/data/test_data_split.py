"""Prompt-grouped train/validation split: deterministic, no prompt on both sides."""

from __future__ import annotations

import datasets
import pytest

from rewardlab.data import split_train_valid


def make_ds(n_prompts: int = 200, per_prompt: int = 3) -> datasets.Dataset:
    rows = [{"prompt": f"prompt {p}", "chosen": f"c{p}.{k}", "rejected": f"r{p}.{k}",
             "source": f"s{p % 4}"}
            for p in range(n_prompts) for k in range(per_prompt)]
    return datasets.Dataset.from_list(rows)


def test_grouped_and_deterministic() -> None:
    ds = make_ds()
    train, valid = split_train_valid(ds, valid_frac=0.2, seed=3)
    assert len(train) + len(valid) == len(ds)
    assert not set(train["prompt"]) & set(valid["prompt"])
    assert 0.1 < len(set(valid["prompt"])) / 200 < 0.3
    again_train, again_valid = split_train_valid(ds, valid_frac=0.2, seed=3)
    assert again_train["chosen"] == train["chosen"]
    assert again_valid["chosen"] == valid["chosen"]
    _, other = split_train_valid(ds, valid_frac=0.2, seed=4)
    assert other["chosen"] != valid["chosen"]


def test_independent_of_row_order() -> None:
    ds = make_ds()
    _, valid = split_train_valid(ds, valid_frac=0.3, seed=0)
    _, valid_shuffled = split_train_valid(ds.shuffle(seed=1), valid_frac=0.3, seed=0)
    assert set(valid["chosen"]) == set(valid_shuffled["chosen"])


def test_zero_fraction_gives_empty_valid() -> None:
    ds = make_ds(10)
    train, valid = split_train_valid(ds, valid_frac=0.0, seed=0)
    assert len(train) == len(ds)
    assert len(valid) == 0
    assert valid.column_names == ds.column_names


def test_other_group_column() -> None:
    train, valid = split_train_valid(make_ds(), valid_frac=0.5, seed=0, group_by="source")
    assert not set(train["source"]) & set(valid["source"])


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"valid_frac must be in \[0, 1\)"):
        split_train_valid(make_ds(5), valid_frac=1.0, seed=0)
    with pytest.raises(ValueError, match="no such column"):
        split_train_valid(make_ds(5), valid_frac=0.1, seed=0, group_by="question")
