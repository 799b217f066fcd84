"""The plugin as routerd sees it: discovered, configured, introspected, switched off."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import routerd
from click.testing import CliRunner
from routerd.cli import main as routerd_cli
from routerd.testing import build_app


def test_listed_by_the_admin_api(routerd_client, routerd_admin_headers, plugin_name: str) -> None:
    response = routerd_client.get("/admin/plugins", headers=routerd_admin_headers)
    assert response.status_code == 200
    plugin = next(p for p in response.json() if p["name"] == plugin_name)
    assert plugin["enabled"] is True
    assert plugin["builtin"] is False
    assert plugin["distribution"] == "routerd-example-plugin"
    assert plugin["module"] == "routerd_example"
    assert plugin["hooks"] == ["register_scorers", "register_skills"]
    assert plugin["registered"] == {"scorers": ["model_preference"], "skills": ["current_time"]}


def test_settings_reach_the_plugin(routerd_gateway, plugin_name: str) -> None:
    settings = routerd_gateway.plugins.records[plugin_name].settings
    assert settings.default_timezone == "Asia/Tokyo"
    assert settings.preferred_models == ["fake-large*", "*:preferred"]
    assert settings.preference_score == 0.9


def test_unknown_key_is_refused(tmp_path: Path, plugin_name: str) -> None:
    with pytest.raises(routerd.ConfigError, match=rf"plugins\.{plugin_name}\.bogus: unknown key"):
        build_app(tmp_path, {"plugins": {plugin_name: {"bogus": 1}}})


def test_unknown_default_timezone_is_refused(tmp_path: Path, plugin_name: str) -> None:
    config = {"plugins": {plugin_name: {"default_timezone": "Mars/Olympus_Mons"}}}
    with pytest.raises(routerd.ConfigError) as refused:
        build_app(tmp_path, config)
    assert refused.value.key == f"plugins.{plugin_name}.default_timezone"
    assert "unknown time zone 'Mars/Olympus_Mons'" in str(refused.value)


@pytest.mark.parametrize(
    ("key", "value"), [("preference_score", 1.5), ("preference_score", -0.1), ("preferred_models", "qwen*")]
)
def test_out_of_range_values_are_refused(tmp_path: Path, plugin_name: str, key: str, value: object) -> None:
    with pytest.raises(routerd.ConfigError, match=rf"^plugins\.{plugin_name}\.{key}: "):
        build_app(tmp_path, {"plugins": {plugin_name: {key: value}}})


def test_switched_off_registers_nothing(tmp_path: Path, plugin_name: str) -> None:
    app = build_app(tmp_path, {"plugins": {plugin_name: {"enabled": False}}})
    plugins = app.state.gateway.plugins
    record = next(p for p in plugins.describe() if p["name"] == plugin_name)
    assert record["enabled"] is False
    assert record["hooks"] == [] and record["registered"] == {}
    assert "current_time" not in plugins.registry.skills
    assert "model_preference" not in plugins.registry.scorers


@pytest.mark.parametrize(
    ("table", "enabled", "registered"),
    [
        (
            'default_timezone = "Europe/Paris"',
            True,
            {"scorers": ["model_preference"], "skills": ["current_time"]},
        ),
        ("enabled = false", False, {}),
    ],
)
def test_configured_in_the_toml_file(
    tmp_path: Path, plugin_name: str, table: str, enabled: bool, registered: dict
) -> None:
    config = tmp_path / "routerd.toml"
    config.write_text(f'data_dir = "{(tmp_path / "data").as_posix()}"\n\n[plugins.{plugin_name}]\n{table}\n')
    result = CliRunner().invoke(
        routerd_cli, ["--config", str(config), "plugins", "--json"], env={"XDG_DATA_HOME": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    plugin = next(p for p in json.loads(result.stdout) if p["name"] == plugin_name)
    assert plugin["enabled"] is enabled
    assert plugin["registered"] == registered
