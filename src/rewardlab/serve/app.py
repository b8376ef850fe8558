"""The HTTP API of ``rewardlab serve`` (FastAPI; imported only when serving).

Endpoints:

``POST /get_reward``
    OpenRLHF's remote reward-model protocol, so ``--remote_rm_url http://HOST:PORT/get_reward``
    works unchanged. OpenRLHF posts ``{"query": [prompt + response, ...], "prompts": [...],
    "labels": [...]}`` (``openrlhf/utils/remote_rm_utils.py``: ``remote_rm_fn`` /
    ``request_api_wrapper``; before 0.6 only ``query``) and reads ``rewards`` from the JSON
    answer; 0.8 also reads ``scores`` and ``extra_logs`` when present, as its own ``serve_rm``
    sends them (0.11: ``SingleTurnAgentExecutor._fetch_rewards_via_http`` in
    ``openrlhf/utils/agent.py``, with aiohttp; a failed request is retried 5 times, then the
    rollout gets no reward). The answer is ``{"rewards": [...], "scores": [...] (the same),
    "extra_logs": {"reward_mean", "reward_std", "prompt_not_found", "no_prompts"}}``, each a
    per-item list (the last two 0 or 1), with ``rewards`` the ``--reward`` kind (``mean`` for a
    one-member model). Queries lose the special tokens at their ends (the model tokenizer's and
    ``--strip-tokens``); one without its prompt is scored whole against an empty prompt unless
    ``--strict-prompts``. Unknown keys are ignored (forks add some).
``POST /score``
    rewardlab's own: ``{"prompts": [...], "responses": [...]}`` in; per item ``mean``, ``std``,
    ``members``, ``uwo``, ``min`` and ``truncated`` out.
``GET /health``, ``GET /info``
    liveness (never needs the API key), and the model, M, backend, max length, penalty, the
    reward served, the limits, and the counts: batches, ``server_errors``,
    ``prompt_not_found`` and ``requests_without_prompts``.

Every bad request gets a 4xx JSON answer ``{"detail": "..."}`` naming the field and item (text
that is not valid Unicode, or over ``--max-item-chars``, included); no request can make the
server answer with a traceback, and an internal error is a counted 500 that keeps the
connection open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from rewardlab.config import ServeConfig
from rewardlab.data.errors import describe_value
from rewardlab.serve.batching import DynamicBatcher
from rewardlab.serve.ensemble import (
    RewardStats,
    reward_statistics,
    select_reward,
    served_reward,
)
from rewardlab.serve.requests import (
    RequestError,
    check_items,
    check_texts,
    long_items,
    split_queries,
)
from rewardlab.serve.scorer import EnsembleScorer

__all__ = ["create_app"]

log = logging.getLogger("rewardlab")


class OpenRLHFRequest(BaseModel):
    """What OpenRLHF's remote reward-model client posts."""

    model_config = ConfigDict(extra="allow")
    query: list[StrictStr] = Field(description="prompt + response of each item, as one text")
    prompts: list[StrictStr] | None = Field(None, description="the prompt of each query")
    labels: Any = Field(None, description="accepted and ignored")


class OpenRLHFResponse(BaseModel):
    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prompts: list[StrictStr]
    responses: list[StrictStr]


class ScoreResponse(BaseModel):
    mean: list[float]
    std: list[float]
    members: list[list[float]] = Field(description="per item, the M members' rewards")
    uwo: list[float]
    min: list[float]
    truncated: list[bool]
    penalty: float


class ErrorResponse(BaseModel):
    detail: str


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 413, 422, 503)}


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413 before anything reads them."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            length = dict(scope.get("headers") or []).get(b"content-length", b"0")
            if not length.isdigit() or int(length) > self.max_bytes:
                answer = JSONResponse({"detail": f"request body over the limit of "
                                                 f"{self.max_bytes} bytes (--max-request-mb)"},
                                      status_code=413)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _where(loc: tuple[Any, ...]) -> str:
    """``("body", "query", 2)`` -> ``query[2]``."""
    text = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def _one_error(error: dict[str, Any]) -> str:
    """``responses[0]: Input should be a valid string, got a number (5)``."""
    text = f"{_where(tuple(error.get('loc', ())))}: {error.get('msg', 'invalid')}"
    if str(error.get("type", "")).endswith("_type"):
        text += f", got {describe_value(error.get('input'))}"
    return text


