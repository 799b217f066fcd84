"""Routing: from a request to a ranked list of models, with the reasons.

This is the simple policy the gateway starts with: hard constraints (capabilities, context
window, health, pinning) pick the candidates, and model size against the quality preference
orders them. The routing engine (prompt features, scorer plugins, learning) replaces `rank`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from routerd.catalog import Catalog, CatalogEntry
from routerd.errors import InvalidRequest, ModelNotFound
from routerd.schemas.openai import ChatRequest

# A model of unknown size is ranked as if it had this many parameters.
UNKNOWN_SIZE = 7_000_000_000


@dataclass(frozen=True)
class Needs:
    """What a request needs from a model: the hard constraints."""

    vision: bool = False
    tools: bool = False
    prompt_tokens: int = 0

    @classmethod
    def of(cls, request: ChatRequest) -> Needs:
        return cls(
            vision=any(m.has_image() for m in request.messages),
            tools=bool(request.tools),
            prompt_tokens=sum(len(m.text()) for m in request.messages) // 4,
        )

    def unmet(self, entry: CatalogEntry) -> str | None:
        """Why `entry` cannot answer, or None when it can."""
        caps = entry.info.capabilities
        if not caps.chat:
            return "is not a chat model"
        if self.vision and not caps.vision:
            return "cannot see images"
        if self.tools and not caps.tools:
            return "cannot call tools"
        window = entry.info.context_window
        if window is not None and self.prompt_tokens > window:
            return f"has a context window of {window} tokens, the prompt needs ~{self.prompt_tokens}"
        return None


@dataclass
class RoutingDecision:
    id: str
    ranked: list[CatalogEntry]
    pinned: bool
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def chosen(self) -> CatalogEntry:
        return self.ranked[0]

    @property
    def runner_up(self) -> CatalogEntry | None:
        return self.ranked[1] if len(self.ranked) > 1 else None


def rank(candidates: list[CatalogEntry], quality_preference: float) -> list[CatalogEntry]:
    """Bigger models first when quality matters more (preference >= 0.5), smaller first otherwise."""
    return sorted(
        candidates,
        key=lambda e: (e.info.parameters or UNKNOWN_SIZE, e.id),
        reverse=quality_preference >= 0.5,
    )


def route(
    catalog: Catalog,
    request: ChatRequest,
    *,
    pinned: str | None,
    quality_preference: float,
    available: Callable[[str], bool],
) -> RoutingDecision:
    """The ranked models for `request`. A `pinned` model is the only one used."""
    needs = Needs.of(request)
    decision_id = f"rd-{uuid.uuid4().hex}"
    if pinned is not None:
        entry = catalog.get(pinned)
        if entry is None:
            raise ModelNotFound(f"the model {pinned!r} does not exist", param="model", code="model_not_found")
        problem = needs.unmet(entry)
        if problem:
            raise InvalidRequest(f"the model {pinned!r} {problem}", param="model", code="model_incapable")
        return RoutingDecision(decision_id, [entry], pinned=True, reasons={entry.id: "pinned by the request"})
    reasons: dict[str, str] = {}
    candidates = []
    for entry in catalog:
        problem = needs.unmet(entry)
        if problem:
            reasons[entry.id] = problem
        else:
            candidates.append(entry)
    if not candidates:
        wanted = [name for name, on in (("vision", needs.vision), ("tools", needs.tools)) if on]
        detail = f" with {' and '.join(wanted)}" if wanted else ""
        raise ModelNotFound(f"no model{detail} is available for this request", code="no_capable_model")
    ranked = rank(candidates, quality_preference)
    healthy = [e for e in ranked if available(e.info.backend)]
    ranked = healthy + [e for e in ranked if e not in healthy]
    for position, entry in enumerate(ranked, start=1):
        reasons[entry.id] = f"rank {position}: {entry.info.parameters or 'unknown'} parameters"
    return RoutingDecision(decision_id, ranked, pinned=False, reasons=reasons)
