"""Migrations build the same schema on SQLite and PostgreSQL, and go back down to nothing."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect, select

from routerd.db import migrate
from routerd.db.database import Database
from routerd.db.engine import create_engine
from routerd.db.models import ApiKeyRow, Base, CatalogModel, FeedbackRow, RoutingDecisionRow

pytestmark = pytest.mark.anyio

REQUIRED_TABLES = {
    "models",
    "model_profiles",
    "benchmark_records",
    "routing_decisions",
    "feedback",
    "api_keys",
    "sync_status",
}


async def describe_schema(url: str) -> dict[str, dict]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_describe)
    finally:
        await engine.dispose()


def _describe(sync_conn) -> dict[str, dict]:
    inspector = inspect(sync_conn)
    schema = {}
    for table in sorted(inspector.get_table_names()):
        schema[table] = {
            "columns": [(c["name"], c["nullable"]) for c in inspector.get_columns(table)],
            "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]))
                for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint")  # PostgreSQL lists unique constraints as indexes too
            ),
            "unique": sorted((u["name"], tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)),
            "foreign_keys": sorted((f["name"], f["referred_table"]) for f in inspector.get_foreign_keys(table)),
        }
    return schema


async def test_upgrade_builds_the_same_schema_on_sqlite_and_postgresql(tmp_path, postgres_url):
    sqlite_url = f"sqlite+aiosqlite:///{tmp_path / 'a.db'}"
    for url in (sqlite_url, postgres_url):
        await migrate.upgrade(url)
        assert await migrate.current(url) == migrate.head_revision()
    on_sqlite, on_postgres = await describe_schema(sqlite_url), await describe_schema(postgres_url)
    assert REQUIRED_TABLES <= set(on_sqlite)
    on_sqlite.pop("alembic_version")
    on_postgres.pop("alembic_version")
    assert on_sqlite == on_postgres


async def test_migrations_match_the_models(database_url):
    """The migration scripts and the SQLAlchemy models describe the same tables and columns."""
    await migrate.upgrade(database_url)
    schema = await describe_schema(database_url)
    for table in Base.metadata.sorted_tables:
        assert [name for name, _ in schema[table.name]["columns"]] == [c.name for c in table.columns]


async def test_downgrade_to_base_removes_every_table(database_url):
    await migrate.upgrade(database_url)
    await migrate.downgrade(database_url, "base")
    assert await migrate.current(database_url) is None
    assert set(await describe_schema(database_url)) <= {"alembic_version"}
    await migrate.upgrade(database_url)  # and it comes back
    assert REQUIRED_TABLES <= set(await describe_schema(database_url))


async def test_rows_round_trip_and_keys_are_never_stored_plain(database_url):
    database = Database(database_url)
    await database.start()
    try:
        async with database.session() as session:
            model = CatalogModel(
                backend="ollama", name="qwen2.5:7b", parameters=7_600_000_000, capabilities={"tools": True}
            )
            session.add(model)
            session.add(
                RoutingDecisionRow(
                    id="d1",
                    principal="anonymous",
                    chosen_model="qwen2.5:7b",
                    candidates=[{"model": "qwen2.5:7b", "score": 0.7}],
                )
            )
            await session.flush()
            session.add(FeedbackRow(decision_id="d1", response_id="r1", rating=1.0, principal="anonymous"))
            session.add(ApiKeyRow(name="ci", prefix="rk_abc", key_hash="0" * 64))
        async with database.session() as session:
            stored = (await session.execute(select(CatalogModel))).scalar_one()
            assert stored.parameters == 7_600_000_000
            assert stored.capabilities == {"tools": True}
            assert stored.first_seen.tzinfo is not None or database.engine.dialect.name == "sqlite"
            assert isinstance(stored.first_seen, dt.datetime)
            decision = await session.get(RoutingDecisionRow, "d1")
            assert decision.candidates[0]["score"] == 0.7
        assert {c.name for c in ApiKeyRow.__table__.columns} >= {"key_hash", "prefix"}
        assert not {"key", "api_key", "secret"} & {c.name for c in ApiKeyRow.__table__.columns}
    finally:
        await database.close()


async def test_failed_transaction_leaves_no_half_written_rows(database_url):
    database = Database(database_url)
    await database.start()
    try:
        with pytest.raises(RuntimeError):
            async with database.session() as session:
                session.add(CatalogModel(backend="b", name="m1"))
                await session.flush()
                raise RuntimeError("fails half way")
        async with database.session() as session:
            assert (await session.execute(select(CatalogModel))).scalars().all() == []
    finally:
        await database.close()


async def test_upgrade_twice_is_harmless(database_url):
    await migrate.upgrade(database_url)
    await migrate.upgrade(database_url)
    assert await migrate.current(database_url) == migrate.head_revision()


def routerd_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("routerd")), *args]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)


def test_db_commands_on_the_command_line(database_url, tmp_path):
    env = {"ROUTER_DATABASE_URL": database_url, "ROUTERD__DATA_DIR": str(tmp_path)}
    before = routerd_cli("db", "current", env=env)
    assert before.returncode == 0, before.stderr
    assert "current: none (empty database)" in before.stdout
    upgraded = routerd_cli("db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    after = routerd_cli("db", "current", env=env)
    assert f"current: {migrate.head_revision()}" in after.stdout
    assert "up to date" in after.stdout
    down = routerd_cli("db", "downgrade", "base", env=env)
    assert "database at revision base" in down.stdout


def test_bad_database_url_is_a_clear_error(tmp_path):
    result = routerd_cli("db", "current", env={"ROUTER_DATABASE_URL": "mysql://x@y/z"})
    assert result.returncode == 2
    assert "database.url: unsupported driver 'mysql'" in result.stderr
    assert "Traceback" not in result.stderr


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: nothing listens there


@pytest.mark.parametrize(
    "command",
    [("serve", "--port", "0"), ("db", "upgrade"), ("db", "current"), ("profile",), ("profiles", "export")],
)
def test_unreachable_database_is_one_clear_line(command, tmp_path):
    url = f"postgresql+asyncpg://routerd:s3cret-pw@127.0.0.1:{_closed_port()}/routerd"
    result = routerd_cli(*command, env={"ROUTER_DATABASE_URL": url, "ROUTERD__DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert "cannot reach the database postgresql+asyncpg://routerd:***@127.0.0.1:" in result.stderr
    assert "Connect call failed" in result.stderr
    assert "Traceback" not in result.stderr and "s3cret-pw" not in result.stderr


@pytest.mark.postgres
def test_missing_postgres_database_is_one_clear_line(postgres_url, tmp_path):
    url = postgres_url.rsplit("/", 1)[0] + "/routerd_no_such_database"
    result = routerd_cli("db", "current", env={"ROUTER_DATABASE_URL": url, "ROUTERD__DATA_DIR": str(tmp_path)})
    assert result.returncode == 1
    assert 'database "routerd_no_such_database" does not exist' in result.stderr
    assert "Traceback" not in result.stderr
