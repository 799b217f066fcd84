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
    Principal,
    PromptFeatures,
)
from routerd.schemas.openai import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    EmbeddingResponse,
)


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
    """An estimate of how well each model will answer a prompt, with reasons."""

    name: str

    async def score(self, features: PromptFeatures, candidates: Sequence[ModelInfo]) -> Mapping[str, Contribution]:
        """Before the call: a contribution per candidate model name (omit a model: no opinion)."""
        ...

    async def judge(
        self, features: PromptFeatures, model: str, answer: str, reference: str | None = None
    ) -> Judgement | None:
        """After the call: a grade of `answer` (the reply of `model` to ``features.text``), or None when
        this scorer does not judge. `reference` is a reference answer or grading notes, when known
        (profiling suites carry them); a judge should use it where given."""
        ...

    # Optional: ``async def learn(self, outcome: Outcome) -> None`` is called (off the request
    # path) after every routed request and every piece of feedback, for scorers that learn.


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
    """Stores and finds responses: exactly (same key) or semantically (same meaning)."""

    name: str

    async def lookup(self, partition: str, key: str, text: str) -> bytes | None:
        """A stored response for this request, or None. `partition` separates tenants and
        parameters; `key` is an exact hash of the request; `text` the prompt, for semantic caches."""
        ...

    async def store(self, partition: str, key: str, text: str, response: bytes) -> None:
        """Keep `response` for later lookups."""
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
