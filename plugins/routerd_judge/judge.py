"""The LLM judge: a `routerd.Judge` whose `judge()` asks a model for a verdict on an answer.

It never raises into its caller and never invents a score: an endpoint that is down, slow or
answers errors, or a verdict that is still malformed after one reminder of the format, gives
``Judgement(score=None, judged=False, reason=...)``. Routing never calls it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

from routerd import (
    ChatCompletion,
    ChatRequest,
    GatewayError,
    Judgement,
    Message,
    PromptFeatures,
    ServedModels,
)
from routerd.toolkit import OpenAICompatibleBackend
from routerd_judge.prompt import grading_messages, reminder
from routerd_judge.verdict import CRITERIA, SCHEMA, VerdictError, parse_verdict

# `response_format` for each setting of `plugins.judge.response_format`
RESPONSE_FORMATS: dict[str, dict | None] = {
    "json_object": {"type": "json_object"},
    "json_schema": {"type": "json_schema", "json_schema": {"name": "verdict", "strict": True, "schema": SCHEMA}},
    "json_object_schema": {"type": "json_object", "schema": SCHEMA},
    "none": None,
}


class JudgeEndpoint(Protocol):
    """Where verdicts come from: `describe` names it in reasons and logs."""

    describe: str

    async def complete(self, request: ChatRequest) -> ChatCompletion: ...


class ServedJudge:
    """A judge model the gateway itself serves, called by catalog name without routing."""

    def __init__(self, models: ServedModels, model: str) -> None:
        self.models = models
        self.model = model
        self.describe = model

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        return await self.models.chat(self.model, request)


class RemoteJudge:
    """A judge model behind any OpenAI-compatible endpoint (its own HTTP session)."""

    def __init__(self, base_url: str, model: str, *, api_key: str | None, connect_timeout: float) -> None:
        self.client = OpenAICompatibleBackend("judge", base_url, api_key=api_key, connect_timeout=connect_timeout)
        self.model = model
        self.describe = model

    async def start(self) -> None:
        await self.client.start()

    async def close(self) -> None:
        await self.client.close()

    async def complete(self, request: ChatRequest) -> ChatCompletion:
        return await self.client.chat(self.model, request)


def unjudged(reason: str) -> Judgement:
    return Judgement(score=None, reason=reason, judged=False)


class LLMJudge:
    """Grades accuracy, clarity and instruction following (against the reference when given)
    into one score in 0..1, the criteria's weighted mean."""

    def __init__(
        self,
        name: str,
        endpoint: JudgeEndpoint,
        *,
        weights: dict[str, float],
        timeout: float,
        max_tokens: int,
        temperature: float,
        response_format: str,
        max_chars: int,
        concurrency: int,
        log: logging.Logger,
    ) -> None:
        self.name = name
        self.endpoint = endpoint
        self.weights = weights
        self.timeout = timeout
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.response_format = RESPONSE_FORMATS[response_format]
        self.max_chars = max_chars
        self.log = log
        self._slots = asyncio.Semaphore(concurrency)

    async def start(self) -> None:
        start = getattr(self.endpoint, "start", None)
        if start is not None:
            await start()

    async def close(self) -> None:
        close = getattr(self.endpoint, "close", None)
        if close is not None:
            await close()

    async def judge(self, features: PromptFeatures, model: str, answer: str, reference: str | None = None) -> Judgement:
        if not answer.strip():
            return Judgement(score=0.0, reason="the answer is empty")
        messages = grading_messages(features.text, answer, reference, self.max_chars)
        try:
            async with self._slots:
                judgement = await self._grade(messages)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug of ours or an endpoint's oddity: never the caller's problem
            self.log.exception("judging an answer of %s failed", model)
            judgement = unjudged(f"the judge failed: {type(exc).__name__}")
        if not judgement.judged:
            self.log.warning("answer of %s unjudged: %s", model, judgement.reason)
        elif model == self.endpoint.describe:
            judgement = Judgement(judgement.score, judgement.reason + " (the model judged itself)")
        return judgement

    async def _grade(self, messages: list[Message]) -> Judgement:
        problem = ""
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(self.timeout):
                    completion = await self.endpoint.complete(self._request(messages))
            except TimeoutError:
                return unjudged(f"the judge {self.endpoint.describe} did not answer within {self.timeout:g} s")
            except GatewayError as exc:
                return unjudged(f"the judge {self.endpoint.describe} failed: {exc.message}")
            reply = _text(completion)
            try:
                verdict = parse_verdict(reply)
            except VerdictError as exc:
                problem = str(exc)
                if attempt == 1:
                    messages = [*messages, *reminder(reply, problem)]
                continue
            grades = ", ".join(f"{name.replace('_', ' ')} {getattr(verdict, name):g}" for name in CRITERIA)
            explanation = " ".join(verdict.explanation.split())[:300]
            reason = f"{self.endpoint.describe}: {grades}" + (f"; {explanation}" if explanation else "")
            return Judgement(score=round(verdict.score(self.weights), 4), reason=reason)
        return unjudged(f"the judge {self.endpoint.describe} gave a malformed verdict twice ({problem})")

    def _request(self, messages: list[Message]) -> ChatRequest:
        request = ChatRequest(
            messages=messages, model=self.endpoint.describe, temperature=self.temperature, max_tokens=self.max_tokens
        )
        if self.response_format is not None:
            request.response_format = self.response_format
        return request


def _text(completion: ChatCompletion) -> str:
    return completion.choices[0].message.text() if completion.choices else ""
