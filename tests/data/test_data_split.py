"""Prompt-grouped train/validation split: deterministic, no prompt on both sides."""

from __future__ import annotations

import datasets
import pytest

from rewardlab.data import split_train_valid, split_train_valid_test


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
    with pytest.raises(ValueError, match=r"valid_frac and test_frac must be >= 0 with a sum"):
        split_train_valid(make_ds(5), valid_frac=1.0, seed=0)
    with pytest.raises(ValueError, match="no such column"):
        split_train_valid(make_ds(5), valid_frac=0.1, seed=0, group_by="question")


def test_three_way_split_is_grouped_and_extends_the_two_way_one() -> None:
    ds = make_ds()
    train, valid, test = split_train_valid_test(ds, valid_frac=0.1, test_frac=0.1, seed=2)
    assert len(train) + len(valid) + len(test) == len(ds)
    sides = [set(x["prompt"]) for x in (train, valid, test)]
    assert not (sides[0] & sides[1] or sides[0] & sides[2] or sides[1] & sides[2])
    for part in (valid, test):
        assert 0.04 < len(set(part["prompt"])) / 200 < 0.2
    # Adding a test split takes prompts from training only: validation is unchanged.
    _, valid_two_way = split_train_valid(ds, valid_frac=0.1, seed=2)
    assert valid["chosen"] == valid_two_way["chosen"]


def test_small_data_still_gets_every_held_out_split() -> None:
    # Three prompt groups: the hash alone would often leave a 10% split empty.
    for seed in range(20):
        train, valid, test = split_train_valid_test(make_ds(3, 2), valid_frac=0.1,
                                                    test_frac=0.1, seed=seed)
        assert len(set(valid["prompt"])) == len(set(test["prompt"])) == 1
        assert len(set(train["prompt"])) == 1
    train, valid, test = split_train_valid_test(make_ds(2, 2), valid_frac=0.1, test_frac=0.1,
                                                seed=0)
    assert len(train) > 0  # training keeps a group even when a held-out split cannot get one