def _validation_message(exc: RequestValidationError, request: Request) -> tuple[int, str]:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        problem = next(e for e in errors if e.get("type") == "json_invalid")
        detail = (problem.get("ctx") or {}).get("error", "")
        return 400, f"malformed JSON: {detail}".rstrip(": ")
    parts = [_one_error(e) for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    message = "; ".join(parts) + more
    if "json" not in request.headers.get("content-type", ""):
        message += " (send the body as JSON with 'Content-Type: application/json')"
    return 422, message


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        status, message = _validation_message(exc, request)
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(RequestError)
    async def refused(request: Request, exc: RequestError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status)


@dataclass
class RequestCounts:
    """What ``/info`` counts besides the batcher's work."""

    server_errors: int = 0
    """Answers with a 5xx status (each is also logged with its traceback)."""
    prompt_not_found: int = 0
    """/get_reward items whose query did not contain their prompt, scored whole."""
    requests_without_prompts: int = 0
    """/get_reward requests that sent no prompts (every query scored whole)."""


class CountErrors:
    """Answer any unhandled exception with a counted 500 and keep the connection open.

    Starlette's own handler of last resort answers and then re-raises, so uvicorn closes the
    connection (the client's next request on it gets a reset); here the error ends with the
    answer. Every answer with a 5xx status is counted, whoever sent it.
    """

    def __init__(self, app: Any, counts: RequestCounts) -> None:
        self.app, self.counts = app, counts

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def counted(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self.counts.server_errors += int(message["status"]) >= 500
            await send(message)

        try:
            await self.app(scope, receive, counted)
        except Exception as exc:
            # Logged here with its traceback; the client gets one line and no traceback.
            log.exception("request to %s failed", scope.get("path"))
            if started:
                raise  # the answer is under way: nothing else can be said on this connection
            await JSONResponse({"detail": f"internal error: {type(exc).__name__}"},
                               status_code=500)(scope, receive, counted)


class _Service:
    """The scorer, its batcher and the request checks, shared by the endpoints."""

    def __init__(self, scorer: EnsembleScorer, settings: ServeConfig) -> None:
        self.scorer, self.settings = scorer, settings
        self.batcher = DynamicBatcher(scorer.rewards, token_budget=settings.batch_tokens,
                                      wait_s=settings.batch_wait_ms / 1000,
                                      turn_tokens=settings.turn_tokens,
                                      enabled=not settings.no_batching)
        self.reward, warning = served_reward(settings.reward, scorer.members)
        if warning:
            log.warning("%s", warning)
        self.strip = [*scorer.special_tokens, *settings.strip_token_list]
        self.max_chars = settings.max_item_chars or scorer.max_item_chars
        self.counts = RequestCounts()

    def authorize(self, request: Request) -> None:
        key = self.settings.api_key
        if key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(),
                                                                    key.encode()):
            raise RequestError(401, "missing or wrong API key: send 'Authorization: Bearer KEY'")

    async def score(self, prompts: list[str],
                    responses: list[str]) -> tuple[RewardStats, np.ndarray]:
        """Statistics of the items, and which were truncated (refused with --on-long refuse)."""
        # In a thread of its own: tokenizing a big request must not stop the event loop.
        tokens_p, tokens_r = await asyncio.to_thread(
            lambda: (self.scorer.token_counts(prompts), self.scorer.token_counts(responses)))
        long = long_items(tokens_p, tokens_r, self.scorer.max_length)
        if long.any() and self.settings.on_long == "refuse":
            i = int(np.flatnonzero(long)[0])
            raise RequestError(422, f"item {i} has {int(tokens_p[i] + tokens_r[i])} tokens, over "
                                    f"the model's {self.scorer.max_length} (--on-long refuse); "
                                    f"{int(long.sum())} item(s) are too long")
        tokens = np.minimum(tokens_p + tokens_r, self.scorer.max_length).tolist()
        rewards = await self.batcher.submit(prompts, responses, tokens)
        return reward_statistics(rewards, penalty=self.scorer.penalty), long

    def info(self) -> dict[str, Any]:
        s = self.settings
        return {**self.scorer.info(), "reward": self.reward, "reward_asked": s.reward,
                "max_items": s.max_items, "max_item_chars": self.max_chars,
                "on_long": s.on_long, "strip_tokens": self.strip,
                "strict_prompts": s.strict_prompts, **vars(self.counts),
                "batching": {"enabled": not s.no_batching, "token_budget": s.batch_tokens,
                             "turn_tokens": s.turn_tokens, "wait_ms": s.batch_wait_ms,
                             **vars(self.batcher.stats)}}


def create_app(scorer: EnsembleScorer, settings: ServeConfig) -> FastAPI:
    """The FastAPI app serving ``scorer`` under ``settings``."""
    service = _Service(scorer, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.scorer.warm_up()  # before the first request, not during it
        await service.batcher.start()
        yield
        await service.batcher.stop()  # after the server has finished the requests in flight

    app = FastAPI(title="rewardlab reward ensemble", lifespan=lifespan,
                  description="Rewards with uncertainty from a rewardlab ensemble.")
    app.add_middleware(BodyLimit, max_bytes=int(settings.max_request_mb * 2**20))
    app.add_middleware(CountErrors, counts=service.counts)  # outermost: counts BodyLimit's too
    _install_error_handlers(app)
    _install_routes(app, service, Depends(service.authorize))
    app.state.service = service
    return app


def _install_routes(app: FastAPI, service: _Service, auth: Any) -> None:
    @app.post("/get_reward", response_model=OpenRLHFResponse, responses=ERRORS,
              dependencies=[auth])
    async def get_reward(body: OpenRLHFRequest) -> dict[str, Any]:
        """OpenRLHF's remote reward model: ``query`` (+ ``prompts``) in, ``rewards`` out."""
        check_items(body.query, body.query, max_items=service.settings.max_items,
                    names=("query", "query"))  # split_queries pairs prompts with queries
        for name, texts in (("query", body.query), ("prompts", body.prompts or [])):
            check_texts(texts, name, max_chars=service.max_chars)
        split = split_queries(body.query, body.prompts, strip=service.strip,
                              strict=service.settings.strict_prompts)
        stats, _ = await service.score(split.prompts, split.responses)
        service.counts.prompt_not_found += sum(split.prompt_missing)
        service.counts.requests_without_prompts += split.no_prompts
        rewards = select_reward(stats, service.reward).tolist()
        return {"rewards": rewards, "scores": rewards,
                "extra_logs": {"reward_mean": stats.mean.tolist(),
                               "reward_std": stats.std.tolist(),
                               # per item 0/1, so OpenRLHF's mean over a batch is a rate
                               "prompt_not_found": [float(m) for m in split.prompt_missing],
                               "no_prompts": [float(split.no_prompts)] * len(rewards)}}

    @app.post("/score", response_model=ScoreResponse, responses=ERRORS, dependencies=[auth])
    async def score(body: ScoreRequest) -> dict[str, Any]:
        """Every statistic of each (prompt, response) item."""
        check_items(body.prompts, body.responses, max_items=service.settings.max_items)
        for name, texts in (("prompts", body.prompts), ("responses", body.responses)):
            check_texts(texts, name, max_chars=service.max_chars)
        stats, long = await service.score(body.prompts, body.responses)
        return {"mean": stats.mean.tolist(), "std": stats.std.tolist(),
                "members": stats.members.T.tolist(), "uwo": stats.uwo.tolist(),
                "min": stats.min.tolist(), "truncated": long.tolist(), "penalty": stats.penalty}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/info", responses=ERRORS, dependencies=[auth])
    async def info() -> dict[str, Any]:
        return service.info()
