"""LLM dispatcher mode (``routing.mode = "llm"``): a small model the gateway serves picks the model for a request.

The scorers rank the candidates first, as in the default mode; the dispatcher model then sees the request and a
one-line summary of each of the best ``dispatcher_candidates`` (size, quality and efficiency from the scores, the
scorers' reasons: benchmarks, speed, what the learned model predicts) and answers a name. Whatever goes wrong, the
scorer ranking decides: the model is not in the catalog or fails (``failed``), takes longer than
``dispatcher_timeout`` (``timeout``), or answers something that names no candidate (``invalid``). The verdict is
part of the decision: the ``X-Routerd-Dispatcher`` header and ``dispatcher`` in ``/admin/decisions/{id}``.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from routerd.errors import ConfigError, GatewayError
from routerd.routing.scoring import ScoredCandidate
from routerd.schemas.catalog import PromptFeatures
from routerd.schemas.openai import ChatRequest, Message

log = logging.getLogger("routerd.routing")

PROMPT_CHARS = 1500  # of the request shown to the dispatcher model
ANSWER_CHARS = 200  # of its answer kept in the decision
REASON_SCORERS = ("benchmarks", "learned", "profiles", "speed", "cost")  # their reasons make a summary
_WRAPPING = "`'\"*_.,:;!()[]<> \t"


@dataclass(frozen=True)
class DispatcherVerdict:
    """What the dispatcher model did: `outcome` is ``chosen``, ``invalid``, ``timeout`` or ``failed``."""

    model: str
    outcome: str
    choice: str | None = None
    answer: str | None = None
    ms: float = 0.0
    detail: str = ""

    def as_dict(self) -> dict:
        return asdict(self)

    def header(self) -> str:
        """The ``X-Routerd-Dispatcher`` header: ``chosen by M`` or ``<outcome> (M): scorer ranking``."""
        if self.outcome == "chosen":
            return f"chosen by {self.model}"
        return f"{self.outcome} ({self.model}): scorer ranking"


def summary(rank: int, candidate: ScoredCandidate) -> str:
    """One line about a candidate: its size, its scores, and the reasons of the scorers that know most."""
    info = candidate.entry.info
    size = f"{info.parameters / 1e9:.1f}B parameters" if info.parameters else "size unknown"
    parts = [size, f"quality {candidate.quality:.2f}", f"speed and cost {candidate.efficiency:.2f}"]
    for name in REASON_SCORERS:
        contribution = candidate.contributions.get(name)
        if contribution is not None and contribution.reason:
            parts.append(contribution.reason[:120])
    return f"{rank}. {candidate.entry.id}: " + "; ".join(parts)


def dispatcher_prompt(features: PromptFeatures, candidates: Sequence[ScoredCandidate]) -> str:
    text = features.text if len(features.text) <= PROMPT_CHARS else features.text[:PROMPT_CHARS] + " [...]"
    lines = [
        "You route requests to language models. Choose the model that will answer this request best; prefer a "
        "smaller, faster model when it is good enough.",
        "",
        f"Request ({features.difficulty} {features.category}):",
        '"""',
        text,
        '"""',
        "",
        "Models:",
        *(summary(i, c) for i, c in enumerate(candidates, start=1)),
        "",
        "Answer with the name of one model from the list and nothing else.",
    ]
    return "\n".join(lines)


def parse_choice(answer: str, names: Sequence[str]) -> str | None:
    """The candidate an answer names: the whole first line (or its number in the list), else the one name that
    appears anywhere in it; None when it names none or several."""
    by_lower = {n.lower(): n for n in names}
    lines = answer.strip().splitlines()
    first = lines[0].strip(_WRAPPING).lower() if lines else ""
    first = re.sub(r"^(model|answer)\s*:\s*", "", first).strip(_WRAPPING)
    if first in by_lower:
        return by_lower[first]
    if first.isdigit() and 1 <= int(first) <= len(names):
        return names[int(first) - 1]
    lower = answer.lower()
    found = [n for n in names if n.lower() in lower]
    found = [n for n in found if not any(n != m and n.lower() in m.lower() for m in found)]  # the longest names
    return found[0] if len(found) == 1 else None


class LLMDispatcher:
    """Asks `model` (a catalog model) to choose among the best-ranked candidates of a decision."""

    def __init__(self, model: str, catalog, dispatcher, *, timeout: float, candidates: int) -> None:
        self.model = model
        self.catalog = catalog
        self.dispatcher = dispatcher
        self.timeout = timeout
        self.candidates = candidates

    @classmethod
    def configured(cls, routing, catalog, dispatcher) -> LLMDispatcher | None:
        """The dispatcher of `routing` settings in ``llm`` mode; None in ``scorers`` mode."""
        if routing.mode != "llm":
            return None
        if not routing.dispatcher_model:
            raise ConfigError("routing.dispatcher_model", 'needed when routing.mode is "llm": name a small model')
        return cls(
            routing.dispatcher_model,
            catalog,
            dispatcher,
            timeout=routing.dispatcher_timeout,
            candidates=routing.dispatcher_candidates,
        )

    async def choose(self, features: PromptFeatures, ranked: Sequence[ScoredCandidate]) -> DispatcherVerdict:
        shown = list(ranked[: self.candidates])
        started = time.perf_counter()

        def verdict(outcome: str, **found) -> DispatcherVerdict:
            ms = round((time.perf_counter() - started) * 1000, 1)
            return DispatcherVerdict(self.model, outcome, ms=ms, **found)

        entry = self.catalog.get(self.model)
        if entry is None:
            return verdict("failed", detail="the dispatcher model is not in the catalog")
        request = ChatRequest(
            messages=[Message(role="user", content=dispatcher_prompt(features, shown))],
            max_tokens=24,
            temperature=0.0,
        )
        try:
            async with asyncio.timeout(self.timeout):
                completion, _ = await self.dispatcher.chat([entry], request)
        except TimeoutError:
            return verdict("timeout", detail=f"no answer within {self.timeout:g} s")
        except GatewayError as exc:
            return verdict("failed", detail=exc.message[:ANSWER_CHARS])
        except Exception as exc:  # whatever happens, the scorer ranking still decides
            log.warning("the dispatcher model %s failed: %s", self.model, type(exc).__name__)
            return verdict("failed", detail=type(exc).__name__)
        answer = completion.choices[0].message.text() if completion.choices else ""
        choice = parse_choice(answer, [c.entry.id for c in shown])
        if choice is None:
            return verdict("invalid", answer=answer[:ANSWER_CHARS], detail="the answer names no candidate")
        return verdict("chosen", choice=choice, answer=answer[:ANSWER_CHARS])
