"""Discovery polls every backend on an interval: models that appear or vanish are logged and
recorded in the `models` table."""

from __future__ import annotations

import asyncio
import logging
import time

from sqlalchemy import select

from routerd.db.models import CatalogModel
from routerd.testing import build_app
from servers import ReplayState, replay_server, running_gateway


def rows(app) -> dict[str, bool]:
    async def read() -> dict[str, bool]:
        from routerd.db.database import Database

        database = Database(app.state.gateway.settings.database_url, auto_upgrade=False)
        await database.start()
        try:
            async with database.session() as session:
                found = (await session.execute(select(CatalogModel))).scalars().all()
                return {row.name: row.available for row in found}
        finally:
            await database.close()

    return asyncio.run(read())


def test_models_that_appear_and_vanish_are_logged_and_recorded(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="routerd")
    state = ReplayState(models=["alpha-7b"])
    with replay_server(state) as url:
        config = {"plugins": {"openai": {"base_url": url}}, "backends": {"discovery_interval": 0.2}}
        app = build_app(tmp_path, config)
        catalog = app.state.gateway.catalog
        with running_gateway(app):
            assert list(catalog.entries) == ["alpha-7b"]
            state.models = ["beta-1b"]
            deadline = time.monotonic() + 10
            while list(catalog.entries) != ["beta-1b"]:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            time.sleep(0.5)  # let the poll's write land
            assert rows(app) == {"alpha-7b": False, "beta-1b": True}
            assert catalog.entries["beta-1b"].info.parameters == 1_000_000_000
    assert "discovery: model alpha-7b appeared (backend openai)" in caplog.text
    assert "discovery: model beta-1b appeared (backend openai)" in caplog.text
    assert "discovery: model alpha-7b vanished" in caplog.text


def test_a_backend_that_fails_to_answer_keeps_its_last_known_models(tmp_path):
    state = ReplayState(models=["alpha-7b"])
    with replay_server(state) as url:
        config = {"plugins": {"openai": {"base_url": url}}, "backends": {"discovery_interval": 0.2}}
        app = build_app(tmp_path, config)
        with running_gateway(app):
            state.down = True
            time.sleep(0.6)
            assert list(app.state.gateway.catalog.entries) == ["alpha-7b"]
