"""Where the learned scorer's outcomes come from, each as (prompt, model, score) triples.

- Evaluation files (``plugins.learned.data``), in the JSONL format of ../shared/eval/routing: every model each
  line scores, its name translated to the catalog's by ``plugins.learned.model_names``. Read once, at start.
- Feedback: every rating of a routed answer (``context.decisions``, `routerd.DecisionLog.ratings`: score 0..1),
  for the model that answered by its backend's name (the learned model learns per name, so a rating of a second
  backend's copy, ``backend/name``, counts for the name), on the prompt of the decision it rates. The decision log
  keeps 200 characters of a prompt; the scorer remembers the whole text of recent decisions itself
  (`RecentPrompts`, from the outcomes it learns), and uses it where it has it.
- Profiling: the per-prompt scores of profiling runs that a judge or an exact check gave (``context.profile_store``,
  `routerd.ProfileStore.prompt_scores`; unjudged neutral scores and failures are left out).

Whether there is anything new is asked cheaply (`DatabaseOutcomes.changed`): the number of ratings and the profile
store's marker, two small aggregate queries.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import routerd

if TYPE_CHECKING:
    from routerd_learned.learning.dataset import ScoredPrompts
    from routerd_learned.learning.outcomes import OutcomeTriple

log = logging.getLogger("routerd.plugin.learned")


def read_files(paths: Sequence[str]) -> list[ScoredPrompts]:
    """Every evaluation file's prompts and scores (a `DatasetError` names a bad file and line)."""
    from routerd_learned.learning.dataset import read_scored_prompts

    return [read_scored_prompts(Path(path)) for path in paths]


class RecentPrompts:
    """The whole prompt text of the latest decisions, by decision id (the decision log keeps only its start)."""

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
    """Feedback and profiling outcomes, read through the gateway's decision log and profile store."""

    def __init__(
        self,
        decisions: routerd.DecisionLog,
        profile_store: routerd.ProfileStore,
        recent: RecentPrompts,
        *,
        feedback: bool,
        profiles: bool,
    ) -> None:
        self.decisions = decisions
        self.profile_store = profile_store
        self.recent = recent
        self.feedback = feedback
        self.profiles = profiles
        self._seen: tuple[int, int] | None = None

    async def marker(self) -> tuple[int, int]:
        """How many ratings there are, and the profile store's marker (it grows when a run is stored)."""
        ratings = await self.decisions.ratings_count() if self.feedback else 0
        newest = await self.profile_store.marker() if self.profiles else 0
        return ratings, newest

    async def changed(self) -> bool:
        return await self.marker() != self._seen

    async def read(self) -> list[OutcomeTriple]:
        marker = await self.marker()
        found: list[OutcomeTriple] = []
        if self.feedback:
            for rating in await self.decisions.ratings():
                text = self.recent.get(rating.decision_id, rating.text)
                if text:
                    found.append((text, rating.name, rating.rating))
        if self.profiles:
            found.extend((prompt, model, score) for model, prompt, score in await self.profile_store.prompt_scores())
        self._seen = marker
        return found
