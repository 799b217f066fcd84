"""The routing engine: features -> candidates -> scorers -> a ranked decision with reasons.

`Router.decide` is the one routing entry point. Pinned requests skip scoring (the client chose);
otherwise every registered scorer gives its opinion within a time budget and `scoring.combine`
ranks the candidates that meet the hard constraints. The decision is remembered in the audit log
at once and written to the database when the request ends.
"""

from __future__ import annotations

import os
import time
from functools import partial

from routerd.catalog import Catalog, CatalogEntry
from routerd.errors import InvalidRequest, ModelNotFound
from routerd.jobs.decision_log import DecisionLog, DecisionRecord
from routerd.routing import Needs, RoutingDecision
from routerd.routing.features import extract_features
from routerd.routing.llm_dispatcher import LLMDispatcher
from routerd.routing.scoring import score_candidates
from routerd.schemas.catalog import Principal
from routerd.schemas.openai import ChatRequest


class Router:
    def __init__(
        self,
        catalog: Catalog,
        scorers: dict,
        available,
        decisions: DecisionLog,
        budget: float = 0.05,
        llm: LLMDispatcher | None = None,
    ):
        self.catalog = catalog
        self.scorers = scorers
        self.available = available
        self.decisions = decisions
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

    async def decide(
        self, request: ChatRequest, *, pinned: str | None, preference: float, principal: Principal
    ) -> RoutingDecision:
        features = extract_features(request)
        needs = Needs(vision=features.needs_vision, tools=features.needs_tools, prompt_tokens=features.prompt_tokens)
        decision_id = self.new_id()
        if pinned is not None:
            entry = self.catalog.get(pinned)
            if entry is None:
                raise ModelNotFound(f"the model {pinned!r} does not exist", param="model", code="model_not_found")
            problem = needs.unmet(entry)
            if problem:
                raise InvalidRequest(f"the model {pinned!r} {problem}", param="model", code="model_incapable")
            explained = [{"model": entry.id, "backend": entry.info.backend, "pinned": True}]
            decision = RoutingDecision(decision_id, [entry], pinned=True)
        else:
            fit, unfit = self.candidates(needs)
            if not fit:
                # every capable backend is out of rotation: try them anyway rather than refuse
                fit = [e for e in self.catalog if needs.unmet(e) is None]
            if not fit:
                wanted = [name for name, on in (("vision", needs.vision), ("tools", needs.tools)) if on]
                detail = f" with {' and '.join(wanted)}" if wanted else ""
                raise ModelNotFound(f"no model{detail} is available for this request", code="no_capable_model")
            scored = await score_candidates(self.scorers, features, fit, preference, self.budget)
            verdict = None
            if self.llm is not None and len(scored) > 1:
                verdict = await self.llm.choose(features, scored)
                if verdict.choice is not None:
                    choice = verdict.choice
                    scored.sort(key=lambda s: s.entry.id != choice)  # stable: the rest keep their order
            explained = partial(explain, scored, unfit)  # built when the audit log needs it
            decision = RoutingDecision(
                decision_id, [s.entry for s in scored], pinned=False, scored=scored, dispatcher=verdict
            )
        decision.record = DecisionRecord(
            id=decision_id,
            principal=principal.subject,
            tenant=principal.tenant,
            requested_model=request.model if isinstance(request.model, str) else None,
            chosen_model=decision.chosen.id,
            runner_up=decision.runner_up.id if decision.runner_up else None,
            features=features,
            candidates=explained,
            quality_preference=preference,
            dispatcher=decision.dispatcher.as_dict() if decision.dispatcher is not None else None,
        )
        self.decisions.remember(decision.record)
        return decision


def explain(scored: list, unfit: dict[str, str]) -> list[dict]:
    """The audit log's view of a decision: every candidate scored, then every model left out."""
    return [s.explain() for s in scored] + [{"model": model, "excluded": reason} for model, reason in unfit.items()]


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
