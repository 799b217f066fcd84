"""Builtin plugin ``profiles``: a model's quality as routerd measured it, per prompt category.

The profiler runs the suite against every model and grades the answers (routerd_profiling); this scorer gives
each candidate a quality contribution from its latest profile in the prompt's category (every category together
when the suite has none for it), with a reason that cites the profile. Its weight grows with the share of
graded answers: answers no judge graded score a neutral 0.5 and tell little, so a profile without a single
graded answer is shown for the record only (weight 0). Speed is the ``speed`` scorer's: it uses the profile's
latency in place of its size estimate, so the measurement counts once.

Profiles are read from ``context.profiles``, the gateway's in-memory index (loaded in the background at start,
after each profiling run and every ``profiling.refresh_interval``): no database read per request.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

import routerd
from routerd_scorers import PerModelScorer


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    weight: Annotated[float, msgspec.Meta(ge=0, description="Weight of a profile whose every answer was graded.")] = 2.0


def describe(profile, figures, scope: str) -> str:
    """``profiled 2026-12-01: coding 0.62 over 4 prompts (3 graded), 38 tok/s``."""
    answered = figures.samples - figures.errors
    text = f"profiled {profile.profiled_at:%Y-%m-%d}: {scope} {figures.quality:.2f} over {answered} prompts"
    text += f" ({figures.judged} graded)"
    if figures.tokens_per_second:
        text += f", {figures.tokens_per_second:.0f} tok/s"
    return text


class ProfilesScorer(PerModelScorer):
    name = "profiles"

    def __init__(self, profiles, weight: float) -> None:
        self.profiles = profiles  # a routerd_profiling.ProfileIndex
        self.weight = weight
        # (backend, model, category) -> (the profile it was made from, its contribution): profiles change rarely,
        # so each request's work is a lookup, not arithmetic and string formatting per candidate.
        self._made: dict[tuple[str, str, str], tuple[object, routerd.Contribution | None]] = {}

    def opinion_key(self, features: routerd.PromptFeatures):
        return features.category

    def state(self):
        return self.profiles.version

    def contribution(self, features: routerd.PromptFeatures, model: routerd.ModelInfo) -> routerd.Contribution | None:
        profile = self.profiles.get(model)
        if profile is None:
            return None
        key = (model.backend, model.name, features.category)
        made = self._made.get(key)
        if made is None or made[0] is not profile:
            made = self._made[key] = (profile, self._make(profile, features.category))
        return made[1]

    def _make(self, profile, category: str) -> routerd.Contribution | None:
        figures = profile.for_prompt(category)
        if figures.quality is None:  # every prompt failed: the breaker and the fallbacks deal with that
            return None
        scope = figures.category if figures.category == category else "all categories"
        answered = figures.samples - figures.errors
        share = figures.judged / answered if answered else 0.0
        return routerd.Contribution(figures.quality, self.weight * share, describe(profile, figures, scope))


@routerd.hookimpl
def register_scorers(register, context: routerd.PluginContext) -> None:
    register(ProfilesScorer(context.profiles, context.settings.weight))
