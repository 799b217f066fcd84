"""Builtin plugin ``size_fit``: is a model big enough for this kind of prompt?

Minimum sizes: coding, math and reasoning need 4B parameters at medium difficulty and 8B when
hard; other categories 1B at medium and 4B when hard. Below the minimum a model's whole score is
multiplied by `undersized_factor` (a severe penalty that speed or price cannot make up for);
above it, quality grows slowly with size. Simple prompts have no minimum and no
size preference, so the efficiency scorers let small fast models win them.
"""

from __future__ import annotations

import math
from typing import Annotated

import msgspec

import routerd
from routerd_scorers import PerModelScorer

B = 1_000_000_000
DEMANDING = {"coding", "math", "reasoning"}


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    weight: Annotated[float, msgspec.Meta(ge=0, description="Weight of this scorer's opinion.")] = 1.0
    undersized_factor: Annotated[
        float, msgspec.Meta(ge=0, le=1, description="What a model below the minimum size keeps of its score.")
    ] = 0.1


def minimum_parameters(category: str, difficulty: str) -> int:
    if difficulty == "simple":
        return 0
    if category in DEMANDING:
        return 8 * B if difficulty == "hard" else 4 * B
    return 4 * B if difficulty == "hard" else 1 * B


class SizeFitScorer(PerModelScorer):
    name = "size_fit"

    def __init__(self, weight: float, undersized_factor: float = 0.1) -> None:
        self.weight = weight
        self.undersized_factor = undersized_factor

    def cache_key(self, features: routerd.PromptFeatures, model: routerd.ModelInfo):
        return features.category, features.difficulty, model.parameters

    def opinion_key(self, features: routerd.PromptFeatures):
        return features.category, features.difficulty

    def contribution(self, features: routerd.PromptFeatures, model: routerd.ModelInfo) -> routerd.Contribution:
        parameters = model.parameters
        need = minimum_parameters(features.category, features.difficulty)
        kind = f"{features.difficulty} {features.category}"
        if parameters is None:
            return routerd.Contribution(0.5, self.weight * 0.5, "size unknown")
        size = f"{parameters / B:.1f}B"
        if features.difficulty == "simple":
            return routerd.Contribution(0.7, self.weight, f"{size}: any size answers a simple prompt")
        if parameters < need:
            reason = f"{size} is below the {need // B}B a {kind} prompt needs"
            return routerd.Contribution(self.undersized_factor, 1.0, reason, "multiplier")
        score = min(1.0, 0.6 + 0.1 * math.log2(parameters / max(need, B)))
        return routerd.Contribution(score, self.weight, f"{size} meets the {need // B}B a {kind} prompt needs")


@routerd.hookimpl
def register_scorers(register, context: routerd.PluginContext) -> None:
    register(SizeFitScorer(context.settings.weight, context.settings.undersized_factor))
