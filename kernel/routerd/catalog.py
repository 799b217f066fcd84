"""The model catalog: every model the enabled backends serve, refreshed by discovery.

Each replica keeps the catalog in memory (routing must not wait on the database) and records
what it sees in the ``models`` table (appeared, vanished, last seen), so the database holds the
history and any replica or admin tool can read it. What backends report is completed here, once
per poll, by `routerd.capabilities.ModelFacts`: metadata first, name rules second, the
configuration's ``[models."<name>"]`` overrides over both.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from routerd.capabilities import ModelFacts
from routerd.config import ModelOverride
from routerd.db.database import Database
from routerd.db.models import CatalogModel
from routerd.schemas.catalog import ModelInfo

log = logging.getLogger("routerd.catalog")


@dataclass(frozen=True)
class CatalogEntry:
    """A model under its public id (its name, or ``backend/name`` when two backends share a name)."""

    id: str
    info: ModelInfo
    backend: Any  # a routerd.protocols.Backend


class Catalog:
    def __init__(
        self,
        backends: dict[str, Any],
        database: Database,
        *,
        overrides: Mapping[str, ModelOverride] | None = None,
        poll_timeout: float = 10.0,
    ) -> None:
        self.backends = backends
        self.database = database
        self.facts = ModelFacts(overrides)
        self.poll_timeout = poll_timeout
        self.entries: dict[str, CatalogEntry] = {}
        self._by_backend: dict[str, list[ModelInfo]] = {}

    def get(self, model_id: str) -> CatalogEntry | None:
        return self.entries.get(model_id)

    def __iter__(self):
        return iter(self.entries.values())

    async def _poll(self, name: str, backend: Any) -> list[ModelInfo] | None:
        try:
            async with asyncio.timeout(self.poll_timeout):
                return await backend.list_models()
        except Exception as exc:
            log.warning("discovery: backend %s did not list its models: %s", name, exc)
            return None

    async def refresh(self) -> tuple[set[str], set[str]]:
        """Poll every backend; return the public ids that appeared and vanished. A backend that
        fails to answer keeps its last known models (the dispatcher's breaker handles it)."""
        names = list(self.backends)
        results = await asyncio.gather(*(self._poll(n, self.backends[n]) for n in names))
        for name, models in zip(names, results, strict=True):
            if models is not None:
                self._by_backend[name] = [self.facts.describe(info) for info in models]
        before = set(self.entries)
        entries: dict[str, CatalogEntry] = {}
        for name in names:
            described = self._by_backend.get(name, [])
            for i, info in enumerate(described):
                public = info.name if info.name not in entries else f"{name}/{info.name}"
                if info.id != public:  # kept with the id, so a backend that did not answer keeps the same objects
                    info = described[i] = msgspec.structs.replace(info, id=public)
                entries[public] = CatalogEntry(public, info, self.backends[name])
        self.entries = entries
        appeared, vanished = set(entries) - before, before - set(entries)
        for model in sorted(appeared):
            log.info("discovery: model %s appeared (backend %s)", model, entries[model].info.backend)
        for model in sorted(vanished):
            log.info("discovery: model %s vanished", model)
        return appeared, vanished

    async def record(self) -> None:
        """Write what discovery sees to the ``models`` table in one transaction."""
        for attempt in (1, 2):
            try:
                await self._record()
                return
            except IntegrityError:  # another replica inserted the same model at the same moment
                if attempt == 2:
                    raise

    async def _record(self) -> None:
        now = dt.datetime.now(dt.UTC)
        seen = {(e.info.backend, e.info.name): e.info for e in self.entries.values()}
        polled = set(self._by_backend)
        async with self.database.session() as session:
            rows = (await session.execute(select(CatalogModel))).scalars().all()
            known = {(row.backend, row.name): row for row in rows}
            for key, info in seen.items():
                row = known.get(key)
                if row is None:
                    row = CatalogModel(backend=info.backend, name=info.name, first_seen=now)
                    session.add(row)
                row.parameters = info.parameters
                row.context_window = info.context_window
                row.capabilities = {
                    "chat": info.capabilities.chat,
                    "vision": info.capabilities.vision,
                    "tools": info.capabilities.tools,
                    "embeddings": info.capabilities.embeddings,
                    "json_output": info.capabilities.json_output,
                }
                row.available = True
                row.last_seen = now
            for key, row in known.items():
                if key not in seen and row.available and row.backend in polled:
                    row.available = False

    async def recorded(self) -> list[ModelInfo]:
        """Every model of the ``models`` table (served now or not): name, backend, size, context window."""
        async with self.database.session() as session:
            rows = (await session.execute(select(CatalogModel))).scalars().all()
        return [
            ModelInfo(name=row.name, backend=row.backend, parameters=row.parameters, context_window=row.context_window)
            for row in rows
        ]
