"""Builtin plugin ``speed``: prefer models that answer fast.

Once the gateway has seen a model answer, its measured latency (a moving average, from ``learn``)
decides; until then an estimate from its size does, in the same unit (about
``ms_per_sqrt_billion`` x the square root of its size in billions of parameters), with half the
weight.
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

    def __init__(self, weight: float, target_latency_ms: float, ms_per_sqrt_billion: float = 100.0) -> None:
        self.weight = weight
        self.target = target_latency_ms
        self.per_sqrt_billion = ms_per_sqrt_billion
        self.latency: dict[str, float] = {}  # model -> moving average of total latency (ms)

    async def learn(self, outcome: routerd.Outcome) -> None:
        if outcome.ok and outcome.latency_ms is not None:
            previous = self.latency.get(outcome.model)
            value = outcome.latency_ms if previous is None else 0.8 * previous + 0.2 * outcome.latency_ms
            self.latency[outcome.model] = value

    def contribution(self, features: routerd.PromptFeatures, model: routerd.ModelInfo) -> routerd.Contribution | None:
        measured = self.latency.get(model.name)
        if measured is not None:
            score = self.target / (self.target + measured)
            return routerd.Contribution(score, self.weight, f"answers in {measured:.0f} ms on average", "efficiency")
        if model.parameters is None:
            return None
        estimate = self.per_sqrt_billion * math.sqrt(model.parameters / B)
        score = self.target / (self.target + estimate)
        reason = f"{model.parameters / B:.1f}B: about {estimate:.0f} ms expected (not measured yet)"
        return routerd.Contribution(score, self.weight * 0.5, reason, "efficiency")


@routerd.hookimpl
def register_scorers(register, context: routerd.PluginContext) -> None:
    settings: Settings = context.settings
    register(SpeedScorer(settings.weight, settings.target_latency_ms, settings.ms_per_sqrt_billion))
