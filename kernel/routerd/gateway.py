"""The gateway: one object that owns the settings, the database and the plugins of a running
app. Nothing lives in module globals; every handler reaches it through ``app.state.gateway``."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from importlib.metadata import EntryPoint

from routerd.auth import Authentication
from routerd.config import Settings
from routerd.db.database import Database
from routerd.plugins import PluginHost

log = logging.getLogger("routerd")


class Gateway:
    def __init__(self, settings: Settings, entry_points: Iterable[EntryPoint] | None = None) -> None:
        self.settings = settings
        self.database = Database(settings.database_url, auto_upgrade=settings.database.auto_upgrade)
        self.plugins = PluginHost(settings, self.database, entry_points)
        self.plugins.load()
        self.auth = Authentication(self.plugins.registry)

    async def start(self) -> None:
        await self.database.start()
        await self.plugins.start()
        enabled = [name for name, r in self.plugins.records.items() if r.enabled]
        log.info("routerd started with plugins: %s", ", ".join(enabled) or "none")

    async def close(self) -> None:
        await self.plugins.close()
        await self.database.close()

    async def readiness(self) -> dict[str, bool]:
        return {"database": await self.database.ping(), "plugins": self.plugins.started}
