"""RewardFunction called exactly as TRL's GRPOTrainer calls a custom reward function.

TRL (trl/trainer/grpo_trainer.py, GRPOTrainer._calculate_rewards) builds
``reward_kwargs = {key: [example[key] for example in inputs] for key in keys}`` from every
dataset column but prompt / completion / completion_ids, adds ``trainer_state``, and calls
``reward_func(prompts=prompts, completions=completions, completion_ids=completion_ids_list,
**reward_kwargs)``; it names the function's metric ``reward_func.__name__``. Conversational
completions are ``[{"role": "assistant", "content": text}]``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from rewardlab import RewardFunction
from rewardlab.data.responses import render_conversation
from rewardlab.serve.scorer import EnsembleScorer


def call_like_trl(reward_func, inputs: list[dict], completions: list, completion_ids: list):
    """The call of GRPOTrainer._calculate_rewards, with a stand-in trainer state."""
    prompts = [x["prompt"] for x in inputs]
    keys = [key for key in inputs[0] if key not in ["prompt", "completion", "completion_ids"]]
    reward_kwargs = {key: [example[key] for example in inputs] for key in keys}
    reward_kwargs["trainer_state"] = object()
    name = reward_func.__name__  # read once at GRPOTrainer.__init__
    out = reward_func(prompts=prompts, completions=completions,
                      completion_ids=completion_ids, **reward_kwargs)
    return name, out


def test_plain_text_prompts(embedding_model: Path) -> None:
    fn = RewardFunction(embedding_model, penalty=0.5, reward="uwo")
    inputs = [{"prompt": f"Question {i}: help?", "answer": "x", "level": i} for i in range(3)]
    completions = ["Sure! Here is a clear answer.", "No.", "Whatever."]
    name, out = call_like_trl(fn, inputs, completions, [[1, 2], [3], [4]])
    assert name == "rewardlab_uwo"
    assert isinstance(out, list) and all(type(x) is float for x in out) and len(out) == 3
    expected = EnsembleScorer.load(embedding_model, penalty=0.5).score(
        [x["prompt"] for x in inputs], completions)
    np.testing.assert_allclose(out, expected.uwo, atol=1e-5)
    np.testing.assert_allclose(fn.last.std, expected.std, atol=1e-5)


def test_conversational_prompts(embedding_model: Path) -> None:
    fn = RewardFunction(embedding_model, reward="min")
    inputs = [{"prompt": [{"role": "system", "content": "Be brief."},
                          {"role": "user", "content": f"Question {i}?"}]} for i in range(2)]
    texts = ["Of course, here is how.", "No."]
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    name, out = call_like_trl(fn, inputs, completions, [[1], [2]])
    assert name == "rewardlab_min"
    rendered = [render_conversation(x["prompt"], c) for x, c in zip(inputs, completions)]
    assert rendered[0] == ("\n\nSystem: Be brief.\n\nHuman: Question 0?\n\nAssistant:",
                           " Of course, here is how.")
    expected = EnsembleScorer.load(embedding_model, penalty=1.0).score(
        [p for p, _ in rendered], [r for _, r in rendered])
    np.testing.assert_allclose(out, expected.min, atol=1e-5)


def test_bad_arguments(embedding_model: Path) -> None:
    with pytest.raises(ValueError, match="unknown reward 'max'"):
        RewardFunction(embedding_model, reward="max")
    fn = RewardFunction(embedding_model)
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        fn(prompts=["a", "b"], completions=["c"])


@pytest.mark.parametrize("asked", ["uwo", "min"])
def test_one_member_returns_the_mean_and_warns_once(one_member_model: Path, asked: str) -> None:
    with pytest.warns(UserWarning, match=rf"M=1.*'{asked}' equals the mean; serving 'mean'"):
        fn = RewardFunction(one_member_model, reward=asked)
    assert fn.reward == "mean" and fn.__name__ == "rewardlab_mean"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # calls say nothing more
        _, out = call_like_trl(fn, [{"prompt": "Question?"}], ["Answer."], [[1]])
    expected = EnsembleScorer.load(one_member_model, penalty=1.0).score(["Question?"],
                                                                        ["Answer."])
    np.testing.assert_allclose(out, expected.mean, atol=1e-6)
