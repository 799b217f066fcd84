"""Making room for a model: which loaded models to unload, least recently used first, never
the pinned one (``routing.pinned_model``). Backends that manage memory (``ollama``, ``local``)
call `plan_unloads` before loading a model that is not loaded yet."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LoadedModel:
    name: str
    size_bytes: int
    last_used: float  # time.monotonic() of its last request


def plan_unloads(
    loaded: list[LoadedModel],
    *,
    budget_bytes: int | None,
    needed_bytes: int,
    pinned: str | None,
    max_loaded: int | None = None,
) -> list[str]:
    """The models to unload, in order, so that `needed_bytes` more fit in `budget_bytes` and at
    most `max_loaded` models stay loaded. When even unloading every unpinned model is not
    enough, everything unpinned is unloaded and the load is attempted anyway."""
    remaining = sorted(loaded, key=lambda m: m.last_used)
    used = sum(m.size_bytes for m in loaded)
    count = len(loaded)
    unload: list[str] = []

    def too_full() -> bool:
        over_budget = budget_bytes is not None and used + needed_bytes > budget_bytes
        over_count = max_loaded is not None and count + 1 > max_loaded
        return over_budget or over_count

    for model in remaining:
        if not too_full():
            break
        if model.name == pinned:
            continue
        unload.append(model.name)
        used -= model.size_bytes
        count -= 1
    return unload
