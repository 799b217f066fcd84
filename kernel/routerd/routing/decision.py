"""What routing decides: the hard constraints a request puts on models (`Needs`) and the ranked decision with its
reasons (`RoutingDecision`). Routing returns the decision; the request path reports how the request went; the
decision log (`routerd.decisions`) stores both."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from routerd.catalog import CatalogEntry
from routerd.errors import ContextLengthExceeded
from routerd.routing.llm_dispatcher import DispatcherVerdict
from routerd.routing.scoring import ScoredCandidate
from routerd.schemas.catalog import Capabilities, PromptFeatures


@dataclass(frozen=True)
class Needs:
    """What a request needs from a model: the hard constraints."""

    vision: bool = False
    tools: bool = False
    json: bool = False
    prompt_tokens: int = 0

    def unmet(self, entry: CatalogEntry) -> str | None:
        """Why `entry` cannot answer, or None when it can."""
        problem = self.incapable(entry)
        if problem is None and not self.fits(entry):
            window = entry.info.context_window
            return f"has a context window of {window} tokens, the prompt needs ~{self.prompt_tokens}"
        return problem

    def incapable(self, entry: CatalogEntry) -> str | None:
        """Why `entry` cannot answer whatever the prompt's length, or None when it can."""
        caps = entry.info.capabilities
        if caps.chat is False:
            return "is not a chat model"
        if self.vision and not caps.vision:
            return "cannot see images"
        if self.tools and not caps.tools:
            return "cannot call tools"
        if self.json and caps.json_output is False:
            return "cannot be held to JSON output"
        return None

    def fits(self, entry: CatalogEntry) -> bool:
        """Whether the prompt fits `entry`'s context window (an unknown window is taken to hold it)."""
        window = entry.info.context_window
        return window is None or self.prompt_tokens <= window

    def too_long(self, window: int, *, routed: bool) -> ContextLengthExceeded:
        """The 400 for a prompt over `window` tokens (for a routed request: the largest window of the models that
        could answer it), worded as OpenAI words it, so that clients that read the figures from it can."""
        among = " (the largest of the models that could answer this request)" if routed else ""
        return ContextLengthExceeded(
            f"This model's maximum context length is {window} tokens{among}. However, your messages resulted in "
            f"{self.prompt_tokens} tokens. Please reduce the length of the messages."
        )

    def param_no_model_meets(self, models: list[Capabilities]) -> str | None:
        """The request parameter asking for what none of `models` (chat models or not) offers: ``messages`` for
        images, ``tools``, ``response_format`` for JSON output; the first asked for when only their combination
        is missing; None when the request asks for none of them, or no model chats at all (then nothing the
        request asks for is at fault)."""
        chat = [caps for caps in models if caps.chat is not False]
        if not chat:
            return None
        asked = [
            (param, offered)
            for wanted, param, offered in (
                (self.vision, "messages", lambda caps: bool(caps.vision)),
                (self.tools, "tools", lambda caps: bool(caps.tools)),
                (self.json, "response_format", lambda caps: caps.json_output is not False),
            )
            if wanted
        ]
        for param, offered in asked:
            if not any(offered(caps) for caps in chat):
                return param
        return asked[0][0] if asked else None

    def described(self) -> str:
        """`` with vision and tools``: what the request needs, for error messages."""
        pairs = (("vision", self.vision), ("tools", self.tools), ("JSON output", self.json))
        wanted = [name for name, on in pairs if on]
        return f" with {' and '.join(wanted)}" if wanted else ""


@dataclass
class RoutingDecision:
    """The models to try, best first, and why. `scored` holds every candidate's score and contributions (empty
    when the request pinned a model); `unfit` the models left out and why; `dispatcher` what the dispatcher
    model said (LLM dispatcher mode)."""

    id: str
    features: PromptFeatures
    ranked: list[CatalogEntry]
    pinned: bool
    preference: float
    scored: list[ScoredCandidate] = field(default_factory=list)
    unfit: dict[str, str] = field(default_factory=dict)
    dispatcher: DispatcherVerdict | None = None

    @property
    def chosen(self) -> CatalogEntry | None:
        return self.ranked[0] if self.ranked else None

    @property
    def runner_up(self) -> CatalogEntry | None:
        return self.ranked[1] if len(self.ranked) > 1 else None

    def explain(self) -> list[dict[str, Any]]:
        """The audit log's view: every candidate scored, then every model left out (built off the request path)."""
        if self.pinned:
            return [{"model": e.id, "backend": e.info.backend, "pinned": True} for e in self.ranked]
        return [s.explain() for s in self.scored] + [
            {"model": model, "excluded": reason} for model, reason in self.unfit.items()
        ]
