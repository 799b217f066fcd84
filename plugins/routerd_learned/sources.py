"""Where the learned scorer's outcomes come from, each as (prompt, model, score) triples.

- Evaluation files (``plugins.learned.data``), in the JSONL format of ../shared/eval/routing: every model each
  line scores, its name translated to the catalog's by ``plugins.learned.model_names``. Read once, at start.
- Feedback: every rating of a routed answer (the ``feedback`` table, score 0..1), for the model that answered,
  on the prompt of the decision it rates. The audit log keeps 200 characters of a prompt; the scorer remembers
  the whole text of recent decisions itself (`RecentPrompts`), and uses it where it has it.
- Profiling: the per-prompt scores of profiling runs, ``model_profiles.details["prompts"]``: each
  ``{"prompt", "score", "judged", ...}`` with a score that a judge or an exact check gave (unjudged neutral scores
  and failures are left out).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from routerd.db.models import CatalogModel, FeedbackRow, ModelProfile, RoutingDecisionRow
from routerd.learning.dataset import ScoredPrompts, read_scored_prompts
from routerd.learning.outcomes import OutcomeTriple

log = logging.getLogger("routerd.plugin.learned")


def read_files(paths: Sequence[str]) -> list[ScoredPrompts]:
    """Every evaluation file's prompts and scores (a `DatasetError` names a bad file and line)."""
    return [read_scored_prompts(Path(path)) for path in paths]


class RecentPrompts:
    """The whole prompt text of the latest decisions, by decision id (the audit log keeps only its start)."""

    def __init__(self, size: int = 5000) -> None:
        self.size = size
        self.texts: OrderedDict[str, str] = OrderedDict()

    def add(self, decision_id: str, text: str) -> None:
        self.texts[decision_id] = text
        while len(self.texts) > self.size:
            self.texts.popitem(last=False)

    def get(self, decision_id: str | None, fallback: str) -> str:
        return self.texts.get(decision_id, fallback) if decision_id else fallback


class DatabaseOutcomes:
    """Feedback and profiling outcomes from the database; `changed()` says cheaply whether there is anything new."""

    def __init__(self, database, recent: RecentPrompts, *, feedback: bool, profiles: bool) -> None:
        self.database = database
        self.recent = recent
        self.feedback = feedback
        self.profiles = profiles
        self._seen: tuple[Any, ...] | None = None

    async def marker(self) -> tuple[Any, ...]:
        """How many feedback rows and which newest profile row there are: two small aggregate queries."""
        async with self.database.session() as session:
            ratings = (await session.execute(select(func.count(FeedbackRow.id)))).scalar() if self.feedback else 0
            newest = (await session.execute(select(func.max(ModelProfile.id)))).scalar() if self.profiles else 0
        return ratings, newest

    async def changed(self) -> bool:
        return await self.marker() != self._seen

    async def read(self) -> list[OutcomeTriple]:
        marker = await self.marker()
        found: list[OutcomeTriple] = []
        async with self.database.session() as session:
            if self.feedback:
                query = select(
                    FeedbackRow.decision_id,
                    FeedbackRow.model,
                    FeedbackRow.rating,
                    RoutingDecisionRow.features,
                    RoutingDecisionRow.candidates,
                )
                query = query.join(RoutingDecisionRow, FeedbackRow.decision_id == RoutingDecisionRow.id)
                for decision_id, model, rating, features, candidates in (await session.execute(query)).all():
                    text = self.recent.get(decision_id, (features or {}).get("text") or "")
                    if model and text:
                        found.append((text, model_name(model, candidates), float(rating)))
            if self.profiles:
                query = select(CatalogModel.name, ModelProfile.details).join(
                    CatalogModel, ModelProfile.model_id == CatalogModel.id
                )
                for model, details in (await session.execute(query)).all():
                    found.extend(profile_outcomes(model, details))
        self._seen = marker
        return found


def model_name(model: str, candidates: Any) -> str:
    """The name of the model a feedback row rates: its public id is ``backend/name`` for a second backend's copy of
    a model, and the decision's candidates say which name that is (the learned model learns per name, so both
    copies' ratings count for it)."""
    if isinstance(candidates, list):
        for candidate in candidates:
            if isinstance(candidate, dict) and candidate.get("model") == model:
                name = candidate.get("name")
                return name if isinstance(name, str) and name else model
    return model


def profile_outcomes(model: str, details: Any) -> Iterator[OutcomeTriple]:
    """The judged (or exactly checked) per-prompt scores of one ``model_profiles`` row's details."""
    prompts = details.get("prompts") if isinstance(details, dict) else None
    if not isinstance(prompts, list):
        return
    for item in prompts:
        if not isinstance(item, dict) or item.get("judged") is False:
            continue
        prompt, score = item.get("prompt"), item.get("score")
        if isinstance(prompt, str) and isinstance(score, int | float) and not isinstance(score, bool):
            yield prompt, model, float(score)
