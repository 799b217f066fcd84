"""The runtime profiles in memory: each model's latest profile, per category, for scorers to read on the request
path without touching the database.

The gateway owns one `ProfileIndex` and hands it to every plugin as ``context.profiles``. It is filled in the
background: loaded from the database at start and every ``profiling.refresh_interval`` seconds (other replicas'
runs, imports), and updated at once when this replica finishes profiling a model.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import msgspec

from routerd.schemas.catalog import ModelInfo
from routerd.stores.profile_results import StoredRun


class CategoryProfile(msgspec.Struct, frozen=True, kw_only=True):
    """A model's profile in one category: `quality` in 0..1 (None when every prompt failed) over `samples`
    prompts, of which `judged` were graded (exactly or by a judge), `unjudged` got a neutral 0.5 and `errors`
    failed; timings are medians in milliseconds, `tokens_per_second` the decoding speed."""

    category: str
    quality: float | None
    samples: int
    judged: int = 0
    unjudged: int = 0
    errors: int = 0
    ttft_ms: float | None = None
    tokens_per_second: float | None = None
    latency_ms: float | None = None


class RuntimeProfile(msgspec.Struct, frozen=True, kw_only=True):
    """A model's latest profile: `backend` and `model` as the backend names it, the suite version it was
    measured with, when, and the per-category figures."""

    backend: str
    model: str
    suite_version: str
    profiled_at: dt.datetime
    categories: dict[str, CategoryProfile]

    def category(self, name: str) -> CategoryProfile | None:
        return self.categories.get(name)

    def overall(self) -> CategoryProfile:
        """Every category together: quality weighted by answered prompts, timings by samples."""
        rows = list(self.categories.values())
        answered = [(c, c.samples - c.errors) for c in rows if c.quality is not None and c.samples > c.errors]
        weight = sum(n for _, n in answered)
        quality = sum(c.quality * n for c, n in answered) / weight if weight else None  # type: ignore[operator]

        def mean(values: list[tuple[float | None, int]]) -> float | None:
            present = [(v, n) for v, n in values if v is not None and n > 0]
            total = sum(n for _, n in present)
            return sum(v * n for v, n in present) / total if total else None

        return CategoryProfile(
            category="overall",
            quality=quality,
            samples=sum(c.samples for c in rows),
            judged=sum(c.judged for c in rows),
            unjudged=sum(c.unjudged for c in rows),
            errors=sum(c.errors for c in rows),
            ttft_ms=mean([(c.ttft_ms, c.samples - c.errors) for c in rows]),
            tokens_per_second=mean([(c.tokens_per_second, c.samples - c.errors) for c in rows]),
            latency_ms=mean([(c.latency_ms, c.samples - c.errors) for c in rows]),
        )

    def for_prompt(self, category: str) -> CategoryProfile:
        """The prompt's category when the suite covers it (and some of its prompts were answered), else overall."""
        found = self.categories.get(category)
        if found is not None and found.quality is not None:
            return found
        return self.overall()


def runtime_profile(run: StoredRun) -> RuntimeProfile:
    categories = {
        c.category: CategoryProfile(
            category=c.category,
            quality=c.quality,
            samples=c.samples,
            judged=c.details.judged,
            unjudged=c.details.unjudged,
            errors=c.details.errors,
            ttft_ms=c.ttft_ms,
            tokens_per_second=c.tokens_per_second,
            latency_ms=c.latency_ms,
        )
        for c in run.categories
    }
    return RuntimeProfile(
        backend=run.backend,
        model=run.name,
        suite_version=run.suite_version,
        profiled_at=run.profiled_at,
        categories=categories,
    )


class ProfileIndex:
    """Each model's latest `RuntimeProfile`, by (backend, model name). Reads are dictionary lookups."""

    def __init__(self) -> None:
        self._latest: dict[tuple[str, str], RuntimeProfile] = {}
        self.loaded_at: dt.datetime | None = None
        self.version = 0  # grows with every change: what scorers compare to know their opinions still hold

    def get(self, model: ModelInfo) -> RuntimeProfile | None:
        """The latest profile of `model` (as a backend lists it), or None when it has none."""
        return self._latest.get((model.backend, model.name))

    def lookup(self, backend: str, name: str) -> RuntimeProfile | None:
        return self._latest.get((backend, name))

    def __len__(self) -> int:
        return len(self._latest)

    def __iter__(self):
        return iter(list(self._latest.values()))

    def replace(self, profiles: Iterable[RuntimeProfile]) -> None:
        """Everything, as just read from the database; a profile put here meanwhile (newer than what was read)
        stays."""
        latest = {(p.backend, p.model): p for p in profiles}
        for key, known in self._latest.items():
            found = latest.get(key)
            if found is None or found.profiled_at < known.profiled_at:
                latest[key] = known
        self._latest = latest
        self.loaded_at = dt.datetime.now(dt.UTC)
        self.version += 1

    def put(self, profile: RuntimeProfile) -> None:
        """One model's new profile, unless a newer one is already known."""
        key = (profile.backend, profile.model)
        known = self._latest.get(key)
        if known is None or known.profiled_at <= profile.profiled_at:
            self._latest = {**self._latest, key: profile}
            self.version += 1
