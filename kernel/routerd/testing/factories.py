"""Settings and apps for tests: a fresh SQLite database in a temporary folder, plugins as
installed (plus any extra entry points), configuration as a plain dict shaped like the TOML."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

import msgspec
from litestar import Litestar

from routerd.app import create_app
from routerd.config import Settings, explain_validation_error
from routerd.errors import ConfigError

# The admin key of test apps, unless a test configures its own.
TEST_ADMIN_KEY = "routerd-test-admin-key"

# Builtin plugins that reach the internet when the app starts.
NETWORK_PLUGINS = ("hf_leaderboard", "lmsys_arena")


def make_settings(data_dir: Path, config: Mapping[str, Any] | None = None) -> Settings:
    """Settings from a dict shaped like the TOML file, with `data_dir` (and so the SQLite
    database) in a test's own folder, `TEST_ADMIN_KEY` as the admin key, and the ``local``
    backend off and the `NETWORK_PLUGINS` off unless `config` has a table for them, and background
    profiling off unless `config` sets ``profiling.enabled``. Environment variables are not read."""
    tree: dict[str, Any] = {"data_dir": str(data_dir), **(config or {})}
    plugins = {name: dict(table) for name, table in tree.get("plugins", {}).items()}
    plugins.setdefault("apikey_auth", {}).setdefault("admin_api_key", TEST_ADMIN_KEY)
    # The local backend would start llama.cpp processes: off unless the test turns it on.
    plugins.setdefault("local", {}).setdefault("enabled", False)
    # The builtin benchmark sources would download from the internet: off unless the test configures them.
    for name in NETWORK_PLUGINS:
        plugins.setdefault(name, {"enabled": False})
    tree["plugins"] = plugins
    # Background profiling would send every model the whole suite: off unless the test switches it on.
    tree["profiling"] = {"enabled": False, **tree.get("profiling", {})}
    try:
        return msgspec.convert(tree, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(*explain_validation_error(exc)) from None


def build_app(
    data_dir: Path,
    config: Mapping[str, Any] | None = None,
    extra_entry_points: Iterable[EntryPoint] = (),
) -> Litestar:
    """An app with every installed plugin plus `extra_entry_points` (such as `FAKE_PLUGIN`)."""
    eps = [*entry_points(group="routerd"), *extra_entry_points]
    return create_app(make_settings(data_dir, config), eps)
