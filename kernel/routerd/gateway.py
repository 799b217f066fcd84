"""The gateway: one object that owns the settings, the database, the plugins, the catalog and
the dispatcher of a running app. Nothing lives in module globals; every handler reaches it
through ``app.state.gateway``."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from importlib.metadata import EntryPoint

from routerd.auth import Authentication
from routerd.catalog import Catalog
from routerd.config import Settings
from routerd.context import Services
from routerd.db.database import Database, ensure_reachable
from routerd.decisions import DecisionLog
from routerd.dispatch import Dispatcher
from routerd.embedding import GatewayEmbedder
from routerd.jobs.benchmark_sync import BenchmarkSync
from routerd.jobs.discovery import Discovery
from routerd.jobs.profile_reload import ProfileReload
from routerd.judging import Judges
from routerd.pipeline.chat import ChatPipeline
from routerd.plugins import PluginHost
from routerd.routing.engine import Router
from routerd.routing.llm_dispatcher import LLMDispatcher
from routerd.served_models import ServedModels
from routerd.signature import Signature
from routerd.stores.benchmark_store import BenchmarkStore
from routerd.stores.profile_index import ProfileIndex
from routerd.stores.profile_store import ProfileStore
from routerd.traffic import Traffic

log = logging.getLogger("routerd")


class Gateway:
    def __init__(self, settings: Settings, entry_points: Iterable[EntryPoint] | None = None) -> None:
        self.settings = settings
        self.database = Database(settings.database_url, auto_upgrade=settings.database.auto_upgrade)
        # What plugins share exists before they load, so that every plugin's context can carry it (the catalog
        # reads the registry as it fills).
        self.dispatcher = Dispatcher(settings.dispatch)
        self.services = services = Services()
        self.plugins = PluginHost(settings, self.database, entry_points, services=services)
        registry = self.plugins.registry
        self.catalog = Catalog(registry.backends, self.database, overrides=settings.models)
        services.models = self.models = ServedModels(self.catalog, self.dispatcher)
        services.profiles = self.profiles = ProfileIndex()
        services.profile_store = self.profile_store = ProfileStore(self.database)
        services.benchmarks = self.benchmark_store = BenchmarkStore(self.database, settings.benchmarks.extra_benchmarks)
        services.decisions = self.decisions = DecisionLog(
            self.database, learners=registry.learners, settings=settings.audit
        )
        services.judges = self.judges = Judges(registry.judges)
        services.traffic = self.traffic = Traffic()  # the client requests in flight, counted by api/openai.py
        embed_model = settings.routing.embed_model
        services.embedder = self.embedder = GatewayEmbedder(embed_model, self.models) if embed_model else None
        self.auth = Authentication(registry)
        services.authenticate = self.auth.principal_of
        services.lifecycle = self.running
        self.plugins.load()
        self.discovery = Discovery(self.catalog, settings.backends.discovery_interval, self.models.watchers)
        self.benchmarks = BenchmarkSync(
            registry.benchmark_providers, self.database, settings.benchmarks, self.benchmark_store
        )
        self.profile_reload = ProfileReload(self.profile_store, self.profiles, settings.profiling.refresh_interval)
        self.signature = Signature(settings.response.signature)
        llm = LLMDispatcher.configured(settings.routing, self.catalog, self.dispatcher)
        self.router = Router(self.catalog, registry.scorers, self.dispatcher.available, llm=llm)
        self.chat = ChatPipeline(
            settings,
            self.router,
            self.dispatcher,
            self.decisions,
            self.signature,
            caches=registry.caches,
            skills=registry.skills,
        )

    async def start(self, *, background: bool = True) -> None:
        """Start everything; `background` False leaves the background jobs off (the benchmark sync, and what
        plugins start only in a serving gateway, such as background profiling: ``context.serving``) for
        commands that run one job in-process, such as `routerd profile`."""
        self.services.serving = background
        await self.database.start()
        await self.decisions.start()
        await self.plugins.start()
        await self.discovery.start()
        self.models.ready = True
        if background:
            await self.plugins.start_jobs()  # after the first discovery: a job sees the models from its start
        await self.profile_reload.start()  # in the background: never delays readiness
        if background:
            await self.benchmarks.start()  # likewise
        enabled = [name for name, r in self.plugins.records.items() if r.enabled]
        log.info("routerd started with plugins: %s; %d models", ", ".join(enabled) or "none", len(self.catalog.entries))

    async def close(self) -> None:
        self.models.ready = False
        self.services.serving = False
        await self.chat.stores.close()
        await self.benchmarks.close()
        await self.profile_reload.close()
        await self.discovery.close()
        await self.dispatcher.close()
        await self.plugins.close()
        await self.decisions.close()
        await self.database.close()

    @asynccontextmanager
    async def running(self, *, database_only: bool = False) -> AsyncIterator[None]:
        """The gateway started for one command (`PluginContext.started`): no background jobs; with
        `database_only`, only the database. The database must answer first (`DatabaseUnavailable`)."""
        await ensure_reachable(self.database.url)
        if database_only:
            await self.database.start()
            try:
                yield
            finally:
                await self.database.close()
            return
        try:
            await self.start(background=False)
            yield
        finally:
            await self.close()

    async def readiness(self) -> dict[str, bool]:
        """`/readyz`'s checks: the database answers, every plugin started, and (``server.require_chat_model``) the
        catalog holds a model that chats."""
        checks = {"database": await self.database.ping(), "plugins": self.plugins.started}
        if self.settings.server.require_chat_model:
            checks["models"] = any(entry.info.capabilities.chat is not False for entry in self.catalog)
        return checks
