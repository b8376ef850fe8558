"""The embedding backend end to end on toy data with the real bundled MiniLM."""

from pathlib import Path

import torch

from rewardlab.config import ModelConfig
from rewardlab.models import build_reward_model, load_reward_model
from rewardlab.models.base import Pairs


def _config(tmp_path: Path, **kw: object) -> ModelConfig:
    base = {"members": 3, "epochs": 4, "batch_size": 16, "cache_dir": str(tmp_path / "cache")}
    return ModelConfig.from_dict({**base, **kw})


def test_learns_toy_signal_and_scores_m_by_n(tmp_path: Path, toy_pairs: Pairs) -> None:
    model = build_reward_model(_config(tmp_path), progress=False)
    train, held = toy_pairs.subset(range(80)), toy_pairs.subset(range(80, 120))
    fit = model.fit(train, valid=held, eval_every=5)
    delta = model.score(held)
    assert delta.shape == (3, 40)
    assert (delta.mean(0) > 0).float().mean() > 0.9
    assert fit.curve and fit.curve[-1]["step"] == fit.steps
    assert 0 <= fit.curve[-1]["valid_accuracy"] <= 1


def test_members_differ_but_runs_repeat(tmp_path: Path, toy_pairs: Pairs) -> None:
    a = build_reward_model(_config(tmp_path), progress=False)
    a.fit(toy_pairs)
    b = build_reward_model(_config(tmp_path), progress=False)
    b.fit(toy_pairs)
    da, db = a.score(toy_pairs), b.score(toy_pairs)
    assert torch.equal(da, db)  # same seed, same result
    assert not torch.equal(da[0], da[1])  # members have their own init and order


def test_flipped_targets_learn_the_opposite(tmp_path: Path, toy_pairs: Pairs) -> None:
    model = build_reward_model(_config(tmp_path, members=1), progress=False)
    model.fit(toy_pairs, target=torch.zeros(len(toy_pairs)))
    assert (model.score(toy_pairs)[0] < 0).float().mean() > 0.9


def test_save_and_load_round_trip(tmp_path: Path, toy_pairs: Pairs) -> None:
    model = build_reward_model(_config(tmp_path, members=2, epochs=1), progress=False)
    model.fit(toy_pairs)
    path = model.save(tmp_path / "model")
    assert (path / "heads.safetensors").is_file()
    loaded = load_reward_model(path, progress=False)
    assert torch.equal(loaded.score(toy_pairs), model.score(toy_pairs))
