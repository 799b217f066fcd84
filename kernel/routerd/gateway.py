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
from routerd.jobs.profiling import ProfilingJob
from routerd.plugins import PluginHost
from routerd.profiling.index import ProfileIndex
from routerd.profiling.profiler import Profiler
from routerd.profiling.suite import load_suite
from routerd.routing.embedding import GatewayEmbedder
from routerd.routing.engine import Router
from routerd.routing.llm_dispatcher import LLMDispatcher
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
        self.profiles = ProfileIndex()  # the runtime profiles scorers read (context.profiles)
        self.plugins = PluginHost(settings, self.database, entry_points, profiles=self.profiles)
        self.catalog = Catalog(self.plugins.registry.backends, self.database, overrides=settings.models)
        self.models = self.plugins.models = ServedModels(self.catalog, self.dispatcher)
        embed_model = settings.routing.embed_model
        self.embedder = self.plugins.embedder = GatewayEmbedder(embed_model, self.models) if embed_model else None
        self.plugins.load()
        self.auth = Authentication(self.plugins.registry)
        self.discovery = Discovery(self.catalog, settings.backends.discovery_interval)
        self.benchmarks = BenchmarkSync(self.plugins.registry.benchmark_providers, self.database, settings.benchmarks)
        self.signature = Signature(settings.response.signature)
        scorers = self.plugins.registry.scorers
        self.decisions = DecisionLog(self.database, learners=scorers.values)
        llm = LLMDispatcher.configured(settings.routing, self.catalog, self.dispatcher)
        self.router = Router(self.catalog, scorers, self.dispatcher.available, self.decisions, llm=llm)
        suite = load_suite(settings.profiling.suite)
        profiler = Profiler(
            self.catalog, self.dispatcher, scorers, self.database, settings.profiling, suite, self.profiles
        )
        self.profiling = ProfilingJob(profiler, self.database, settings.profiling, self.profiles)
        self.discovery.listeners.append(self.profiling.models_appeared)

    async def start(self, *, background: bool = True) -> None:
        """Start everything; `background` False leaves the benchmark sync and profiling off (for commands that
        run one job in-process, such as `routerd profile`)."""
        await self.database.start()
        await self.decisions.start()
        await self.plugins.start()
        await self.discovery.start()
        self.models.ready = True
        if background:
            await self.benchmarks.start()  # in the background: never delays readiness
            await self.profiling.start()  # likewise
        enabled = [name for name, r in self.plugins.records.items() if r.enabled]
        log.info("routerd started with plugins: %s; %d models", ", ".join(enabled) or "none", len(self.catalog.entries))

    async def close(self) -> None:
        self.models.ready = False
        await self.profiling.close()
        await self.benchmarks.close()
        await self.discovery.close()
        await self.dispatcher.close()
        await self.plugins.close()
        await self.decisions.close()
        await self.database.close()

    async def readiness(self) -> dict[str, bool]:
        return {"database": await self.database.ping(), "plugins": self.plugins.started}
