"""Builtin plugin ``feedback``: what users said about a model's answers, per prompt category.

Ratings (0..1) are averaged per model and category with a prior of two neutral votes, so one
vote moves a model but does not decide alone. The averages are read from the database when the
gateway starts and every ``refresh_interval`` seconds (feedback given to other replicas), and
updated at once when feedback arrives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Annotated

import msgspec

import routerd

log = logging.getLogger("routerd.plugin.feedback")
PRIOR_VOTES, PRIOR_MEAN = 2.0, 0.5


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    weight: Annotated[float, msgspec.Meta(ge=0, description="Weight of this scorer at full confidence.")] = 2.0
    refresh_interval: Annotated[float, msgspec.Meta(gt=0, description="Seconds between reloads of all feedback.")] = (
        60.0
    )


class FeedbackScorer:
    name = "feedback"

    def __init__(self, settings: Settings, decisions: routerd.DecisionLog) -> None:
        self.settings = settings
        self.decisions = decisions
        self.totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])  # (model, cat) -> sum, n
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.reload()
        self._task = asyncio.get_running_loop().create_task(self._refresh())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.settings.refresh_interval)
            try:
                await self.reload()
            except Exception:
                log.exception("reloading feedback failed")

    async def reload(self) -> None:
        totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
        for rating in await self.decisions.ratings():
            totals[(rating.model, rating.category)][0] += rating.rating
            totals[(rating.model, rating.category)][1] += 1
        self.totals = totals

    async def learn(self, outcome: routerd.Outcome) -> None:
        if outcome.rating is not None:
            entry = self.totals[(outcome.model, outcome.features.category)]
            entry[0] += outcome.rating
            entry[1] += 1

    async def score(self, features, candidates):
        found = {}
        for model in candidates:
            key = model.key  # ratings are per public id (two backends' copies of a model are rated apart)
            total, count = self.totals.get((key, features.category), (0.0, 0.0))
            if count == 0:
                continue
            mean = (total + PRIOR_MEAN * PRIOR_VOTES) / (count + PRIOR_VOTES)
            weight = self.settings.weight * min(1.0, count / 5)
            reason = f"{count:.0f} ratings for {features.category} prompts, average {total / count:.2f}"
            found[key] = routerd.Contribution(mean, weight, reason)
        return found


def _scorer(context: routerd.PluginContext) -> FeedbackScorer:
    return context.shared("scorer", lambda: FeedbackScorer(context.settings, context.decisions))


@routerd.hookimpl
def register_scorers(register, context: routerd.PluginContext) -> None:
    register(_scorer(context))


@routerd.hookimpl
def register_learners(register, context: routerd.PluginContext) -> None:
    register(_scorer(context))  # a rating counts at once, before the next reload
