"""Shared fixtures of the kernel's tests: fixture plugins as entry points, and PostgreSQL.

PostgreSQL tests use the server at ROUTERD_TEST_POSTGRES_URL (default: the local one on
127.0.0.1:5432, user postgres). Each test gets a database of its own, dropped afterwards. Under
CI (the CI environment variable is set) an unreachable server fails the tests; elsewhere they
are skipped with the reason.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from importlib.metadata import EntryPoint

import asyncpg
import pytest
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get("ROUTERD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def fixture_plugin(name: str, module: str | None = None) -> EntryPoint:
    return EntryPoint(name=name, value=f"fixture_plugins.{module or name}", group="routerd")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """The SQLAlchemy URL of a fresh, empty PostgreSQL database."""
    name = f"routerd_test_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        message = f"PostgreSQL at {POSTGRES_URL} is not usable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the PostgreSQL tests)")
        pytest.skip(message)
    url = make_url(POSTGRES_URL).set(drivername="postgresql+asyncpg", database=name)
    yield url.render_as_string(hide_password=False)
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """Runs a test once on a SQLite file and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'routerd.db'}"
    return request.getfixturevalue("postgres_url")
