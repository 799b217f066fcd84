"""The database a gateway uses: created before plugins load (so they can keep a reference),
connected when the gateway starts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from routerd.db import migrate
from routerd.db.engine import create_engine, normalise_url, session_factory
from routerd.errors import RouterdError

log = logging.getLogger("routerd.db")


class DatabaseUnavailable(RouterdError):
    """The database does not answer; the message names it (password masked) and says why."""


async def ensure_reachable(url: str, wait: float = 10.0) -> None:
    """Connect once and run ``SELECT 1``; raise `DatabaseUnavailable` with a one-line reason.

    The command line calls this before it starts anything, so that a database that is down or
    misnamed ends the command with one clear line instead of a traceback from deep in a driver."""
    url = normalise_url(url)
    engine = create_engine(url)
    try:
        async with asyncio.timeout(wait), engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = f"no answer within {wait:g} s" if isinstance(exc, TimeoutError) else _reason(exc)
        raise DatabaseUnavailable(f"cannot reach the database {shown}: {reason}") from None
    finally:
        await engine.dispose()


def _reason(exc: BaseException) -> str:
    """The driver's own error, without SQLAlchemy's wrapping and background links."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return lines[0] if lines else type(original).__name__


class Database:
    def __init__(self, url: str, *, auto_upgrade: bool = True) -> None:
        self.url = normalise_url(url)
        self.auto_upgrade = auto_upgrade
        self.plugin_migrations: dict[str, Path] = {}  # plugin name -> its MIGRATIONS folder (set as plugins load)
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
            await migrate.upgrade(self.url, engine=self._engine, plugins=self.plugin_migrations)
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

    def replica_lock(self, key: int) -> AbstractAsyncContextManager[bool]:
        """``async with database.replica_lock(KEY) as acquired:``: on PostgreSQL, try to take the session advisory
        lock `KEY` (an int64 of your own), so that of several replicas sharing the database only one runs a job at
        a time; `acquired` says whether this replica has it. Elsewhere (SQLite: one process) always acquired."""
        from routerd.db.advisory import replica_lock

        return replica_lock(self, key)

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
