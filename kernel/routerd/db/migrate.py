"""Alembic, driven from code: ``routerd db upgrade|downgrade|current`` and upgrade on start.

The migration scripts live in ``migrations/`` at the top of the checkout; a built wheel carries
them inside the package as ``routerd/migrations``. The kernel looks in that order.

On PostgreSQL an upgrade holds a transaction-scoped advisory lock, so replicas that start
together migrate one at a time (the others find nothing left to do).
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from routerd.db.engine import create_engine, normalise_url

MIGRATION_LOCK_ID = 0x726F7574  # "rout"


def migrations_dir() -> Path:
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "migrations", here.parents[3] / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError("routerd's migration scripts are missing from this installation")


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    if url:
        config.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _run(connection: Connection, action: str, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def _locked(engine: AsyncEngine, action: str, revision: str) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
        await conn.run_sync(_run, action, revision)


async def upgrade(url: str, revision: str = "head", engine: AsyncEngine | None = None) -> None:
    """Apply migrations up to `revision` (all, by default)."""
    await _with_engine(url, engine, action="upgrade", revision=revision)


async def downgrade(url: str, revision: str, engine: AsyncEngine | None = None) -> None:
    """Revert migrations down to `revision` (``base`` removes every table)."""
    await _with_engine(url, engine, action="downgrade", revision=revision)


async def current(url: str, engine: AsyncEngine | None = None) -> str | None:
    """The revision the database is at, or None when it has none."""
    own = engine is None
    engine = engine or create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current)
    finally:
        if own:
            await engine.dispose()


async def _with_engine(url: str, engine: AsyncEngine | None, *, action: str, revision: str) -> None:
    own = engine is None
    engine = engine or create_engine(url)
    try:
        await _locked(engine, action, revision)
    finally:
        if own:
            await engine.dispose()
