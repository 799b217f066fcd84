"""Replica locks for background jobs: on PostgreSQL a session advisory lock, so that of several replicas sharing
the database only one runs a job at a time; elsewhere (SQLite: one process) always granted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text

from routerd.db.database import Database


@asynccontextmanager
async def replica_lock(database: Database, key: int) -> AsyncIterator[bool]:
    """Try to take the advisory lock `key` (``pg_try_advisory_lock``); yield whether it was taken. The lock is
    held on a connection outside any transaction and released on the way out, or dies with its connection
    (which is invalidated if the release fails)."""
    engine = database.engine
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as conn:
        acquired = (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key})).scalar()
        await conn.commit()  # hold the lock, not a transaction
        try:
            yield bool(acquired)
        finally:
            if acquired:
                try:
                    await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                    await conn.commit()
                except BaseException:
                    await conn.invalidate()  # closing the session releases the lock
                    raise
