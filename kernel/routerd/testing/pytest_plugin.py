"""The pytest plugin routerd installs for plugin authors (see routerd.testing)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from routerd.config import Settings
from routerd.gateway import Gateway
from routerd.testing.factories import TEST_ADMIN_KEY, build_app, make_settings
from routerd.testing.fake_backend import FAKE_PLUGIN, FakeBackend


@pytest.fixture
def routerd_config() -> dict[str, Any]:
    """The configuration tests run with, shaped like the TOML file. Override this fixture to
    configure your plugin: ``return {"plugins": {"my_plugin": {"option": 1}}}``."""
    return {}


@pytest.fixture
def routerd_data_dir(tmp_path: Path) -> Path:
    return tmp_path / "routerd"


@pytest.fixture
def routerd_settings(routerd_data_dir: Path, routerd_config: dict[str, Any]) -> Settings:
    return make_settings(routerd_data_dir, routerd_config)


@pytest.fixture
def routerd_app(routerd_data_dir: Path, routerd_config: dict[str, Any]) -> Litestar:
    """An app with every installed plugin and the fake backend, not started yet."""
    return build_app(routerd_data_dir, routerd_config, [FAKE_PLUGIN])


@pytest.fixture
def routerd_client(routerd_app: Litestar) -> Iterator[TestClient]:
    """A started app (database migrated, plugins started) behind Litestar's TestClient. Admin
    routes need `routerd_admin_headers`."""
    with TestClient(routerd_app) as client:
        yield client


@pytest.fixture
def routerd_gateway(routerd_app: Litestar) -> Gateway:
    return routerd_app.state.gateway


@pytest.fixture
def fake_backend(routerd_gateway: Gateway) -> FakeBackend:
    """The fake backend registered in `routerd_app`; set ``fake_backend.reply`` to script it."""
    return routerd_gateway.plugins.registry.backends["fake"]


@pytest.fixture
def routerd_admin_headers() -> dict[str, str]:
    """Headers that make a request the admin of `routerd_app`."""
    return {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
