"""The server against OpenRLHF's own HTTP reward client, not a copy of its request shape.

The client is ``SingleTurnAgentExecutor._fetch_rewards_via_http`` of the installed
``openrlhf`` package (0.11.2: ``openrlhf/utils/agent.py``; it posts ``{"query", "prompts",
"labels"}`` with aiohttp, retries a failed request 5 times, then raises). Installed with
``pip install --no-deps openrlhf==0.11.2`` (its dependencies are a GPU training stack) plus
``aiohttp``. Importing ``openrlhf.utils`` runs its ``__init__``, which pulls in sympy, torch and
deepspeed, so :func:`load_agent_module` loads ``agent.py`` from its file instead: stand-in
``openrlhf`` and ``openrlhf.utils`` packages (empty modules whose ``__path__`` is the real
folder, so their ``__init__`` never runs) let ``agent.py``'s one package import,
``openrlhf.utils.logging_utils``, resolve to the real file.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from serve_helpers import running_server


def load_agent_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """``openrlhf/utils/agent.py`` as a module, without running the package's ``__init__``."""
    missing = [name for name in ("openrlhf", "aiohttp") if importlib.util.find_spec(name) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: pip install --no-deps "
                    f"openrlhf==0.11.2 aiohttp (the dev extra)")
    spec = importlib.util.find_spec("openrlhf")  # finds the folder; imports nothing
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    for name, folder in (("openrlhf", root), ("openrlhf.utils", root / "utils")):
        stub = types.ModuleType(name)
        stub.__path__ = [str(folder)]
        monkeypatch.setitem(sys.modules, name, stub)
    for name in ("openrlhf.utils.logging_utils", "openrlhf.utils.agent"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    file_spec = importlib.util.spec_from_file_location("openrlhf.utils.agent",
                                                       root / "utils" / "agent.py")
    assert file_spec is not None and file_spec.loader is not None
    module = importlib.util.module_from_spec(file_spec)
    monkeypatch.setitem(sys.modules, "openrlhf.utils.agent", module)
    file_spec.loader.exec_module(module)
    return module


CHATML = ("<|im_start|>user\nHow do I boil an egg?<|im_end|>\n<|im_start|>assistant\n",
          "Put it in boiling water for nine minutes.", "<|im_end|>\n<|endoftext|>")
LLAMA2 = ("<s>[INST] Name a primary colour. [/INST]", " Blue is one.", " </s>")


def test_openrlhf_client_gets_rewards_for_rollouts_as_decoded(monkeypatch, scorer) -> None:
    """Rollouts from two chat templates, decoded with their special tokens, and one whose
    prompt the policy mangled: every reward comes back, each equal to ``score`` of the text
    the model should read."""
    agent = load_agent_module(monkeypatch)
    queries = [p + r + end for p, r, end in (CHATML, LLAMA2)] + ["<s>a mangled rollout</s>"]
    prompts = [CHATML[0], LLAMA2[0], "a prompt the rollout lost"]
    with running_server(scorer, strip_tokens="<|im_end|>,<|endoftext|>,<s>,</s>",
                        reward="mean") as url:
        executor = agent.SingleTurnAgentExecutor(remote_rm_url=f"{url}/get_reward")
        answers = asyncio.run(executor._fetch_rewards_via_http(queries, prompts,
                                                               [None] * 3))
    assert len(answers) == 1  # one server: one shard
    expected = scorer.score([CHATML[0], "[INST] Name a primary colour. [/INST]", ""],
                            [CHATML[1], LLAMA2[1], "a mangled rollout"])
    np.testing.assert_allclose(answers[0]["rewards"], expected.mean, atol=1e-5)
    assert answers[0]["extra_logs"]["prompt_not_found"] == [0.0, 0.0, 1.0]


def test_openrlhf_client_one_rollout_at_a_time(monkeypatch, scorer) -> None:
    """How ``SingleTurnAgentExecutor.execute`` calls it: one query, its prompt and label."""
    agent = load_agent_module(monkeypatch)
    prompt, response, end = LLAMA2
    with running_server(scorer, strip_tokens="</s>,<s>") as url:
        executor = agent.SingleTurnAgentExecutor(remote_rm_url=f"{url}/get_reward")
        (answer,) = asyncio.run(executor._fetch_rewards_via_http([prompt + response + end],
                                                                 [prompt], ["label"]))
    expected = scorer.score(["[INST] Name a primary colour. [/INST]"], [response])
    np.testing.assert_allclose(answer["rewards"], expected.uwo, atol=1e-5)
    assert answer["scores"] == answer["rewards"]
    assert answer["extra_logs"]["no_prompts"] == [0.0]
