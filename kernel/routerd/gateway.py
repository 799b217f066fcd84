"""The gateway: one object that owns the settings, the database, the plugins, the catalog and
the dispatcher of a running app. Nothing lives in module globals; every handler reaches it
through ``app.state.gateway``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint

from routerd.auth import Authentication
from routerd.catalog import Catalog
from routerd.config import Settings
from routerd.db.database import Database
from routerd.dispatch import Dispatcher
from routerd.jobs.benchmark_sync import BenchmarkSync
from routerd.jobs.decision_log import DecisionLog
from routerd.jobs.discovery import Discovery
from routerd.plugins import PluginHost
from routerd.routing.engine import Router
from routerd.served_models import ServedModels
from routerd.signature import Signature

log = logging.getLogger("routerd")


class Gateway:
    def __init__(self, settings: Settings, entry_points: Iterable[EntryPoint] | None = None) -> None:
        self.settings = settings
        self.database = Database(settings.database_url, auto_upgrade=settings.database.auto_upgrade)
        # The catalog and the dispatcher exist before the plugins load, so that every plugin's
        # context can carry the served models (the catalog reads the registry as it fills).
        self.dispatcher = Dispatcher(settings.dispatch)
        self.plugins = PluginHost(settings, self.database, entry_points)
        self.catalog = Catalog(self.plugins.registry.backends, self.database, overrides=settings.models)
        self.models = self.plugins.models = ServedModels(self.catalog, self.dispatcher)
        self.plugins.load()
        self.auth = Authentication(self.plugins.registry)
        self.discovery = Discovery(self.catalog, settings.backends.discovery_interval)
        self.benchmarks = BenchmarkSync(self.plugins.registry.benchmark_providers, self.database, settings.benchmarks)
        self.signature = Signature(settings.response.signature)
        scorers = self.plugins.registry.scorers
        self.decisions = DecisionLog(self.database, learners=scorers.values)
        self.router = Router(self.catalog, scorers, self.dispatcher.available, self.decisions)

    async def start(self) -> None:
        await self.database.start()
        await self.decisions.start()
        await self.plugins.start()
        await self.discovery.start()
        await self.benchmarks.start()  # in the background: never delays readiness
        self.models.ready = True
        enabled = [name for name, r in self.plugins.records.items() if r.enabled]
        log.info("routerd started with plugins: %s; %d models", ", ".join(enabled) or "none", len(self.catalog.entries))

    async def close(self) -> None:
        self.models.ready = False
        await self.benchmarks.close()
        await self.discovery.close()
        await self.dispatcher.close()
        await self.plugins.close()
        await self.decisions.close()
        await self.database.close()

    async def readiness(self) -> dict[str, bool]:
        return {"database": await self.database.ping(), "plugins": self.plugins.started}
