"""The database a gateway uses: created before plugins load (so they can keep a reference),
connected when the gateway starts."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from routerd.db import migrate
from routerd.db.engine import create_engine, normalise_url, session_factory

log = logging.getLogger("routerd.db")


class Database:
    def __init__(self, url: str, *, auto_upgrade: bool = True) -> None:
        self.url = normalise_url(url)
        self.auto_upgrade = auto_upgrade
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            raise RuntimeError("the database is not started yet")
        return self._engine

    async def start(self) -> None:
        self._engine = create_engine(self.url)
        self._sessions = session_factory(self._engine)
        if self.auto_upgrade:
            await migrate.upgrade(self.url, engine=self._engine)
            log.info("database schema at %s", await migrate.current(self.url, engine=self._engine))

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction: committed when the block ends, rolled back on error."""
        if self._sessions is None:
            raise RuntimeError("the database is not started yet")
        async with self._sessions() as session, session.begin():
            yield session

    async def ping(self) -> bool:
        if self._engine is None:
            return False
        try:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:
            log.warning("database ping failed: %s", type(exc).__name__)
            return False
        return True
