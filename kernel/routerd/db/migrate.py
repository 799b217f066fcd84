"""Alembic, driven from code: ``routerd db upgrade|downgrade|current`` and upgrade on start.

The kernel's migration scripts live in ``migrations/`` at the top of the checkout; a built wheel
carries them inside the package as ``routerd/migrations``. The kernel looks in that order.

A plugin that owns tables ships its own revision scripts (its module's ``MIGRATIONS``: a folder of
Alembic revisions) and they are run after the kernel's, each plugin's history in a version table of
its own (``alembic_version_<plugin>``), with the environment in ``routerd/db/plugin_migrations``.

On PostgreSQL an upgrade holds a transaction-scoped advisory lock, so replicas that start
together migrate one at a time (the others find nothing left to do).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
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


def plugin_config(plugin: str, folder: Path) -> Config:
    """The Alembic configuration of one plugin's migrations (`folder`: its revision scripts)."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).resolve().parent / "plugin_migrations"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("version_locations", str(folder).replace("%", "%%"))
    config.attributes["version_table"] = version_table(plugin)
    return config


def version_table(plugin: str) -> str:
    """``alembic_version_<plugin>``: where a plugin's revision is recorded."""
    return "alembic_version_" + re.sub(r"[^a-z0-9_]", "_", plugin.lower())


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def plugin_head(plugin: str, folder: Path) -> str | None:
    return ScriptDirectory.from_config(plugin_config(plugin, folder)).get_current_head()


def _run(connection: Connection, action: str, revision: str, plugins: Mapping[str, Path]) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)
    if action == "upgrade":
        for plugin, folder in sorted(plugins.items()):
            _run_plugin(connection, plugin, folder, "upgrade", "head")


def _run_plugin(connection: Connection, plugin: str, folder: Path, action: str, revision: str) -> None:
    config = plugin_config(plugin, folder)
    config.attributes["connection"] = connection
    getattr(command, action)(config, revision)


def _current(connection: Connection, table: str = "alembic_version") -> str | None:
    return MigrationContext.configure(connection, opts={"version_table": table}).get_current_revision()


async def _locked(engine: AsyncEngine, function, *args) -> None:
    async with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_ID})
        await conn.run_sync(function, *args)


async def upgrade(
    url: str,
    revision: str = "head",
    engine: AsyncEngine | None = None,
    plugins: Mapping[str, Path] | None = None,
) -> None:
    """Apply the kernel's migrations up to `revision` (all, by default), then every migration of `plugins`
    (plugin name -> its ``MIGRATIONS`` folder)."""
    await _with_engine(url, engine, _run, "upgrade", revision, dict(plugins or {}))


async def downgrade(url: str, revision: str, engine: AsyncEngine | None = None, plugin: tuple[str, Path] | None = None):
    """Revert the kernel's migrations (or, with `plugin`, that plugin's) down to `revision` (``base`` removes
    every table they made)."""
    if plugin is not None:
        await _with_engine(url, engine, _run_plugin, plugin[0], plugin[1], "downgrade", revision)
    else:
        await _with_engine(url, engine, _run, "downgrade", revision, {})


async def current(url: str, engine: AsyncEngine | None = None, plugin: str | None = None) -> str | None:
    """The revision the database is at (the kernel's, or `plugin`'s), or None when it has none."""
    own = engine is None
    engine = engine or create_engine(url)
    table = version_table(plugin) if plugin is not None else "alembic_version"
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_current, table)
    finally:
        if own:
            await engine.dispose()


async def _with_engine(url: str, engine: AsyncEngine | None, function, *args) -> None:
    own = engine is None
    engine = engine or create_engine(url)
    try:
        await _locked(engine, function, *args)
    finally:
        if own:
            await engine.dispose()
