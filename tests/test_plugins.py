"""Plugin loading: discovery through entry points, enable/disable, settings, missing extras,
misspelled hooks, wrong objects, introspection."""

from __future__ import annotations

import logging
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from litestar.testing import TestClient

from conftest import fixture_plugin
from routerd.errors import ConfigError, MissingExtra, PluginError
from routerd.gateway import Gateway
from routerd.testing import FAKE_PLUGIN, TEST_ADMIN_KEY, build_app, make_settings


def gateway(tmp_path, config, *plugins):
    return Gateway(make_settings(tmp_path, config), [*entry_points(group="routerd"), *plugins])


def test_builtin_plugins_are_found_through_the_entry_point_group(tmp_path):
    host = gateway(tmp_path, {}).plugins
    assert host.records["apikey_auth"].enabled
    assert host.records["apikey_auth"].distribution == "routerd"
    assert "admin_key" in host.registry.authenticators


def test_plugin_settings_are_validated_into_its_struct(tmp_path):
    host = gateway(tmp_path, {"plugins": {"scorer": {"weight": "2.5", "label": "x"}}}, fixture_plugin("scorer")).plugins
    scorer = host.registry.scorers["size_x"]
    assert scorer.weight == 2.5
    assert host.records["scorer"].registered == {"scorers": ["size_x"]}
    assert host.records["scorer"].hooks == ["register_scorers"]


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ({"wieght": 1}, "plugins.scorer.wieght", "unknown key"),
        ({"weight": 11}, "plugins.scorer.weight", "<= 10"),
        ({"weight": "heavy"}, "plugins.scorer.weight", "expected `float`"),
        ({"enabled": "perhaps"}, "plugins.scorer.enabled", "true or false"),
    ],
)
def test_bad_plugin_settings_are_refused_by_key(tmp_path, table, key, reason):
    with pytest.raises(ConfigError) as caught:
        gateway(tmp_path, {"plugins": {"scorer": table}}, fixture_plugin("scorer"))
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_plugin_without_settings_refuses_any_key(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins.backends.colour: unknown key"):
        gateway(tmp_path, {"plugins": {"backends": {"colour": "red"}}}, fixture_plugin("backends"))


def test_disabled_plugin_is_never_imported(tmp_path):
    sys.modules.pop("fixture_plugins.explodes_on_import", None)
    host = gateway(
        tmp_path, {"plugins": {"boom": {"enabled": False}}}, fixture_plugin("boom", "explodes_on_import")
    ).plugins
    assert "fixture_plugins.explodes_on_import" not in sys.modules
    assert host.records["boom"].enabled is False
    assert host.records["boom"].describe()["hooks"] == []


def test_enabled_plugin_that_fails_to_import_stops_start_up(tmp_path):
    with pytest.raises(PluginError, match=r"plugin 'boom': importing fixture_plugins.explodes_on_import failed"):
        gateway(tmp_path, {}, fixture_plugin("boom", "explodes_on_import"))


def test_disabling_a_builtin_removes_what_it_registered(tmp_path):
    host = gateway(tmp_path, {"plugins": {"apikey_auth": {"enabled": False}}}).plugins
    assert host.registry.authenticators == {}
    assert host.records["apikey_auth"].enabled is False


def test_missing_optional_dependency_names_the_extra(tmp_path):
    with pytest.raises(MissingExtra) as caught:
        gateway(tmp_path, {}, fixture_plugin("fancy", "needs_extra"))
    message = str(caught.value)
    assert "plugin 'fancy'" in message
    assert "pip install 'routerd-fixtures[fancy]'" in message
    assert "routerd_test_module_that_does_not_exist" in message


def test_missing_module_without_declared_extra_is_named(tmp_path):
    with pytest.raises(PluginError, match=r"needs 'routerd_test_module_that_does_not_exist'"):
        gateway(tmp_path, {}, fixture_plugin("raw", "imports_missing"))


def test_misspelled_hook_is_caught_at_start_up(tmp_path):
    with pytest.raises(PluginError, match=r"register_backend") as caught:
        gateway(tmp_path, {}, fixture_plugin("typo", "misspelled"))
    assert caught.value.plugin == "typo"


def test_object_of_the_wrong_kind_is_refused(tmp_path):
    with pytest.raises(PluginError, match=r"not a Skill \(missing: \['description', 'parameters', 'run'\]\)"):
        gateway(tmp_path, {}, fixture_plugin("bad", "bad_object"))


def test_unknown_plugin_table_in_the_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"plugins.olama: no installed plugin has this name"):
        gateway(tmp_path, {"plugins": {"olama": {"url": "http://x"}}})


def test_plugin_variable_for_an_absent_plugin_is_ignored_with_a_warning(tmp_path, caplog):
    settings = make_settings(tmp_path, {"plugins": {"retired": {"url": "http://x"}}})
    settings.sources["plugins.retired.url"] = "environment variable ROUTER_RETIRED_URL"
    Gateway(settings)
    assert "ROUTER_RETIRED_URL set but no plugin named 'retired' is installed" in caplog.text


