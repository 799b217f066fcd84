"""Routing: from a request to a ranked list of models, with the reasons.

`Needs` are the hard constraints; `engine.Router.decide` is the entry point that applies them,
asks the scorer plugins and returns a `RoutingDecision`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routerd.catalog import CatalogEntry


@dataclass(frozen=True)
class Needs:
    """What a request needs from a model: the hard constraints."""

    vision: bool = False
    tools: bool = False
    prompt_tokens: int = 0

    def unmet(self, entry: CatalogEntry) -> str | None:
        """Why `entry` cannot answer, or None when it can."""
        caps = entry.info.capabilities
        if caps.chat is False:
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
    scored: list[Any] = field(default_factory=list)  # routing.scoring.ScoredCandidate, best first
    record: Any = None  # the audit-log record (routerd.jobs.decision_log.DecisionRecord)
    dispatcher: Any = None  # LLM dispatcher mode: its verdict (routerd.routing.llm_dispatcher.DispatcherVerdict)

    @property
    def reasons(self) -> dict[str, str]:
        """A one-line reason per ranked model (built when asked for: off the request path)."""
        if self.pinned:
            return {entry.id: "pinned by the request" for entry in self.ranked}
        found = {s.entry.id: s.summary() for s in self.scored}
        choice = self.dispatcher.choice if self.dispatcher is not None else None
        if choice in found:
            found[choice] = f"chosen by {self.dispatcher.model}; {found[choice]}"
        return found

    @property
    def chosen(self) -> CatalogEntry:
        return self.ranked[0]

    @property
    def runner_up(self) -> CatalogEntry | None:
        return self.ranked[1] if len(self.ranked) > 1 else None
