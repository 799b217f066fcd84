"""The objects plugins register. Hooks run once at start-up; per-request work happens in the
async methods of these objects.

Every registered object may also define ``async def start(self) -> None`` and
``async def close(self) -> None``: the kernel calls `start` when the gateway starts (before it
reports ready) and `close` when it stops, in reverse order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from routerd.schemas.catalog import (
    AuthRequest,
    BenchmarkRecord,
    Contribution,
    Judgement,
    ModelInfo,
    Outcome,
    Principal,
    PromptFeatures,
)
from routerd.schemas.openai import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    EmbeddingResponse,
)
from routerd.schemas.pipeline import CachedAnswer, CacheQuery


@runtime_checkable
class Backend(Protocol):
    """A source of models: Ollama, a llama.cpp server, an OpenAI-compatible API, ...

    Failures are raised as `routerd.BackendUnavailable`, `routerd.BackendTimeout` or
    `routerd.BackendError`, never as the HTTP client's own exceptions.
    """

    name: str

    async def list_models(self) -> list[ModelInfo]:
        """Every model this backend can serve now, with size, context window and capabilities."""
        ...

    async def chat(self, model: str, request: ChatRequest) -> ChatCompletion:
        """A whole (non-streamed) completion from `model`."""
        ...

    def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        """The completion as OpenAI stream chunks, whatever the backend's own stream format."""
        ...

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResponse:
        """One embedding per input, in order."""
        ...

    async def unload(self, model: str) -> None:
        """Free the memory `model` holds; a no-op where the backend cannot."""
        ...


@runtime_checkable
class BenchmarkProvider(Protocol):
    """A source of public benchmark figures (HF Open LLM Leaderboard, LMSYS Arena, ...)."""

    name: str

    async def fetch(self) -> list[BenchmarkRecord]:
        """All records the source publishes now. Raise on failure; the kernel records it."""
        ...


@runtime_checkable
class Scorer(Protocol):
    """Predicts, before the call, how well each candidate model will answer a prompt, with reasons. Routing
    calls only scorers (`register_scorers`); grading answers is a `Judge`'s job, learning from outcomes a
    `Learner`'s."""

    name: str

    async def score(self, features: PromptFeatures, candidates: Sequence[ModelInfo]) -> Mapping[str, Contribution]:
        """A contribution per candidate, keyed by model name or public id (omit a model: no opinion)."""
        ...


@runtime_checkable
class Judge(Protocol):
    """Grades an answer after the call (profiling asks the judges in turn; the first valid verdict counts)."""

    name: str

    async def judge(self, features: PromptFeatures, model: str, answer: str, reference: str | None = None) -> Judgement:
        """A grade of `answer` (the reply of `model` to ``features.text``). `reference` is a reference answer or
        grading notes, when known; a judge should use it where given. A judge that tried and could not grade
        returns ``Judgement(score=None, judged=False, reason=...)``; one with no opinion on this answer may
        return None."""
        ...


@runtime_checkable
class Learner(Protocol):
    """Learns from what happened: every routed request's outcome and every piece of feedback, off the request
    path, in the order they happened on this replica."""

    name: str

    async def learn(self, outcome: Outcome) -> None:
        """Take `outcome` into account (a rating, when ``outcome.rating`` is set). Must not block for long: slow
        work belongs in the learner's own background task."""
        ...


@runtime_checkable
class Skill(Protocol):
    """A tool the gateway executes itself when a model calls it."""

    name: str
    description: str
    parameters: dict[str, Any]  # a JSON schema of the arguments object

    async def run(self, arguments: dict[str, Any]) -> str:
        """The tool's result as text for the model; raise ValueError for bad arguments."""
        ...


@runtime_checkable
class Cache(Protocol):
    """Finds answers given before: exactly (the same request) or semantically (a prompt that means the same).

    The kernel asks the caches in registration order after authentication and validation, before routing; the
    first hit answers without calling a model. After a complete, successful answer it shows the answer to every
    cache's `store`. A cache must be fast on `lookup` and never raise for a store that is out of reach: log and
    miss (an error is logged by the kernel and counted as a miss anyway)."""

    name: str

    async def lookup(self, query: CacheQuery) -> CachedAnswer | None:
        """The answer stored for this request, or None. Never cross ``query.partition``."""
        ...

    async def store(self, query: CacheQuery, answer: ChatCompletion) -> None:
        """Keep `answer` (a whole completion, unsigned) for later lookups of requests like `query`."""
        ...


@runtime_checkable
class Authenticator(Protocol):
    """Turns a request into a `Principal`, or refuses it."""

    name: str

    async def authenticate(self, request: AuthRequest) -> Principal | None:
        """The caller's principal; None when this authenticator has no opinion (the next one is
        asked, and with no opinion at all the caller is anonymous). Raise
        `routerd.AuthenticationFailed` to refuse the request outright."""
        ...


@runtime_checkable
class Job(Protocol):
    """Background work a plugin runs while the gateway serves (profiling models, refreshing a shared state, ...).

    The kernel starts jobs after every other registered object has started, only in a gateway that serves
    requests (not in one a command starts with ``context.started()``), and closes them first when it stops.
    `start` must return at once: start a task for the work, and cancel it in `close`."""

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...
