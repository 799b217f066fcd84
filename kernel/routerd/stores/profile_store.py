"""Profiles in the database (`ProfileStore`, ``context.profile_store``): ``model_profiles`` rows, one per model,
category and run, kept as history. The ``profiling`` plugin stores runs; scorers read them through the in-memory
`routerd.ProfileIndex`; learners read the per-prompt scores (`prompt_scores`); ``routerd profiles export|import``
reads every run (`runs`) and adds another gateway's (`add_runs`).

A run is stored in one transaction (all its categories or none); rows are only ever added, never updated, so a
model's numbers over time stay readable. The rows of one run share `profiled_at` and ``details.run_id``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import and_, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from routerd.db.database import Database
from routerd.db.models import CatalogModel, ModelProfile
from routerd.stores.profile_results import CategoryResult, ProfileDetails, StoredRun

log = logging.getLogger("routerd.profiles")


def aware(value: dt.datetime) -> dt.datetime:
    """SQLite gives naive datetimes back; they were stored as UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def category_result(row: ModelProfile) -> CategoryResult | None:
    try:
        details = msgspec.convert(row.details, ProfileDetails)
    except msgspec.ValidationError as exc:
        log.warning("profile row %s has unreadable details (%s); left out", row.id, exc)
        return None
    return CategoryResult(
        category=row.category,
        quality=row.quality,
        ttft_ms=row.ttft_ms,
        tokens_per_second=row.tokens_per_second,
        latency_ms=row.latency_ms,
        samples=row.samples,
        details=details,
    )


def group_runs(rows: Iterable[tuple[ModelProfile, str, str]]) -> list[StoredRun]:
    """Rows (with their model's backend and name) grouped into runs, newest first."""
    runs: dict[tuple[int, str], StoredRun] = {}
    for row, backend, name in rows:
        result = category_result(row)
        if result is None:
            continue
        key = (row.model_id, result.details.run_id)
        run = runs.get(key)
        if run is None:
            run = runs[key] = StoredRun(
                backend=backend,
                name=name,
                suite_version=row.suite_version,
                profiled_at=aware(row.profiled_at),
                run_id=result.details.run_id,
                categories=[],
            )
        run.categories.append(result)
    return sorted(runs.values(), key=lambda r: r.profiled_at, reverse=True)


def row_values(model_id: int, suite_version: str, profiled_at: dt.datetime, result: CategoryResult) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "suite_version": suite_version,
        "category": result.category,
        "quality": result.quality,
        "ttft_ms": result.ttft_ms,
        "tokens_per_second": result.tokens_per_second,
        "latency_ms": result.latency_ms,
        "samples": result.samples,
        "details": msgspec.to_builtins(result.details),
        "profiled_at": profiled_at,
    }


