"""``--features joint``: the frozen encoder reads prompt + response as one sequence.

Through a tiny random encoder, so each test is quick. The guard that matters: a joint model must
never quietly encode the response alone (the ``separate`` features).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from rewardlab.config import EmbeddingConfig, ModelConfig
from rewardlab.models.base import Pairs
from rewardlab.models.embedding import EmbeddingRewardModel
from tiny_models import make_toy_pairs

_TINY: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def tiny(tiny_encoder_and_cache: dict[str, str]) -> str:
    """A tiny random encoder and a feature cache of this module's own."""
    _TINY.update(tiny_encoder_and_cache)
    return _TINY["model"]


def model(features: str, *, max_length: int = 64, epochs: int = 2,
          head_features: str = "prompt-response") -> EmbeddingRewardModel:
    cfg = ModelConfig(model=_TINY["model"], members=3, epochs=epochs, batch_size=16,
                      device="cpu", max_length=max_length,
                      embedding=EmbeddingConfig(hidden=8, proj_dim=0, features=features,
                                                head_features=head_features,
                                                cache_dir=_TINY["cache"]))
    return EmbeddingRewardModel(cfg, progress=False)


def same_response_two_prompts() -> Pairs:
    return Pairs(["What is the capital of France?", "How do I boil an egg?"],
                 ["Paris, I think.", "Paris, I think."], ["No idea.", "Ask someone else."])


def by_hand(m: EmbeddingRewardModel, prompt: str, response: str, *,
            response_only: bool = False) -> np.ndarray:
    """The mean-pooled, normalised vector of ``[CLS] prompt [SEP] response [SEP]`` (short:
    nothing is cut), over all its tokens or over ``response [SEP]`` only."""
    enc = m.encoder
    ids = enc.tokenizer(prompt, response)["input_ids"]
    with torch.inference_mode():
        hidden = enc.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
    start = len(enc.tokenizer(prompt)["input_ids"]) if response_only else 0
    return torch.nn.functional.normalize(hidden[start:].mean(dim=0), dim=0).numpy()


def test_joint_response_vectors_are_of_the_prompt_and_response_read_together() -> None:
    data = same_response_two_prompts()
    joint, separate = model("joint"), model("separate")
    jv, sv = joint.prepare(data), separate.prepare(data)
    j_table, s_table = jv.store.tensor(), sv.store.tensor()
    chosen = j_table[torch.from_numpy(jv.chosen)].numpy()
    # One response after two prompts: two joint vectors, each the backbone's on the pair.
    for i in range(2):
        np.testing.assert_allclose(chosen[i], by_hand(joint, data.prompt[i], data.chosen[i]),
                                   atol=1e-5)
    assert not np.allclose(chosen[0], chosen[1], atol=1e-3)
    # The separate features give that response one vector, whatever it answers.
    s_chosen = s_table[torch.from_numpy(sv.chosen)].numpy()
    np.testing.assert_array_equal(s_chosen[0], s_chosen[1])
    assert not np.allclose(chosen[0], s_chosen[0], atol=1e-3)
    # The prompt rows stay the prompt's own vector under both.
    np.testing.assert_array_equal(j_table[torch.from_numpy(jv.prompt)].numpy(),
                                  s_table[torch.from_numpy(sv.prompt)].numpy())
    assert jv.encoder != sv.encoder  # joint vectors are never fed to a separate model


def test_joint_response_pools_only_the_response_tokens_of_the_pair() -> None:
    data = same_response_two_prompts()
    m = model("joint-response")
    vec = m.prepare(data)
    chosen = vec.store.tensor()[torch.from_numpy(vec.chosen)].numpy()
    for i in range(2):
        want = by_hand(m, data.prompt[i], data.chosen[i], response_only=True)
        np.testing.assert_allclose(chosen[i], want, atol=1e-5)
        assert not np.allclose(chosen[i], by_hand(m, data.prompt[i], data.chosen[i]), atol=1e-3)
    assert np.abs(chosen[0] - chosen[1]).max() > 1e-4  # the prompt is still read


def test_joint_features_have_their_own_cache(tmp_path: Path) -> None:
    data = same_response_two_prompts()
    m = model("joint")
    m.prepare(data)
    folders = {p.name.rsplit("-", 1)[-1] for p in (m.cache_root / "features").iterdir()}
    assert "joint" in folders
    assert len(m.encoder.cache("joint")) == 4  # two prompts x (chosen, rejected), all distinct


def test_a_long_pair_keeps_the_end_of_the_prompt_and_the_start_of_the_response() -> None:
    m = model("joint", max_length=12)
    prompt = "alpha beta gamma delta epsilon zeta eta theta"
    response = "one two three four five six seven eight nine ten"
    ids, counts, _ = m.encoder._tokenize([(prompt, response)], "joint")
    words = m.encoder.tokenizer.convert_ids_to_tokens(ids[0])
    # 12 tokens: [CLS], [SEP] and [SEP] leave 9, all taken by the response's start.
    assert words == ["[CLS]", "[SEP]", *response.split()[:9], "[SEP]"]
    assert counts.tolist() == [10]  # the response's tokens and its closing [SEP]
    short = "one two three"
    ids, counts, _ = m.encoder._tokenize([(prompt, short)], "joint")
    words = m.encoder.tokenizer.convert_ids_to_tokens(ids[0])
    assert words == ["[CLS]", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "[SEP]",
                     *short.split(), "[SEP]"]
    assert counts.tolist() == [4]


@pytest.mark.parametrize(("features", "head_features"), [
    ("joint", "prompt-response"), ("joint", "response"), ("joint-response", "prompt-response")])
def test_a_saved_joint_model_reloads_and_rewards_as_it_scored(tmp_path: Path, features: str,
                                                              head_features: str) -> None:
    data = make_toy_pairs(48)
    m = model(features, head_features=head_features)
    m.fit(data)
    delta = m.score(data)
    m.save(tmp_path / "m")
    again = EmbeddingRewardModel.load(tmp_path / "m", progress=False)
    assert again.config.embedding.features == features
    via_rewards = (again.rewards(data.prompt, data.chosen)
                   - again.rewards(data.prompt, data.rejected))
    torch.testing.assert_close(via_rewards, delta, atol=1e-5, rtol=1e-4)
    # Read as separate features, the same heads give other rewards: the path matters.
    again.config.embedding.features = "separate"
    separate = again.rewards(data.prompt, data.chosen) - again.rewards(data.prompt, data.rejected)
    assert not torch.allclose(separate, delta, atol=1e-3)
