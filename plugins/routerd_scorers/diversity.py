"""Builtin plugin ``diversity``: a model that wins too large a share of recent decisions loses
up to half its score, so close runners-up get traffic (and so measurements and feedback)."""

from __future__ import annotations

from collections import Counter, deque
from typing import Annotated

import msgspec

import routerd


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    window: Annotated[int, msgspec.Meta(ge=10, description="How many recent decisions count.")] = 200
    max_penalty: Annotated[
        float, msgspec.Meta(ge=0, le=0.5, description="The most a model's score is cut (0.5 = by half).")
    ] = 0.5


class DiversityScorer:
    name = "diversity"

    def __init__(self, window: int, max_penalty: float) -> None:
        self.recent: deque[str] = deque(maxlen=window)
        self.counts: Counter[str] = Counter()  # of `recent`, kept as it changes (not counted per request)
        self.max_penalty = max_penalty
        self._shape: tuple[int, int] | None = None  # (candidates, window length) the contributions in _made are for
        self._made: dict[int, routerd.Contribution] = {}  # a model's count -> its contribution

    async def learn(self, outcome: routerd.Outcome) -> None:
        if outcome.rating is None:  # one pick per decision, not per piece of feedback
            recent = self.recent
            if len(recent) == recent.maxlen:
                oldest = recent[0]
                self.counts[oldest] -= 1
                if not self.counts[oldest]:
                    del self.counts[oldest]
            recent.append(outcome.model)
            self.counts[outcome.model] += 1

    async def score(self, features, candidates):
        total = len(self.recent)
        if len(candidates) < 2 or not total:
            return {}
        # A contribution depends only on the model's count, the number of candidates and the window's length:
        # one is made per count and reused while the other two stay (writing 50 reasons per decision cost more
        # than the rest of this scorer).
        shape = (len(candidates), total)
        if shape != self._shape:
            self._shape, self._made = shape, {}
        made, counts = self._made, self.counts
        found = {}
        for model in candidates:
            key = model.key  # picks are counted per public id, as outcomes name them
            count = counts.get(key, 0)
            contribution = made.get(count)
            if contribution is None:
                contribution = made[count] = self._contribution(count, len(candidates), total)
            found[key] = contribution
        return found

    def _contribution(self, count: int, candidates: int, total: int) -> routerd.Contribution:
        share = count / total
        fair = 1 / candidates
        excess = max(0.0, (share - fair) / (1 - fair))
        reason = f"won {share:.0%} of the last {total} decisions"
        return routerd.Contribution(1 - self.max_penalty * excess, 1.0, reason, "multiplier")


def _scorer(context: routerd.PluginContext) -> DiversityScorer:
    return context.shared("scorer", lambda: DiversityScorer(context.settings.window, context.settings.max_penalty))


@routerd.hookimpl
def register_scorers(register, context: routerd.PluginContext) -> None:
    register(_scorer(context))


@routerd.hookimpl
def register_learners(register, context: routerd.PluginContext) -> None:
    register(_scorer(context))  # it counts the picks
