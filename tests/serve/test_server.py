"""The HTTP API against a real uvicorn server on 127.0.0.1, through real HTTP clients.

The server scores with a 3-member embedding ensemble trained on toy pairs (see conftest.py).
"""

from __future__ import annotations

import asyncio
import json

import httpx
import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from serve_helpers import running_server

PROMPTS = [f"Question {i}: please help with topic {i % 11}." for i in range(12)]
RESPONSES = [["Sure! Here is a clear, detailed and helpful answer.", "No.", "Whatever.",
              "Of course. Let me walk you through it with an example."][i % 4] + f" [{i}]"
             for i in range(12)]


def test_health_and_info(server: str, scorer) -> None:
    assert httpx.get(f"{server}/health").json() == {"status": "ok"}
    info = httpx.get(f"{server}/info").json()
    assert info["members"] == 3 and info["backend"] == "embedding"
    assert info["max_length"] == 256 and info["penalty"] == 0.5 and info["reward"] == "uwo"
    assert info["server_errors"] == 0 and "[SEP]" in info["strip_tokens"]
    assert info["model"] == scorer.path


def test_score_endpoint_matches_the_scorer(server: str, scorer) -> None:
    answer = httpx.post(f"{server}/score", json={"prompts": PROMPTS[:4],
                                                 "responses": RESPONSES[:4]})
    assert answer.status_code == 200
    body = answer.json()
    expected = scorer.score(PROMPTS[:4], RESPONSES[:4])
    np.testing.assert_allclose(body["mean"], expected.mean, atol=1e-5)
    np.testing.assert_allclose(body["std"], expected.std, atol=1e-5)
    np.testing.assert_allclose(body["uwo"], expected.uwo, atol=1e-5)
    np.testing.assert_allclose(body["min"], expected.min, atol=1e-5)
    np.testing.assert_allclose(body["members"], expected.members.T, atol=1e-5)
    assert body["truncated"] == [False] * 4 and body["penalty"] == 0.5
    # The statistics are those of the members the server reports.
    members = np.array(body["members"])
    np.testing.assert_allclose(body["uwo"], members.mean(1) - 0.5 * members.var(1), atol=1e-9)


def test_openrlhf_client_request(server: str, scorer) -> None:
    """Exactly what OpenRLHF's remote_rm_fn / request_api_wrapper send and read: requests.post
    with json={"query", "prompts", "labels"} and a Content-Type header, then
    raise_for_status(), .json(), `score_key in response`, and torch.tensor(response["rewards"])
    (openrlhf/utils/remote_rm_utils.py)."""
    import requests
    import torch

    queries = [p + r for p, r in zip(PROMPTS[:3], RESPONSES[:3])]
    data = {"query": queries, "prompts": PROMPTS[:3], "labels": [None, None, None]}
    response = requests.post(url=f"{server}/get_reward", json=data,
                             headers={"Content-Type": "application/json"}, timeout=180)
    response.raise_for_status()
    response = response.json()
    assert "rewards" in response
    rewards = torch.tensor(response.get("rewards"))
    expected = scorer.score(PROMPTS[:3], RESPONSES[:3])
    np.testing.assert_allclose(rewards.numpy(), expected.uwo, atol=1e-5)  # --reward uwo
    # OpenRLHF 0.8 reads these too; its own serve_rm sends scores equal to rewards.
    assert response["scores"] == response["rewards"]
    np.testing.assert_allclose(response["extra_logs"]["reward_std"], expected.std, atol=1e-5)


def test_old_openrlhf_sends_only_the_query_and_is_told(server: str, scorer) -> None:
    before = httpx.get(f"{server}/info").json()["requests_without_prompts"]
    answer = httpx.post(f"{server}/get_reward", json={"query": ["just one text", "another"]})
    assert answer.status_code == 200
    np.testing.assert_allclose(answer.json()["rewards"],
                               scorer.score(["", ""], ["just one text", "another"]).uwo,
                               atol=1e-5)
    assert answer.json()["extra_logs"]["no_prompts"] == [1.0, 1.0]
    assert httpx.get(f"{server}/info").json()["requests_without_prompts"] == before + 1


