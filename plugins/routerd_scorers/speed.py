"""Builtin plugin ``speed``: prefer models that answer fast.

Once the gateway has seen a model answer, its measured latency (a moving average, from ``learn``)
decides; until then its profiled latency (``context.profiles``: the median over the profiling suite's
prompts of the request's category, or of all of them) does; for a model not yet profiled, an estimate
from its size, in the same unit (about ``ms_per_sqrt_billion`` x the square root of its size in
billions of parameters), with half the weight. The ``profiles`` scorer leaves speed to this one, so a
profile's latency counts once.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

import routerd
from routerd_scorers import PerModelScorer

B = 1_000_000_000


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    weight: Annotated[float, msgspec.Meta(ge=0, description="Weight of this scorer's opinion.")] = 1.0
    target_latency_ms: Annotated[
        float, msgspec.Meta(gt=0, description="A latency that scores 0.5; faster scores higher.")
    ] = 500.0
    ms_per_sqrt_billion: Annotated[
        float, msgspec.Meta(gt=0, description="Latency estimate of an unmeasured model: this x sqrt(size in B).")
    ] = 100.0


class SpeedScorer(PerModelScorer):
    name = "speed"

    def __init__(
        self, weight: float, target_latency_ms: float, ms_per_sqrt_billion: float = 100.0, profiles=None
    ) -> None:
        self.weight = weight
        self.target = target_latency_ms
        self.per_sqrt_billion = ms_per_sqrt_billion
        self.profiles = profiles  # a routerd_profiling.ProfileIndex, or None
        # (backend, model, category) -> (the profile it was made from, its contribution), as in `profiles`
        self._profiled: dict[tuple[str, str, str], tuple[object, routerd.Contribution | None]] = {}
        self.latency: dict[str, float] = {}  # public id -> moving average of total latency (ms)
        self.measurements = 0  # latencies learnt: the state its opinions depend on, with the profiles'
        # contributions made on every request otherwise: public id -> (the latency it was made from, it);
        # (model, parameters) -> the size estimate's
        self._measured: dict[str, tuple[float, routerd.Contribution]] = {}
        self._estimated: dict[tuple[str, int], routerd.Contribution] = {}

    async def learn(self, outcome: routerd.Outcome) -> None:
        if outcome.ok and outcome.latency_ms is not None:
            previous = self.latency.get(outcome.model)
            value = outcome.latency_ms if previous is None else 0.8 * previous + 0.2 * outcome.latency_ms
            self.latency[outcome.model] = value
            self.measurements += 1

    def opinion_key(self, features: routerd.PromptFeatures):
        return features.category

    def state(self):
        return self.measurements, self.profiles.version if self.profiles is not None else None

    def contribution(self, features: routerd.PromptFeatures, model: routerd.ModelInfo) -> routerd.Contribution | None:
        key = model.key  # latency is per public id: two backends' copies of a model answer at their own speed
        measured = self.latency.get(key)
        if measured is not None:
            made = self._measured.get(key)
            if made is None or made[0] != measured:
                score = self.target / (self.target + measured)
                reason = f"answers in {measured:.0f} ms on average"
                made = self._measured[key] = (
                    measured,
                    routerd.Contribution(score, self.weight, reason, "efficiency"),
                )
            return made[1]
        profile = self.profiles.get(model) if self.profiles is not None else None
        if profile is not None:
            key = (model.backend, model.name, features.category)
            made = self._profiled.get(key)
            if made is None or made[0] is not profile:
                made = self._profiled[key] = (profile, self._from_profile(profile, features.category))
            if made[1] is not None:
                return made[1]
        if model.parameters is None:
            return None
        key = (model.name, model.parameters)
        found = self._estimated.get(key)
        if found is None:
            if len(self._estimated) >= self.CACHE_SIZE:
                self._estimated.clear()
            estimate = self.per_sqrt_billion * math.sqrt(model.parameters / B)
            score = self.target / (self.target + estimate)
            reason = f"{model.parameters / B:.1f}B: about {estimate:.0f} ms expected (not measured yet)"
            found = self._estimated[key] = routerd.Contribution(score, self.weight * 0.5, reason, "efficiency")
        return found

    def _from_profile(self, profile, category: str) -> routerd.Contribution | None:
        figures = profile.for_prompt(category)
        if figures.latency_ms is None:
            return None
        score = self.target / (self.target + figures.latency_ms)
        scope = f"{figures.category} prompts" if figures.category == category else "its suite"
        reason = f"profiled {profile.profiled_at:%Y-%m-%d}: {figures.latency_ms:.0f} ms for {scope}"
        return routerd.Contribution(score, self.weight, reason, "efficiency")


def _scorer(context: routerd.PluginContext) -> SpeedScorer:
    settings: Settings = context.settings
    return context.shared(
        "scorer",
        lambda: SpeedScorer(
            settings.weight, settings.target_latency_ms, settings.ms_per_sqrt_billion, context.profiles
        ),
    )


@routerd.hookimpl
def register_scorers(register, context: routerd.PluginContext) -> None:
    register(_scorer(context))


@routerd.hookimpl
def register_learners(register, context: routerd.PluginContext) -> None:
    register(_scorer(context))  # it learns the latency each model answers with
