"""Builtin plugin ``cost``: prefer cheaper models. Prices are configured per model (USD per
million tokens, input and output averaged); models without a price on a local backend are free."""

from __future__ import annotations

from typing import Annotated

import msgspec

import routerd
from routerd_scorers import PerModelScorer

LOCAL_BACKENDS = ("local", "llamacpp", "ollama")


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    weight: Annotated[float, msgspec.Meta(ge=0, description="Weight of this scorer's opinion.")] = 1.0
    prices: Annotated[
        dict[str, Annotated[float, msgspec.Meta(ge=0)]],
        msgspec.Meta(description="USD per million tokens, by model name; unlisted local models are free."),
    ] = {}
    reference_price: Annotated[
        float, msgspec.Meta(gt=0, description="A price (USD/Mtok) that scores 0.5; cheaper scores higher.")
    ] = 1.0


class CostScorer(PerModelScorer):
    name = "cost"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def cache_key(self, features: routerd.PromptFeatures, model: routerd.ModelInfo):
        return model.name, model.backend

    def opinion_key(self, features: routerd.PromptFeatures):
        return "every prompt"  # prices are per model: every prompt gets the same opinion

    def contribution(self, features: routerd.PromptFeatures, model: routerd.ModelInfo) -> routerd.Contribution | None:
        price = self.settings.prices.get(model.name)
        if price is None:
            if not model.backend.startswith(LOCAL_BACKENDS):
                return None
            price = 0.0
        score = self.settings.reference_price / (self.settings.reference_price + price)
        reason = "free (runs locally)" if price == 0 else f"${price:g} per million tokens"
        return routerd.Contribution(score, self.settings.weight, reason, "efficiency")


@routerd.hookimpl
def register_scorers(register, context: routerd.PluginContext) -> None:
    register(CostScorer(context.settings))