async def model_row_ids(session: AsyncSession, models: Iterable[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """The ``models`` row of each (backend, name), created (as not available) where discovery has not recorded
    it: a profile may be stored or imported before, or after, its model is seen."""
    wanted = set(models)
    if not wanted:
        return {}
    query = select(CatalogModel.id, CatalogModel.backend, CatalogModel.name).where(
        tuple_(CatalogModel.backend, CatalogModel.name).in_(list(wanted))
    )
    found = {(backend, name): ident for ident, backend, name in (await session.execute(query)).all()}
    for backend, name in sorted(wanted - set(found)):
        row = CatalogModel(backend=backend, name=name, available=False)
        session.add(row)
        await session.flush()
        found[(backend, name)] = row.id
    return found


class ProfileStore:
    """Profiling runs in the database (see the module's doc)."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _query(self):
        return select(ModelProfile, CatalogModel.backend, CatalogModel.name).join(
            CatalogModel, CatalogModel.id == ModelProfile.model_id
        )

    async def store_run(
        self, backend: str, name: str, suite_version: str, profiled_at: dt.datetime, results: Sequence[CategoryResult]
    ) -> None:
        """Add one run's rows, in one transaction."""
        async with self.database.session() as session:
            model_id = (await model_row_ids(session, [(backend, name)]))[(backend, name)]
            session.add_all(
                ModelProfile(**row_values(model_id, suite_version, profiled_at, result)) for result in results
            )

    async def latest(self) -> list[StoredRun]:
        """Every model's newest run."""
        newest = (
            select(ModelProfile.model_id, func.max(ModelProfile.profiled_at).label("at"))
            .group_by(ModelProfile.model_id)
            .subquery()
        )
        query = self._query().join(
            newest, and_(ModelProfile.model_id == newest.c.model_id, ModelProfile.profiled_at == newest.c.at)
        )
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        newest_runs: dict[tuple[str, str], StoredRun] = {}
        for run in group_runs(rows):  # two runs stored at the same instant: the first found stands
            newest_runs.setdefault((run.backend, run.name), run)
        return list(newest_runs.values())

    async def history(self, backend: str, name: str) -> list[StoredRun]:
        """Every run of one model, newest first."""
        query = self._query().where(CatalogModel.backend == backend, CatalogModel.name == name)
        async with self.database.session() as session:
            return group_runs((await session.execute(query)).all())

    async def attempts(self, suite_version: str) -> dict[tuple[str, str], list[tuple[dt.datetime, bool]]]:
        """For each model profiled with `suite_version`: its runs' dates and whether each answered anything."""
        query = (
            select(CatalogModel.backend, CatalogModel.name, ModelProfile.profiled_at, ModelProfile.quality)
            .join(CatalogModel, CatalogModel.id == ModelProfile.model_id)
            .where(ModelProfile.suite_version == suite_version)
        )
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        runs: dict[tuple[str, str], dict[dt.datetime, bool]] = {}
        for backend, name, at, quality in rows:
            answered = runs.setdefault((backend, name), {})
            at = aware(at)
            answered[at] = answered.get(at, False) or quality is not None
        return {model: sorted(found.items()) for model, found in runs.items()}

    async def models(self) -> list[tuple[str, str]]:
        """Every (backend, name) with at least one stored profile."""
        query = (
            select(CatalogModel.backend, CatalogModel.name)
            .join(ModelProfile, CatalogModel.id == ModelProfile.model_id)
            .distinct()
        )
        async with self.database.session() as session:
            return [(b, n) for b, n in (await session.execute(query)).all()]

    async def marker(self) -> int:
        """Grows whenever a run is stored (here or on another replica): the newest row's id, 0 with none."""
        async with self.database.session() as session:
            return (await session.execute(select(func.max(ModelProfile.id)))).scalar() or 0

    async def runs(self) -> list[StoredRun]:
        """Every stored run of every model (the whole history), oldest first, then by backend and model name; each
        run's categories in the order they were stored. Rows whose ``details`` cannot be read are left out."""
        query = self._query().order_by(ModelProfile.id)
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        return sorted(group_runs(rows), key=lambda run: (run.profiled_at, run.backend, run.name))

    async def add_runs(self, runs: Sequence[StoredRun], *, session: AsyncSession | None = None) -> tuple[int, int]:
        """Add the rows of `runs` (another gateway's, imported) that are not stored yet; return (rows added, rows
        already present). A row is present when its model already has a row of the same ``run_id`` and category,
        so adding the same runs twice adds nothing. A model the gateway has not recorded gets a ``models`` row
        marked not available, which discovery takes over when the model appears.

        With `session` (from ``database.session()``) the rows are written in the caller's transaction, so that an
        import is all or nothing; without, in a transaction of their own."""
        if session is None:
            async with self.database.session() as own:
                return await self._add_runs(own, runs)
        return await self._add_runs(session, runs)

    async def _add_runs(self, session: AsyncSession, runs: Sequence[StoredRun]) -> tuple[int, int]:
        models = await model_row_ids(session, {(run.backend, run.name) for run in runs})
        present: set[tuple[int, str, str]] = set()
        if models:
            query = select(ModelProfile.model_id, ModelProfile.category, ModelProfile.details).where(
                ModelProfile.model_id.in_(list(models.values()))
            )
            for model_id, category, details in (await session.execute(query)).all():
                run_id = details.get("run_id") if isinstance(details, dict) else None
                present.add((model_id, str(run_id), category))
        added = kept = 0
        for run in runs:
            model_id = models[(run.backend, run.name)]
            for result in run.categories:
                key = (model_id, result.details.run_id, result.category)
                if key in present:
                    kept += 1
                    continue
                present.add(key)
                session.add(ModelProfile(**row_values(model_id, run.suite_version, run.profiled_at, result)))
                added += 1
        return added, kept

    async def prompt_scores(self) -> list[tuple[str, str, float]]:
        """Every stored per-prompt score that a judge or an exact check gave, as (model name, prompt, score):
        unjudged neutral scores, failures and skipped prompts are left out."""
        query = select(CatalogModel.name, ModelProfile.details).join(
            CatalogModel, ModelProfile.model_id == CatalogModel.id
        )
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        found: list[tuple[str, str, float]] = []
        for model, details in rows:
            prompts = details.get("prompts") if isinstance(details, dict) else None
            for item in prompts if isinstance(prompts, list) else []:
                if not isinstance(item, dict) or item.get("judged") is False:
                    continue
                prompt, score = item.get("prompt"), item.get("score")
                if isinstance(prompt, str) and isinstance(score, int | float) and not isinstance(score, bool):
                    found.append((model, prompt, float(score)))
        return found
