"""Profiles as the admin API and the command line show them (``GET /admin/profiles``, ``/admin/profiles/{model}``,
``routerd profile``): per model, per category quality and speed, the suite version, the date, and how many answers
were judged, left unjudged or failed."""

from __future__ import annotations

from typing import Any

import msgspec

from routerd import CategoryProfile, NotFound, ProfileStore, ServedModels, StoredRun, runtime_profile
from routerd_profiling.suite import Suite

_DIGITS = {"quality": 4, "ttft_ms": 1, "latency_ms": 1, "tokens_per_second": 2}


def category_view(profile: CategoryProfile) -> dict[str, Any]:
    data = msgspec.to_builtins(profile)
    data.pop("category")
    for key, digits in _DIGITS.items():
        if data[key] is not None:
            data[key] = round(data[key], digits)
    return data


def run_view(run: StoredRun, *, model: str, suite: Suite, prompts: bool = False) -> dict[str, Any]:
    profile = runtime_profile(run)
    overall = profile.overall()
    categories = {name: category_view(c) for name, c in profile.categories.items()}
    if prompts:
        for result in run.categories:
            categories[result.category]["prompts"] = msgspec.to_builtins(result.details.prompts)
    return {
        "model": model,
        "backend": run.backend,
        "name": run.name,
        "suite_version": run.suite_version,
        "current": run.suite_version == suite.suite_version,
        "profiled_at": run.profiled_at.isoformat(),
        "run_id": run.run_id,
        "judged": overall.judged,
        "unjudged": overall.unjudged,
        "errors": overall.errors,
        "overall": category_view(overall),
        "categories": categories,
    }


def suite_view(suite: Suite) -> dict[str, Any]:
    return {
        "name": suite.name,
        "version": suite.version,
        "suite_version": suite.suite_version,
        "prompts": len(suite.prompts),
        "categories": {name: len(prompts) for name, prompts in suite.by_category().items()},
    }


async def resolve(models: ServedModels, store: ProfileStore, model: str) -> tuple[str, str]:
    """(backend, name) of a model named by its catalog id, as ``backend/name``, or by a name only one stored
    profile has."""
    info = models.get(model)
    if info is not None:
        return info.backend, info.name
    stored = await store.models()
    backend, _, name = model.partition("/")
    if (backend, name) in stored:
        return backend, name
    named = [key for key in stored if key[1] == model]
    if len(named) == 1:
        return named[0]
    raise NotFound(f"no model {model!r} in the catalog or the stored profiles", code="model_not_found")
