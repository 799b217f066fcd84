"""routerd plugin ``example``: a ``current_time`` skill and a ``model_preference`` scorer.

routerd finds this module through the entry point ``example = "routerd_example"`` (group
``routerd``, in pyproject.toml). It reads two names here: ``Settings``, the Struct the
``[plugins.example]`` table is validated into, and the ``@routerd.hookimpl`` functions, each
named after a hook of `routerd.hookspecs`. The hooks run once, at start-up, and register objects;
the per-request work happens in those objects' async methods.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import msgspec
import routerd
from routerd import PluginContext, Scorer, Skill

from routerd_example.current_time import CurrentTimeSkill, time_zone
from routerd_example.model_preference import ModelPreferenceScorer

__all__ = ["CurrentTimeSkill", "ModelPreferenceScorer", "Settings"]


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``[plugins.example]`` table. routerd validates it before any hook runs: an unknown key
    or a value of the wrong type stops start-up with an error naming the key."""

    default_timezone: Annotated[
        str,
        msgspec.Meta(description="IANA time zone current_time answers in when the model names none."),
    ] = "UTC"
    preferred_models: Annotated[
        list[str],
        msgspec.Meta(description="Glob patterns (fnmatch, case-sensitive) of model names to prefer."),
    ] = []
    preference_score: Annotated[
        float,
        msgspec.Meta(ge=0.0, le=1.0, description="The score (0..1) given to a model that matches a pattern."),
    ] = 1.0


@routerd.hookimpl
def register_skills(register: Callable[[Skill], None], context: PluginContext) -> None:
    settings: Settings = context.settings
    try:
        zone = time_zone(settings.default_timezone)
    except ValueError as exc:
        # Settings a Struct cannot check by type are checked here, and refused the same way.
        raise context.config_error("default_timezone", str(exc)) from None
    register(CurrentTimeSkill(default_zone=zone))


@routerd.hookimpl
def register_scorers(register: Callable[[Scorer], None], context: PluginContext) -> None:
    settings: Settings = context.settings
    register(ModelPreferenceScorer(settings.preferred_models, settings.preference_score))
    if settings.preferred_models:
        context.log.info(
            "preferring models matching %s (score %s)",
            ", ".join(settings.preferred_models),
            settings.preference_score,
        )
