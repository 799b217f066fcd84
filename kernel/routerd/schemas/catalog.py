"""What the kernel and plugins say about models, prompts, scores and principals."""

from __future__ import annotations

import datetime as dt
from typing import Any

import msgspec


class Capabilities(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a model can do. A backend sets each field its own metadata decides and leaves the
    others None (unknown); the catalog fills those from the model's name and applies the
    configuration's ``[models."<name>"]`` overrides (`routerd.capabilities`), so every model in
    the catalog has all five set."""

    chat: bool | None = None
    vision: bool | None = None
    tools: bool | None = None
    embeddings: bool | None = None
    json_output: bool | None = None


class ModelInfo(msgspec.Struct, frozen=True, omit_defaults=True):
    """A model a backend serves, as reported by `Backend.list_models`.

    `name` is the backend's own name for it (``qwen2.5:7b-instruct-q4_K_M``); `parameters` is the
    parameter count (``7_600_000_000``), None when unknown; `context_window` is in tokens. A
    backend reports what its own metadata says and leaves the rest None: the catalog fills in
    what the name says and the configuration's overrides, and records where each value came from
    in ``metadata["origins"]`` (``{"vision": "metadata", "parameters": "name", ...}``).

    `id` is the model's public id, set by the catalog (a backend leaves it None): its name, or
    ``backend/name`` when an earlier backend serves a model of the same name. It is what
    `Outcome.model` names, so a scorer that learns per model (each backend's latency, say) keys
    its state and its contributions by ``model.id or model.name``.
    """

    name: str
    backend: str
    parameters: int | None = None
    context_window: int | None = None
    capabilities: Capabilities = Capabilities()
    size_bytes: int | None = None
    metadata: dict[str, Any] = {}
    id: str | None = None

    @property
    def key(self) -> str:
        """The public id where the catalog set one, else the name."""
        return self.id or self.name


class Principal(msgspec.Struct, frozen=True):
    """Who is calling: the result of authentication.

    `kind` is ``"admin"``, ``"api_key"`` or ``"anonymous"``; `subject` identifies the key or user
    (never the secret itself); `tenant` partitions caches and usage.
    """

    kind: str
    subject: str = "anonymous"
    tenant: str = "default"
    is_admin: bool = False


ANONYMOUS = Principal(kind="anonymous")


class AuthRequest(msgspec.Struct, frozen=True):
    """The parts of an HTTP request an `Authenticator` may look at."""

    method: str
    path: str
    headers: dict[str, str]
    client_host: str | None = None


class PromptFeatures(msgspec.Struct, frozen=True, omit_defaults=True):
    """What routing knows about a prompt before any model sees it."""

    text: str
    category: str = "general"
    difficulty: str = "medium"
    language: str = "en"
    needs_vision: bool = False
    needs_tools: bool = False
    needs_json: bool = False
    prompt_tokens: int = 0


class Contribution(msgspec.Struct, frozen=True):
    """One scorer's opinion of one candidate model.

    `score` is in 0..1 (higher is better); `weight` says how much it should count against other
    scorers (0 means: for the record only); `reason` is shown in explanations. `aspect` says what
    the score measures: ``"quality"`` (how good the answer will be), ``"efficiency"`` (how fast
    and cheap), or ``"multiplier"`` (a factor on the final score, such as the diversity penalty).
    Routing mixes quality and efficiency by the quality preference (0 = fastest and cheapest,
    1 = best), then applies the multipliers.
    """

    score: float
    weight: float = 1.0
    reason: str = ""
    aspect: str = "quality"


class Outcome(msgspec.Struct, frozen=True):
    """What happened after a routing decision, shown to scorers that learn (``learn``).

    `rating` is user feedback in 0..1 (None when there is none); `latency_ms` and `ttft_ms` are
    measured by the gateway; `ok` is False when the model failed.
    """

    decision_id: str
    model: str
    features: PromptFeatures
    ok: bool = True
    latency_ms: float | None = None
    ttft_ms: float | None = None
    completion_tokens: int | None = None
    rating: float | None = None


class Judgement(msgspec.Struct, frozen=True):
    """A scorer's grade of a response after the call: `score` in 0..1, or None when unjudged."""

    score: float | None
    reason: str = ""
    judged: bool = True


class BenchmarkRecord(msgspec.Struct, frozen=True):
    """One public benchmark figure: `model` as the source names it, `benchmark` such as
    ``mmlu_pro`` or ``arena_elo``, `value` as published, `source` the provider's name."""

    source: str
    model: str
    benchmark: str
    value: float
    fetched_at: dt.datetime | None = None
