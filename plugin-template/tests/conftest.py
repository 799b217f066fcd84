"""Fixtures of this plugin's tests. routerd's own fixtures (`routerd_config`, `routerd_app`,
`routerd_client`, `routerd_gateway`, `routerd_admin_headers`, `fake_backend`) come from the
pytest plugin routerd installs, with no import; this file configures them for this plugin."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import pytest

# The module the entry point names. The plugin's own name (the entry point's, "example") is read
# from the installed entry point, so renaming the entry point needs no change to the tests.
MODULE = "routerd_example"


@pytest.fixture(scope="session")
def plugin_name() -> str:
    """The name routerd knows this plugin by: its table is ``[plugins.<plugin_name>]``."""
    names = [ep.name for ep in entry_points(group="routerd") if ep.value == MODULE]
    if not names:
        pytest.fail(
            f"no routerd entry point points at {MODULE!r}: install this plugin first "
            "(pip install -e '.[test]' in its folder)",
            pytrace=False,
        )
    return names[0]


@pytest.fixture
def routerd_config(plugin_name: str) -> dict[str, Any]:
    """The gateway's configuration in these tests, shaped like the TOML file."""
    return {
        "plugins": {
            plugin_name: {
                "default_timezone": "Asia/Tokyo",
                "preferred_models": ["fake-large*", "*:preferred"],
                "preference_score": 0.9,
            }
        }
    }


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