def test_a_query_without_its_prompt_is_scored_whole_and_counted(scorer) -> None:
    body = {"query": [PROMPTS[0] + RESPONSES[0], "a rollout the policy mangled"],
            "prompts": [PROMPTS[0], PROMPTS[1]]}
    with running_server(scorer) as url:
        answer = httpx.post(f"{url}/get_reward", json=body).json()
        info = httpx.get(f"{url}/info").json()
    expected = scorer.score([PROMPTS[0], ""], [RESPONSES[0], "a rollout the policy mangled"])
    np.testing.assert_allclose(answer["rewards"], expected.uwo, atol=1e-5)
    assert answer["extra_logs"]["prompt_not_found"] == [0.0, 1.0]
    assert answer["extra_logs"]["no_prompts"] == [0.0, 0.0]
    assert info["prompt_not_found"] == 1 and info["requests_without_prompts"] == 0
    with running_server(scorer, strict_prompts=True) as url:
        answer = httpx.post(f"{url}/get_reward", json=body)
    assert answer.status_code == 422
    assert "query[1] does not contain prompts[1]" in answer.json()["detail"]


def test_special_tokens_are_stripped_from_the_ends_of_queries(scorer) -> None:
    """The model tokenizer's own ([SEP], [PAD] for MiniLM) always; the policy's when named."""
    prompt, response = PROMPTS[0], RESPONSES[0]
    query = "[CLS] " + prompt + response + "<|im_end|>[SEP][PAD][PAD]"
    expected = scorer.score([prompt], [response]).uwo
    with running_server(scorer, strip_tokens="<|im_end|>, </s>") as url:
        got = httpx.post(f"{url}/get_reward", json={"query": [query], "prompts": [prompt]})
        assert "<|im_end|>" in httpx.get(f"{url}/info").json()["strip_tokens"]
    np.testing.assert_allclose(got.json()["rewards"], expected, atol=1e-5)
    with running_server(scorer) as url:  # without --strip-tokens the policy's token stays
        kept = httpx.post(f"{url}/get_reward", json={"query": [query], "prompts": [prompt]})
    np.testing.assert_allclose(kept.json()["rewards"],
                               scorer.score([prompt], [response + "<|im_end|>"]).uwo, atol=1e-5)


def test_an_item_over_the_character_cap_is_refused_before_tokenizing(scorer) -> None:
    with running_server(scorer, max_item_chars=100) as url:
        answer = httpx.post(f"{url}/score", json={"prompts": ["a", "b"],
                                                  "responses": ["ok", "x" * 101]})
        assert answer.status_code == 413
        assert "responses[1] has 101 characters" in answer.json()["detail"]
        assert httpx.get(f"{url}/info").json()["max_item_chars"] == 100
    with running_server(scorer) as url:  # the default: 64 characters per token of max length
        assert httpx.get(f"{url}/info").json()["max_item_chars"] == 64 * 256


def test_a_server_error_is_counted_and_the_connection_kept(scorer) -> None:
    import copy

    broken = copy.copy(scorer)

    def rewards(prompts, responses):
        if "boom" in responses:
            raise RuntimeError("the model broke")
        return scorer.rewards(prompts, responses)

    broken.rewards = rewards
    with running_server(broken) as url, httpx.Client() as client:
        answer = client.post(f"{url}/score", json={"prompts": ["a"], "responses": ["boom"]})
        assert answer.status_code == 500 and answer.json() == {
            "detail": "internal error: RuntimeError"}
        # The next request on the same connection is answered (no reset).
        ok = client.post(f"{url}/score", json={"prompts": ["a"], "responses": ["b"]})
        assert ok.status_code == 200
        assert client.get(f"{url}/info").json()["server_errors"] == 1


def test_one_member_serves_the_mean_and_says_so(one_member_model, caplog) -> None:
    from rewardlab.serve.scorer import EnsembleScorer

    single = EnsembleScorer.load(one_member_model, penalty=1.0, feature_cache=False)
    with caplog.at_level("WARNING", logger="rewardlab"), running_server(single) as url:
        info = httpx.get(f"{url}/info").json()
        got = httpx.post(f"{url}/get_reward", json={"query": ["x y"], "prompts": ["x"]}).json()
    assert info["members"] == 1 and info["reward"] == "mean" and info["reward_asked"] == "uwo"
    assert [r.getMessage() for r in caplog.records if "M=1" in r.getMessage()] == [
        "the model has one member (M=1): no uncertainty, so 'uwo' equals the mean; serving "
        "'mean'. Train an ensemble (--members, or run's --final-members) for uwo and min to "
        "mean anything"]
    np.testing.assert_allclose(got["rewards"], single.score(["x"], [" y"]).mean, atol=1e-6)


