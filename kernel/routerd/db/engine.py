"""The async engine for SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from routerd.errors import ConfigError

SUPPORTED_DRIVERS = {"sqlite+aiosqlite", "postgresql+asyncpg"}
CONNECT_TIMEOUT = 10.0  # seconds to connect to PostgreSQL before the database counts as unavailable


def normalise_url(url: str) -> str:
    """Accept the plain ``sqlite://`` / ``postgresql://`` spellings and pick the async driver."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError("database.url", "not a valid database URL") from None
    driver = parsed.drivername
    if driver in ("sqlite", "sqlite+pysqlite"):
        parsed = parsed.set(drivername="sqlite+aiosqlite")
    elif driver in ("postgresql", "postgres", "postgresql+psycopg2", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
    if parsed.drivername not in SUPPORTED_DRIVERS:
        raise ConfigError("database.url", f"unsupported driver {driver!r} (use sqlite or postgresql)")
    return parsed.render_as_string(hide_password=False)


def json_text(value: Any) -> str:
    """JSON columns' serializer: msgspec's encoder, several times faster than the standard
    library's (the audit log writes a JSON explanation per request). Values read back the same;
    NaN and infinities become null, which PostgreSQL's JSON accepts, unlike ``NaN``."""
    return msgspec.json.encode(value).decode()


def create_engine(url: str, **kwargs: Any) -> AsyncEngine:
    url = normalise_url(url)
    parsed = make_url(url)
    kwargs.setdefault("json_serializer", json_text)
    # A failed statement's log line and exception text never carry its parameters: an audit row holds users'
    # prompts, and a feedback row their comments.
    kwargs.setdefault("hide_parameters", True)
    if parsed.drivername.startswith("sqlite"):
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    # asyncpg waits 60 s for a connection by default: a server that is down should be known sooner.
    kwargs.setdefault("connect_args", {}).setdefault("timeout", CONNECT_TIMEOUT)
    return create_async_engine(url, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)
