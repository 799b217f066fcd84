"""The routing engine: features -> candidates -> scorers -> a ranked decision with reasons.

`Router.decide` is the one routing entry point. Pinned requests skip scoring (the client chose);
otherwise every registered scorer gives its opinion within a time budget and `scoring.combine`
ranks the candidates that meet the hard constraints. It returns the decision; the request path
reports the decision and, later, how the request went to the decision log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from routerd.catalog import Catalog, CatalogEntry
from routerd.errors import InvalidRequest, ModelNotFound
from routerd.routing.decision import Needs, RoutingDecision
from routerd.routing.features import extract_features
from routerd.routing.llm_dispatcher import LLMDispatcher
from routerd.routing.scoring import score_candidates
from routerd.schemas.catalog import PromptFeatures
from routerd.schemas.openai import ChatRequest


class Router:
    def __init__(
        self,
        catalog: Catalog,
        scorers: Mapping[str, Any],
        available: Callable[[str], bool],
        budget: float = 0.05,
        llm: LLMDispatcher | None = None,
    ):
        self.catalog = catalog
        self.scorers = scorers  # the registry's predictors (`routerd.Scorer`): the only plugins routing calls
        self.available = available
        self.budget = budget
        self.llm = llm  # LLM dispatcher mode: a model chooses among the best-ranked candidates
        self.new_id = DecisionIds()

    def candidates(self, needs: Needs) -> tuple[list[CatalogEntry], dict[str, str]]:
        """The models that meet the hard constraints, and why the others do not."""
        fit, unfit = [], {}
        for entry in self.catalog:
            problem = needs.unmet(entry)
            if problem:
                unfit[entry.id] = problem
            elif not self.available(entry.info.backend):
                unfit[entry.id] = f"backend {entry.info.backend} is out of rotation"
            else:
                fit.append(entry)
        return fit, unfit

    def no_candidate(self, needs: Needs) -> InvalidRequest | ModelNotFound:
        """The error for a request no model can answer: when some model could but for the prompt's length, a 400
        ``context_length_exceeded`` naming the largest window among them; when the request needs what no model
        offers (images, tools, JSON output), a 400 ``no_capable_model`` naming the parameter that asks for it;
        and when no chat model is served at all: a 404 ``no_capable_model``."""
        windows = [e.info.context_window or 0 for e in self.catalog if needs.incapable(e) is None]
        if windows:
            return needs.too_long(max(windows), routed=True)
        message = f"no model{needs.described()} is available for this request"
        param = needs.param_no_model_meets([e.info.capabilities for e in self.catalog])
        if param is None:
            return ModelNotFound(message, code="no_capable_model")
        return InvalidRequest(message, param=param, code="no_capable_model")

    @staticmethod
    def needs(request: ChatRequest, features: PromptFeatures, *, tools: bool = False) -> Needs:
        """The hard constraints of `request`: images need a model that sees, tools (the client's, or `tools`:
        skills the gateway offers) one that calls them, a JSON response format one that can be held to JSON,
        and the prompt a context window that holds it."""
        return Needs(
            vision=features.needs_vision,
            tools=features.needs_tools or tools,
            json=request.wants_json(),
            prompt_tokens=features.prompt_tokens,
        )

    async def decide(
        self,
        request: ChatRequest,
        *,
        pinned: str | None,
        preference: float,
        features: PromptFeatures | None = None,
        needs: Needs | None = None,
    ) -> RoutingDecision:
        features = features if features is not None else extract_features(request)
        needs = needs if needs is not None else self.needs(request, features)
        decision_id = self.new_id()
        if pinned is not None:
            entry = self.catalog.get(pinned)
            if entry is None:
                raise ModelNotFound(f"the model {pinned!r} does not exist", param="model", code="model_not_found")
            problem = needs.incapable(entry)
            if problem:
                raise InvalidRequest(f"the model {pinned!r} {problem}", param="model", code="model_incapable")
            if not needs.fits(entry):
                raise needs.too_long(entry.info.context_window or 0, routed=False)
            return RoutingDecision(decision_id, features, [entry], pinned=True, preference=preference)
        fit, unfit = self.candidates(needs)
        if not fit:
            # every capable backend is out of rotation: try them anyway rather than refuse
            fit = [e for e in self.catalog if needs.unmet(e) is None]
        if not fit:
            raise self.no_candidate(needs)
        scored = await score_candidates(self.scorers, features, fit, preference, self.budget)
        verdict = None
        if self.llm is not None and len(scored) > 1:
            verdict = await self.llm.choose(features, scored)
            if verdict.choice is not None:
                choice = verdict.choice
                scored.sort(key=lambda s: s.entry.id != choice)  # stable: the rest keep their order
        return RoutingDecision(
            decision_id,
            features,
            [s.entry for s in scored],
            pinned=False,
            preference=preference,
            scored=scored,
            unfit=unfit,
            dispatcher=verdict,
        )


class DecisionIds:
    """Decision ids: ``rd-`` and 32 hex digits, the time in milliseconds, then 80 random bits.
    Ids made later sort later, so the audit log's primary-key index grows at its end (as with
    UUIDv7) instead of at random places; 80 bits from the system's random source keep them
    unguessable. The random bytes are read 4,000 at a time: one system call per 400 ids."""

    POOL = 4000

    def __init__(self) -> None:
        self._pool = b""
        self._used = self.POOL

    def __call__(self) -> str:
        if self._used >= self.POOL:
            self._pool, self._used = os.urandom(self.POOL), 0
        start = self._used
        self._used += 10
        return f"rd-{time.time_ns() // 1_000_000:012x}{self._pool[start : start + 10].hex()}"