def test_provider_setting_keeps_only_the_named_backends(tmp_path):
    config = {"backends": {"provider": ["one"]}}
    host = gateway(tmp_path, config, fixture_plugin("one", "backends"), fixture_plugin("two", "backends_two")).plugins
    assert list(host.registry.backends) == ["one-backend"]
    with pytest.raises(ConfigError, match=r"backends.provider: no enabled plugin named 'three'"):
        gateway(tmp_path, {"backends": {"provider": ["three"]}}, fixture_plugin("one", "backends"))


def test_registered_objects_start_with_the_app_and_close_after_it(tmp_path):
    # no backend serves a chat model here: readiness is then about the database and the plugins only
    app = build_app(tmp_path, {"server": {"require_chat_model": False}}, [fixture_plugin("scorer")])
    scorer = app.state.gateway.plugins.registry.scorers["size_size"]
    assert not scorer.started
    with TestClient(app) as client:
        assert scorer.started
        assert client.get("/readyz").status_code == 200
    assert scorer.closed


def test_admin_plugins_lists_the_same_as_the_host(tmp_path):
    app = build_app(tmp_path, {"plugins": {"scorer": {"enabled": False}}}, [fixture_plugin("scorer")])
    with TestClient(app) as client:
        response = client.get("/admin/plugins", headers={"Authorization": f"Bearer {TEST_ADMIN_KEY}"})
    assert response.status_code == 200
    by_name = {row["name"]: row for row in response.json()}
    assert by_name["scorer"]["enabled"] is False
    assert by_name["apikey_auth"]["registered"] == {"authenticators": ["admin_key"]}
    assert by_name["apikey_auth"]["hooks"] == ["register_authenticators"]
    assert response.json() == app.state.gateway.plugins.describe()


def test_one_module_under_two_names_is_refused(tmp_path):
    with pytest.raises(PluginError, match=r"already loaded as plugin 'one'"):
        gateway(tmp_path, {}, fixture_plugin("one", "backends"), fixture_plugin("two", "backends"))


@pytest.fixture
def fancy_distribution(tmp_path, monkeypatch):
    """An installed distribution whose plugin entry point needs an extra that is not installed."""
    info = tmp_path / "site" / "routerd_fancy-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: routerd-fancy\nVersion: 1.0\nProvides-Extra: fancy\n"
        'Requires-Dist: routerd-test-package-that-does-not-exist>=1; extra == "fancy"\n'
    )
    (info / "entry_points.txt").write_text("[routerd]\nfancy = fixture_plugins.explodes_on_import [fancy]\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))


def test_plugin_with_a_missing_extra_stays_off_by_default_and_unimported(tmp_path, fancy_distribution):
    sys.modules.pop("fixture_plugins.explodes_on_import", None)
    record = Gateway(make_settings(tmp_path, {})).plugins.records["fancy"]
    assert record.enabled is False
    assert record.note == ("off: needs routerd-test-package-that-does-not-exist; pip install 'routerd-fancy[fancy]'")
    assert "fixture_plugins.explodes_on_import" not in sys.modules


def test_plugin_with_a_missing_extra_switched_on_stops_start_up_naming_the_extra(tmp_path, fancy_distribution):
    with pytest.raises(MissingExtra, match=r"plugin 'fancy': .* pip install 'routerd-fancy\[fancy\]'"):
        Gateway(make_settings(tmp_path, {"plugins": {"fancy": {"enabled": True}}}))


def test_a_scorer_written_for_the_old_protocol_keeps_working_with_a_warning(tmp_path, caplog):
    """Registered with register_scorers only, a scorer that also judges and learns is adopted as a judge and a
    learner (the log says which hook to use instead), and each of its three jobs takes effect through HTTP."""
    suite = str(Path(__file__).parent / "data" / "short_suite.toml")
    config = {"profiling": {"enabled": True, "suite": suite}, "plugins": {"diversity": {"enabled": False}}}
    with caplog.at_level(logging.WARNING, logger="routerd.plugins"):
        app = build_app(tmp_path, config, [FAKE_PLUGIN, fixture_plugin("old", "old_scorer")])
    registry = app.state.gateway.plugins.registry
    scorer = registry.scorers["old_style"]
    assert registry.judges["old_style"] is scorer and registry.learners["old_style"] is scorer
    warnings = [r.getMessage() for r in caplog.records if "old_style" in r.getMessage()]
    assert any("register_judges" in w for w in warnings) and any("register_learners" in w for w in warnings)
    admin = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
    with TestClient(app) as client:
        routed = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi there"}]})
        deadline = time.monotonic() + 30
        while (profile := client.get("/admin/profiles/fake-large", headers=admin)).status_code != 200:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        while not scorer.learnt:
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert routed.headers["x-routerd-model"] == "fake-small"  # it predicts
    prompts = [p for c in profile.json()["latest"]["categories"].values() for p in c["prompts"]]
    assert {p["judge"] for p in prompts if p["method"] == "judge"} == {"old_style"}  # it judges
    assert scorer.learnt[0].model == "fake-small"  # it learns