def test_a_port_in_use_fails_before_announcing(embedding_model, caplog) -> None:
    import socket

    from rewardlab.config import CommonConfig, ModelPathConfig, ServeConfig, UncertaintyConfig
    from rewardlab.stages.score import serve_command

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with caplog.at_level("INFO", logger="rewardlab"), \
                pytest.raises(RuntimeError, match=f"--port {port}: cannot listen there"):
            serve_command(model_path=ModelPathConfig(str(embedding_model)),
                          uncertainty=UncertaintyConfig(), serve=ServeConfig(port=port),
                          common=CommonConfig(quiet=True))
    assert not [r for r in caplog.records if "serving" in r.getMessage()]


@pytest.mark.parametrize("reward", ["mean", "min"])
def test_reward_flag_chooses_what_get_reward_returns(scorer, reward: str) -> None:
    with running_server(scorer, reward=reward) as url:
        got = httpx.post(f"{url}/get_reward", json={"query": PROMPTS[0] + RESPONSES[0],
                                                    "prompts": PROMPTS[0]})
        assert got.status_code == 422  # strings where lists belong
        got = httpx.post(f"{url}/get_reward", json={"query": [PROMPTS[0] + RESPONSES[0]],
                                                    "prompts": [PROMPTS[0]]}).json()
    expected = getattr(scorer.score(PROMPTS[:1], RESPONSES[:1]), reward)
    np.testing.assert_allclose(got["rewards"], expected, atol=1e-5)


async def _concurrent(url: str, n: int) -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=120) as client:
        return await asyncio.gather(*(
            client.post(f"{url}/score", json={"prompts": [PROMPTS[i]], "responses": [RESPONSES[i]]})
            for i in range(n)))


def test_concurrent_requests_batch_and_match_one_score_call(server: str, scorer) -> None:
    before = httpx.get(f"{server}/info").json()["batching"]
    answers = asyncio.run(_concurrent(server, 12))
    assert all(a.status_code == 200 for a in answers)
    after = httpx.get(f"{server}/info").json()["batching"]
    assert after["requests"] - before["requests"] == 12
    assert after["forward_passes"] - before["forward_passes"] < 12  # requests were merged
    assert after["largest_batch"] > 1
    expected = scorer.score(PROMPTS, RESPONSES)
    # Merged or not, each request gets its own items' rewards (equal to float32 precision: a
    # different batch pads differently).
    got = np.array([a.json()["members"][0] for a in answers]).T
    np.testing.assert_allclose(got, expected.members, atol=1e-5)


BAD_REQUESTS = [
    # (endpoint, raw body, content type, status, words the message must contain)
    ("/score", b'{"prompts": ["a"], "responses": [', "application/json", 400, "malformed JSON"),
    ("/score", b"not json at all", "application/json", 400, "malformed JSON"),
    ("/score", b'["a", "b"]', "application/json", 422, "valid dictionary"),
    ("/score", b'{"prompts": ["a"], "responses": [5]}', "application/json", 422,
     "responses[0]"),
    ("/score", b'{"prompts": "a", "responses": ["b"]}', "application/json", 422, "prompts"),
    ("/score", b'{"prompts": ["a"], "responses": null}', "application/json", 422, "responses"),
    ("/score", b'{"prompts": ["a"]}', "application/json", 422, "responses: Field required"),
    ("/score", b'{"prompts": ["a"], "responses": ["b"], "x": 1}', "application/json", 422,
     "x: Extra inputs"),
    ("/score", b'{"prompts": ["a", "b"], "responses": ["c"]}', "application/json", 422,
     "'prompts' has 2 items but 'responses' has 1"),
    ("/score", b'{"prompts": [], "responses": []}', "application/json", 422, "is empty"),
    ("/score", json.dumps({"prompts": ["p"] * 17, "responses": ["r"] * 17}).encode(),
     "application/json", 413, "at most 16"),
    ("/score", b'{"prompts": ["a"], "responses": ["b"]}', "text/plain", 422,
     "Content-Type: application/json"),
    ("/score", b'{"prompts": ["a"], "responses": ["\\ud800"]}', "application/json", 422,
     "responses[0] is not valid Unicode text: a lone surrogate"),
    ("/get_reward", b'{"query": ["a\\udfffb"]}', "application/json", 422,
     "query[0] is not valid Unicode text"),
    ("/get_reward", b'{"query": ["ab"], "prompts": ["\\ud800"]}', "application/json", 422,
     "prompts[0] is not valid Unicode text"),
    ("/get_reward", b'{"query": ["ab", "cd"], "prompts": ["a"]}', "application/json", 422,
     "'query' has 2 items but 'prompts' has 1"),
    ("/get_reward", b'{"query": []}', "application/json", 422, "is empty"),
    ("/get_reward", b'{"query": [1, 2]}', "application/json", 422, "query[0]"),
    ("/get_reward", b'{"prompts": ["a"]}', "application/json", 422, "query: Field required"),
]


