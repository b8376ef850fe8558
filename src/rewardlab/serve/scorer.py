"""A saved reward-model ensemble, ready to score (prompt, response) items.

Shared by ``rewardlab score``, ``rewardlab serve`` and :class:`rewardlab.RewardFunction`. It
builds on :meth:`rewardlab.models.base.RewardModel.rewards` (``[M, N]`` on either backend) and
turns its output into the statistics of :mod:`rewardlab.serve.ensemble`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rewardlab.serve.ensemble import RewardStats, reward_statistics

__all__ = ["CHARS_PER_TOKEN_LIMIT", "ITEM_CHARS_PER_TOKEN", "EnsembleScorer"]

CHARS_PER_TOKEN_LIMIT = 32
"""Texts longer than this many characters per allowed token count as over-long unread."""

HEAD_CHARS_PER_TOKEN = 8
"""Of a text longer than this many characters per token of the max length, only the head is
tokenized when the head alone is over the max length (natural text: about 4 per token)."""
HEAD_MARGIN = 16
"""Tokens a head must exceed the max length by (a word cut at the head's end can gain some)."""

ITEM_CHARS_PER_TOKEN = 64
"""A server refuses a text over this many characters per token of the max length (natural text
has about 4 characters per token, so this lets through about 16 times what the model reads)."""


class EnsembleScorer:
    """Scores items with every member of a saved ensemble.

    Args:
        model: a trained :class:`~rewardlab.models.base.RewardModel`.
        path: the folder it was loaded from (reported by ``info``).
        backend: its backend's name (from ``rewardlab.json``).
        penalty: λ of ``uwo`` (mean - λ·variance).
    """

    def __init__(self, model: Any, *, path: str, backend: str, penalty: float) -> None:
        reward_statistics(np.zeros((1, 0)), penalty=penalty)  # validates λ early
        self.model, self.path, self.backend, self.penalty = model, path, backend, penalty
        self._local = threading.local()

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, penalty: float, progress: bool = False,
             feature_cache: bool = True) -> EnsembleScorer:
        """Load a model folder written by ``rewardlab train`` (either backend).

        ``feature_cache=False`` keeps the embedding backend's frozen vectors out of the disk
        cache: a server sees new texts in every request, and caching each would write a cache
        shard per request (the other backend has no such cache and ignores it).
        """
        from rewardlab.models import load_reward_model
        from rewardlab.models.base import read_model_info

        backend = str(read_model_info(path).get("backend"))
        model = load_reward_model(path, progress=progress)
        if not feature_cache:
            cfg = model.config
            model.config = dataclasses.replace(
                cfg, embedding=dataclasses.replace(cfg.embedding, cache_dir="off"))
        return cls(model, path=str(Path(path)), backend=backend, penalty=penalty)

    @property
    def members(self) -> int:
        return int(self.model.members)

    @property
    def max_length(self) -> int:
        """Tokens the model reads of an item (``--max-length`` at training)."""
        return int(self.model.config.max_length)

    @property
    def tokenizer(self) -> Any:
        """This thread's private copy of the tokenizer that measures texts for this model: the
        fine-tuned model's own, or the embedding backend's frozen encoder's (the protocol has no
        tokenizer of its own, so this is the one place that looks for either). One copy per
        thread, because a fast tokenizer must not be used from two threads at once: the model's
        own one tokenizes in the thread that scores, and a server measures each request in a
        thread of its own, so a big request's tokenizing never holds up a small one's."""
        tok = getattr(self._local, "tokenizer", None)
        if tok is None:
            own = getattr(self.model, "tokenizer", None)
            tok = self._local.tokenizer = copy.deepcopy(own if own is not None
                                                        else self.model.encoder.tokenizer)
        return tok

    @property
    def special_tokens(self) -> list[str]:
        """The tokenizer's special-token strings (``[CLS]``, ``</s>``, ``<|endoftext|>``...)."""
        return [str(t) for t in self.tokenizer.all_special_tokens]

    @property
    def max_item_chars(self) -> int:
        """Default cap on one text's characters: :data:`ITEM_CHARS_PER_TOKEN` per token of the
        max length."""
        return ITEM_CHARS_PER_TOKEN * self.max_length

    def token_counts(self, texts: Sequence[str]) -> np.ndarray:
        """``[n]`` token counts of ``texts`` (no special tokens), for the batch budget and the
        over-long check; a count over the max length may be given as max length + 1.

        Tokenizing costs time in proportion to the text, and only counts up to the max length
        matter, so long texts are not read to their end: one longer than
        :data:`CHARS_PER_TOKEN_LIMIT` characters per token of the max length is over it for
        any natural text, counted unread; of one longer than :data:`HEAD_CHARS_PER_TOKEN` per
        token, the head of that many characters is tokenized first, and if the head alone is
        over the max length (by a margin: a word cut in two can gain tokens), so is the text.
        """
        over = self.max_length + 1
        head = HEAD_CHARS_PER_TOKEN * over
        counts = np.full(len(texts), over, dtype=np.int64)
        short = [i for i, t in enumerate(texts) if len(t) <= CHARS_PER_TOKEN_LIMIT * over]
        counts[short] = self._count([texts[i][:head] for i in short])
        unsure = [i for i in short if len(texts[i]) > head and counts[i] <= over + HEAD_MARGIN]
        counts[unsure] = self._count([texts[i] for i in unsure])
        long = np.array([len(t) > head for t in texts], dtype=bool)
        counts[long & (counts > over)] = over  # read in part: known to be over, not by how much
        return counts

    def _count(self, texts: list[str]) -> list[int]:
        if not texts:
            return []
        ids = self.tokenizer(texts, add_special_tokens=False, truncation=False,
                             verbose=False)["input_ids"]
        return [len(x) for x in ids]

    def warm_up(self) -> None:
        """Load the tokenizer and the weights now (they load lazily): a server's first request
        then costs what any other does, and loading never holds up requests in flight."""
        self.token_counts(["warm up"])
        self.rewards(["warm up"], ["warm up"])

    def rewards(self, prompts: Sequence[str], responses: Sequence[str]) -> np.ndarray:
        """Every member's reward of each item: ``[M, N]`` float64, in one call of the model."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        if not prompts:
            return np.zeros((self.members, 0))
        return self.model.rewards(list(prompts), list(responses)).numpy().astype(np.float64)

    def rewards_in_chunks(self, prompts: Sequence[str], responses: Sequence[str], *,
                          chunk: int, progress: bool = False,
                          desc: str = "scoring") -> np.ndarray:
        """:meth:`rewards` of ``chunk`` items at a time, under a progress bar."""
        from tqdm.auto import tqdm

        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        parts = [np.zeros((self.members, 0))]
        with tqdm(total=len(prompts), unit="item", desc=desc, disable=not progress) as bar:
            for start in range(0, len(prompts), chunk):
                stop = min(start + chunk, len(prompts))
                parts.append(self.rewards(prompts[start:stop], responses[start:stop]))
                bar.update(stop - start)
        return np.concatenate(parts, axis=1)

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> RewardStats:
        """Mean, std, members, UWO and min of each item (see :mod:`rewardlab.serve.ensemble`)."""
        return reward_statistics(self.rewards(prompts, responses), penalty=self.penalty)

    def info(self) -> dict[str, Any]:
        """What a client needs to know about the model."""
        return {"model": self.path, "backend": self.backend, "members": self.members,
                "max_length": self.max_length, "penalty": self.penalty}
