"""The plugin template (plugin-template/), installed like any third-party plugin, is found through
its entry point, shows in the introspection, and is neither imported nor registered when
switched off.

The template must be installed in the environment the tests run in: ``make test`` (and CI) installs
it into .venv-test, never into .venv, which ``make run`` uses. Without it these tests fail, never
skip, so a broken template cannot pass unnoticed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from litestar.testing import TestClient

import routerd
from routerd.plugins import discover
from routerd.testing import TEST_ADMIN_KEY, build_app

CHECKOUT = Path(__file__).resolve().parents[1]
TEMPLATE = CHECKOUT / "plugin-template"
NAME, MODULE, DISTRIBUTION = "example", "routerd_example", "routerd-example-plugin"
INSTALL = f"run `make test-venv` in {CHECKOUT} and these tests with .venv-test/bin/python (make test does both)"
REGISTERED = {"scorers": ["model_preference"], "skills": ["current_time"]}


def installed_template() -> EntryPoint:
    """The template's entry point, from the installed distributions' metadata; each test starts
    here, so that without the template every test fails (not errors, not skips) saying why."""
    found = {ep.name: ep for ep in discover()}
    if NAME not in found:
        pytest.fail(f"the plugin template is not installed: no routerd plugin {NAME!r}; {INSTALL}", pytrace=False)
    ep = found[NAME]
    spec = importlib.util.find_spec(MODULE)  # finds a top-level module without importing it
    origin = Path(spec.origin).resolve() if spec and spec.origin else None
    if origin is None or not origin.is_relative_to(TEMPLATE):
        pytest.fail(
            f"{MODULE} is installed from {origin}, not from this checkout's template; {INSTALL}",
            pytrace=False,
        )
    return ep


def _forget_template(monkeypatch: pytest.MonkeyPatch) -> None:
    """Take the template's modules out of `sys.modules` (put back after the test)."""
    for module in list(sys.modules):
        if module == MODULE or module.startswith(MODULE + "."):
            monkeypatch.delitem(sys.modules, module)


def _imported() -> list[str]:
    return [m for m in sys.modules if m == MODULE or m.startswith(MODULE + ".")]


def test_discovered_through_its_entry_point() -> None:
    template = installed_template()
    assert NAME in [ep.name for ep in discover()]
    assert template.group == "routerd"
    assert template.value == MODULE
    assert template.dist is not None and template.dist.metadata["Name"] == DISTRIBUTION


def test_enabled_by_default_with_its_objects_registered(tmp_path: Path) -> None:
    installed_template()
    plugins = build_app(tmp_path, {}).state.gateway.plugins

    record = plugins.records[NAME]
    assert record.enabled
    assert record.hooks == ["register_scorers", "register_skills"]
    assert record.registered == REGISTERED
    described = next(p for p in plugins.describe() if p["name"] == NAME)
    assert described["builtin"] is False
    assert described["distribution"] == DISTRIBUTION
    assert isinstance(plugins.registry.skills["current_time"], routerd.Skill)
    assert isinstance(plugins.registry.scorers["model_preference"], routerd.Scorer)
    assert plugins.registry.owner[("register_skills", "current_time")] == NAME
    assert plugins.registry.owner[("register_scorers", "model_preference")] == NAME
    assert MODULE in sys.modules


def test_switched_off_it_is_neither_imported_nor_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    installed_template()
    _forget_template(monkeypatch)

    app = build_app(tmp_path, {"plugins": {NAME: {"enabled": False}}})

    assert _imported() == [], "a plugin switched off must never be imported"
    plugins = app.state.gateway.plugins
    assert not plugins.records[NAME].enabled
    assert "current_time" not in plugins.registry.skills
    assert "model_preference" not in plugins.registry.scorers
    with TestClient(app) as client:
        response = client.get("/admin/plugins", headers={"Authorization": f"Bearer {TEST_ADMIN_KEY}"})
    assert response.status_code == 200
    described = next(p for p in response.json() if p["name"] == NAME)
    assert described["enabled"] is False
    assert described["hooks"] == [] and described["registered"] == {}
    assert _imported() == []


def _routerd_cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed `routerd` command in a clean environment: no configuration from the
    caller's environment, and XDG_DATA_HOME in the test's folder so nothing is written to $HOME."""
    command = shutil.which("routerd", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.fail(f"no `routerd` command next to {sys.executable}; reinstall routerd (pip install -e .)")
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ROUTER_", "ROUTERD_", "ROUTERD__")) and key != "XDG_DATA_HOME"
    }
    environ["XDG_DATA_HOME"] = str(home)
    return subprocess.run([command, *args], env=environ, capture_output=True, text=True, timeout=120, check=False)


def test_listed_by_the_cli(tmp_path: Path) -> None:
    installed_template()
    result = _routerd_cli("plugins", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    described = {p["name"]: p for p in json.loads(result.stdout)}
    assert NAME in described
    assert described[NAME]["enabled"] is True
    assert described[NAME]["builtin"] is False
    assert described[NAME]["registered"] == REGISTERED


def test_switched_off_in_the_toml_file_the_cli_says_so(tmp_path: Path) -> None:
    installed_template()
    config = tmp_path / "routerd.toml"
    config.write_text(f"[plugins.{NAME}]\nenabled = false\n")
    result = _routerd_cli("--config", str(config), "plugins", "--json", home=tmp_path)
    assert result.returncode == 0, result.stderr
    described = {p["name"]: p for p in json.loads(result.stdout)}
    assert described[NAME]["enabled"] is False
    assert described[NAME]["registered"] == {}
