"""What a plugin is given when its hooks are called."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from routerd.errors import ConfigError

T = TypeVar("T")

if TYPE_CHECKING:
    from routerd.config import Settings
    from routerd.db.database import Database
    from routerd.decisions import DecisionLog
    from routerd.embedding import GatewayEmbedder
    from routerd.judging import Judges
    from routerd.schemas.catalog import Principal
    from routerd.served_models import ServedModels
    from routerd.stores import BenchmarkStore, ProfileIndex, ProfileStore
    from routerd.traffic import Traffic


@dataclass
class Services:
    """What the gateway shares with every plugin, filled in by the gateway before the plugins load. Each is
    usable once the gateway has started (from registered objects' ``start`` and request methods, route handlers
    and commands inside ``context.started()``), not from a hook itself."""

    models: ServedModels | None = None
    profiles: ProfileIndex | None = None
    profile_store: ProfileStore | None = None
    benchmarks: BenchmarkStore | None = None
    decisions: DecisionLog | None = None
    judges: Judges | None = None
    embedder: GatewayEmbedder | None = None
    traffic: Traffic | None = None
    authenticate: Callable[[Any], Awaitable[Principal]] | None = None
    lifecycle: Callable[..., AbstractAsyncContextManager[None]] | None = None
    serving: bool = False  # set when the gateway starts: False for a command's gateway (no background jobs)


@dataclass(frozen=True)
class PluginContext:
    """Passed to every hook of one plugin (docs/plugins.md, "The plugin context").

    `settings` is the plugin's ``[plugins.<name>]`` table validated into the plugin's own ``Settings`` Struct
    (None when the plugin declares none); `config` is the gateway's whole configuration, read-only; `data_dir`
    is a folder the plugin may write to; `log` is the plugin's logger; `database` is the gateway's database, for
    the plugin's own tables (``MIGRATIONS``); the properties below are the gateway's shared services. Plugins
    never read environment variables themselves.
    """

    name: str
    settings: Any
    config: Settings
    data_dir: Path
    log: logging.Logger
    database: Database
    services: Services
    _shared: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def shared(self, key: str, make: Callable[[], T]) -> T:
        """The object `make()` built the first time this plugin asked for `key`, in this gateway: for an object
        a plugin registers in two families (a scorer that also learns), from each hook. The plugin's hooks share
        one context per gateway, so the object never outlives its gateway or crosses to another."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    @property
    def models(self) -> ServedModels:
        """The models the gateway serves, to call by catalog name without routing (`routerd.ServedModels`)."""
        return self._service("models")

    @property
    def profiles(self) -> ProfileIndex:
        """Each model's latest profile per category, in memory (`routerd.ProfileIndex`), for the request path."""
        return self._service("profiles")

    @property
    def profile_store(self) -> ProfileStore:
        """The stored profiling runs (`routerd.ProfileStore`): store a run, read the latest ones and history."""
        return self._service("profile_store")

    @property
    def benchmarks(self) -> BenchmarkStore:
        """The public benchmark figures the gateway has synced (`routerd.BenchmarkStore`)."""
        return self._service("benchmarks")

    @property
    def decisions(self) -> DecisionLog:
        """The decision log (`routerd.DecisionLog`): find a decision, read the ratings users gave."""
        return self._service("decisions")

    @property
    def judges(self) -> Judges:
        """The registered judges, asked in turn for a verdict (`routerd.Judges`)."""
        return self._service("judges")

    @property
    def embedder(self) -> GatewayEmbedder | None:
        """Prompt embeddings from the model ``routing.embed_model`` names, or None when that setting is empty."""
        return self.services.embedder

    @property
    def traffic(self) -> Traffic:
        """The client requests this gateway is answering now (`routerd.Traffic`), for background work that gives
        way to them: `busy`, ``await quiet(seconds)``, and ``async with yielding():`` for a block that a client
        request pre-empts (`routerd.Preempted`)."""
        return self._service("traffic")

    @property
    def serving(self) -> bool:
        """True once the gateway has started to serve requests; False before, and in a gateway started for a
        command (``context.started()``): background work (periodic jobs) starts only when this is true."""
        return self.services.serving

    async def principal(self, request: Any) -> Principal:
        """The caller of `request` (a Litestar request, in a route handler), as the authenticators see it."""
        authenticate = self._service("authenticate")
        return await authenticate(request.scope)

    @asynccontextmanager
    async def started(self, *, database_only: bool = False) -> AsyncIterator[None]:
        """For commands: start the gateway this plugin belongs to (database, plugins' ``start()``, a first
        discovery of the models; no HTTP server and no jobs) and stop it when the block ends. With
        `database_only`, only the database (for commands that read and write the stores). A database that does
        not answer raises `routerd.DatabaseUnavailable` (one line: the kernel's command line ends the command
        with it and exit status 1)."""
        lifecycle = self._service("lifecycle")
        async with lifecycle(database_only=database_only):
            yield

    def config_error(self, key: str, reason: str) -> ConfigError:
        """The error for a bad value of this plugin's setting `key`, found by the plugin itself
        (a check a type cannot express); it names ``plugins.<name>.<key>`` and where the value
        came from, like the kernel's own errors. Raise it from a hook."""
        full = f"plugins.{self.name}.{key}"
        source = self.config.sources.get(full)
        return ConfigError(f"{full} (from {source})" if source else full, reason)

    def _service(self, name: str) -> Any:
        found = getattr(self.services, name)
        if found is None:
            raise RuntimeError(f"context.{name} is not available here (the gateway provides it)")
        return found