@pytest.mark.parametrize("path, body, content_type, status, words", BAD_REQUESTS)
def test_bad_input_gets_a_clear_4xx_and_the_server_keeps_serving(
        server: str, path: str, body: bytes, content_type: str, status: int, words: str) -> None:
    answer = httpx.post(f"{server}{path}", content=body, headers={"content-type": content_type})
    assert answer.status_code == status, answer.text
    detail = answer.json()["detail"]
    assert isinstance(detail, str) and words in detail
    assert "Traceback" not in answer.text
    ok = httpx.post(f"{server}/score", json={"prompts": ["a"], "responses": ["b"]})
    assert ok.status_code == 200


def test_over_long_items_are_truncated_or_refused(scorer) -> None:
    long = "word " * 400  # over the model's 256 tokens
    body = {"prompts": ["short", "short"], "responses": ["fine", long]}
    with running_server(scorer) as url:
        answer = httpx.post(f"{url}/score", json=body)
        assert answer.status_code == 200 and answer.json()["truncated"] == [False, True]
    with running_server(scorer, on_long="refuse") as url:
        answer = httpx.post(f"{url}/score", json=body)
        assert answer.status_code == 422
        assert "item 1 has" in answer.json()["detail"] and "over the model's 256" in \
            answer.json()["detail"]
        assert httpx.post(f"{url}/score", json={"prompts": ["a"], "responses": ["b"]}
                          ).status_code == 200


def test_request_body_over_the_limit_is_refused(scorer) -> None:
    with running_server(scorer, max_request_mb=0.001) as url:  # about 1 KB
        big = {"prompts": ["p"], "responses": ["x" * 5000]}
        answer = httpx.post(f"{url}/score", json=big)
        assert answer.status_code == 413 and "over the limit" in answer.json()["detail"]
        assert httpx.post(f"{url}/score", json={"prompts": ["a"], "responses": ["b"]}
                          ).status_code == 200


def test_api_key(scorer) -> None:
    body = {"prompts": ["a"], "responses": ["b"]}
    with running_server(scorer, api_key="s3cret") as url:
        assert httpx.get(f"{url}/health").status_code == 200  # liveness needs no key
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
            answer = httpx.post(f"{url}/score", json=body, headers=headers)
            assert answer.status_code == 401 and "API key" in answer.json()["detail"]
        assert httpx.get(f"{url}/info").status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert httpx.post(f"{url}/score", json=body, headers=good).status_code == 200
        assert httpx.get(f"{url}/info", headers=good).status_code == 200


def test_unknown_routes_and_methods_are_4xx(server: str) -> None:
    assert httpx.get(f"{server}/nope").status_code == 404
    assert httpx.get(f"{server}/score").status_code == 405


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzz_the_openapi_schema(server: str, mode: str) -> None:
    """Requests generated from the server's OpenAPI schema, valid (positive) and invalid
    (negative), a bounded number of each: never a 5xx, always a documented status with a body
    that matches the schema."""
    from hypothesis import given
    from hypothesis import strategies as st
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} >= {"POST /get_reward", "POST /score"}
    cases = st.one_of(*[op.as_strategy(GenerationMode(mode)) for op in operations])

    @given(case=cases)
    @settings(max_examples=40, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        case.call_and_validate(checks=[not_a_server_error, status_code_conformance,
                                       content_type_conformance, response_schema_conformance])

    check()


def test_the_finetune_backend_serves_too(finetune_model) -> None:
    from rewardlab.serve.scorer import EnsembleScorer

    ft = EnsembleScorer.load(finetune_model, penalty=1.0, feature_cache=False)
    with running_server(ft) as url:
        info = httpx.get(f"{url}/info").json()
        assert info["backend"] == "finetune" and info["members"] == 2
        got = httpx.post(f"{url}/get_reward", json={"query": ["the cat good dog"],
                                                    "prompts": ["the cat"]}).json()
    np.testing.assert_allclose(got["rewards"], ft.score(["the cat"], [" good dog"]).uwo,
                               atol=1e-5)
