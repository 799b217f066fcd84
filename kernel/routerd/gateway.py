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
from routerd.routing.embedding import GatewayEmbedder
from routerd.routing.engine import Router
from routerd.routing.llm_dispatcher import LLMDispatcher
from routerd.signature import Signature

log = logging.getLogger("routerd")


class Gateway:
    def __init__(self, settings: Settings, entry_points: Iterable[EntryPoint] | None = None) -> None:
        self.settings = settings
        self.database = Database(settings.database_url, auto_upgrade=settings.database.auto_upgrade)
        self.dispatcher = Dispatcher(settings.dispatch)
        embed_model = settings.routing.embed_model
        self.embedder = GatewayEmbedder(embed_model, self.dispatcher) if embed_model else None  # context.embedder
        self.plugins = PluginHost(settings, self.database, entry_points, embedder=self.embedder)
        self.plugins.load()
        self.auth = Authentication(self.plugins.registry)
        self.catalog = Catalog(self.plugins.registry.backends, self.database)
        if self.embedder is not None:
            self.embedder.catalog = self.catalog
        self.discovery = Discovery(self.catalog, settings.backends.discovery_interval)
        self.benchmarks = BenchmarkSync(self.plugins.registry.benchmark_providers, self.database, settings.benchmarks)
        self.signature = Signature(settings.response.signature)
        scorers = self.plugins.registry.scorers
        self.decisions = DecisionLog(self.database, learners=scorers.values)
        llm = LLMDispatcher.configured(settings.routing, self.catalog, self.dispatcher)
        self.router = Router(self.catalog, scorers, self.dispatcher.available, self.decisions, llm=llm)

    async def start(self) -> None:
        await self.database.start()
        await self.decisions.start()
        await self.plugins.start()
        await self.discovery.start()
        await self.benchmarks.start()  # in the background: never delays readiness
        enabled = [name for name, r in self.plugins.records.items() if r.enabled]
        log.info("routerd started with plugins: %s; %d models", ", ".join(enabled) or "none", len(self.catalog.entries))

    async def close(self) -> None:
        await self.benchmarks.close()
        await self.discovery.close()
        await self.dispatcher.close()
        await self.plugins.close()
        await self.decisions.close()
        await self.database.close()

    async def readiness(self) -> dict[str, bool]:
        return {"database": await self.database.ping(), "plugins": self.plugins.started}
