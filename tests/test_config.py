"""Settings: TOML file, ROUTERD__ and ROUTER_* environment overrides, validation, masking."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from routerd.config import LEGACY_ENVIRONMENT, UNSUPPORTED_ENVIRONMENT, effective, load_settings
from routerd.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routerd.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_environment():
    settings = load_settings(None, environ={})
    assert settings.server.port == 8080
    assert settings.routing.external_model_name == "routerd"
    assert settings.database_url.startswith("sqlite+aiosqlite:///")
    assert settings.database_url.endswith("routerd.db")


def test_file_is_read_and_environment_overrides_it(tmp_path):
    path = write(tmp_path, '[server]\nport = 9000\nhost = "0.0.0.0"\n[routing]\nquality_preference = 0.2\n')
    settings = load_settings(path, environ={"ROUTER_QUALITY_PREFERENCE": "0.9", "ROUTERD__SERVER__PORT": "9100"})
    assert settings.server.host == "0.0.0.0"
    assert settings.server.port == 9100
    assert settings.routing.quality_preference == 0.9


def test_config_file_from_environment_variable(tmp_path):
    path = write(tmp_path, "[server]\nport = 9001\n")
    assert load_settings(None, environ={"ROUTERD_CONFIG": str(path)}).server.port == 9001


@pytest.mark.parametrize(
    ("variable", "value", "read"),
    [
        ("ROUTER_DATABASE_URL", "postgresql+asyncpg://u:p@h/db", lambda s: s.database.url),
        ("ROUTER_EXTERNAL_MODEL_NAME", "team-gpt", lambda s: s.routing.external_model_name),
        ("ROUTER_PINNED_MODEL", "qwen2.5:7b", lambda s: s.routing.pinned_model),
        ("ROUTER_GENERATION_TIMEOUT", "42.5", lambda s: s.dispatch.generation_timeout),
        ("ROUTER_EMBED_MODEL", "nomic-embed-text", lambda s: s.routing.embed_model),
        ("ROUTER_BENCHMARK_SOURCES", "hf_leaderboard, lmsys_arena", lambda s: s.benchmarks.sources),
        ("ROUTER_PROVIDER", "llama_cpp", lambda s: s.backends.provider),
    ],
)
def test_legacy_variables_set_their_keys(variable, value, read):
    settings = load_settings(None, environ={variable: value})
    expected = {
        "ROUTER_GENERATION_TIMEOUT": 42.5,
        "ROUTER_BENCHMARK_SOURCES": ["hf_leaderboard", "lmsys_arena"],
        "ROUTER_PROVIDER": ["llamacpp"],
    }.get(variable, value)
    assert read(settings) == expected


def test_plugin_variables_land_in_plugin_tables():
    environ = {
        "ROUTER_OLLAMA_URL": "http://gpu:11434",
        "ROUTER_OPENAI_API_KEY": "sk-secret",
        "ROUTER_JUDGE_ENABLED": "false",
        "ROUTER_ADMIN_API_KEY": "adm",
    }
    settings = load_settings(None, environ=environ)
    assert settings.plugins["ollama"] == {"url": "http://gpu:11434"}
    assert settings.plugins["openai"] == {"api_key": "sk-secret"}
    assert settings.plugins["judge"] == {"enabled": "false"}
    assert settings.plugins["apikey_auth"] == {"admin_api_key": "adm"}
    assert settings.sources["plugins.ollama.url"] == "environment variable ROUTER_OLLAMA_URL"


def test_every_required_legacy_variable_is_mapped_or_said_to_be_ignored():
    required = """ROUTER_PROVIDER ROUTER_OLLAMA_URL ROUTER_LLAMA_CPP_URL ROUTER_OPENAI_BASE_URL
    ROUTER_OPENAI_API_KEY ROUTER_MODEL_PREFIX ROUTER_PINNED_MODEL ROUTER_GENERATION_TIMEOUT
    ROUTER_EXTERNAL_MODEL_NAME ROUTER_ADMIN_API_KEY ROUTER_QUALITY_PREFERENCE ROUTER_CACHE_RESPONSE_MAX_SIZE
    ROUTER_JUDGE_ENABLED ROUTER_JUDGE_MODEL ROUTER_JUDGE_BASE_URL ROUTER_JUDGE_API_KEY ROUTER_EMBED_MODEL
    ROUTER_BENCHMARK_SOURCES ROUTER_RATE_LIMIT_ENABLED ROUTER_DATABASE_URL""".split()
    assert set(required) <= set(LEGACY_ENVIRONMENT) | set(UNSUPPORTED_ENVIRONMENT)


@pytest.mark.parametrize("variable", sorted(UNSUPPORTED_ENVIRONMENT))
def test_a_legacy_variable_routerd_has_no_setting_for_is_ignored_with_a_warning(variable, caplog):
    with caplog.at_level(logging.WARNING, logger="routerd.config"):
        settings = load_settings(None, environ={variable: "1"})
    assert settings == load_settings(None, environ={})
    assert any(variable in record.getMessage() and "ignored" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    ("toml", "environ", "key", "reason"),
    [
        ("[server]\nprot = 1\n", {}, "server.prot", "unknown key"),
        ("[servr]\nport = 1\n", {}, "servr", "unknown key"),
        ('[server]\nport = "x"\n', {}, "server.port", "expected `int`"),
        ("[server]\nport = 70000\n", {}, "server.port", "<= 65535"),
        ("", {"ROUTER_QUALITY_PREFERENCE": "1.5"}, "routing.quality_preference", "<= 1"),
        ("", {"ROUTERD__CACHE__SAMPLED": "maybe"}, "cache.sampled", "expected `bool`"),
        ('[skills]\noffer = "sometimes"\n', {}, "skills.offer", "expected one of"),
        ("[plugins]\nollama = 3\n", {}, "plugins", "must be a table"),
    ],
)
def test_invalid_settings_name_key_and_reason(tmp_path, toml, environ, key, reason):
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, toml), environ=environ)
    assert caught.value.key.startswith(key)
    assert reason in caught.value.reason


def test_error_says_which_variable_set_the_bad_value():
    with pytest.raises(ConfigError, match=r"ROUTER_QUALITY_PREFERENCE"):
        load_settings(None, environ={"ROUTER_QUALITY_PREFERENCE": "high"})


def test_broken_toml_and_missing_file_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(write(tmp_path, "[server\n"), environ={})
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_effective_configuration_masks_secrets():
    environ = {
        "ROUTER_DATABASE_URL": "postgresql+asyncpg://routerd:hunter2@db/routerd",
        "ROUTER_OPENAI_API_KEY": "sk-verysecret",
        "ROUTER_ADMIN_API_KEY": "admin-secret",
    }
    shown = effective(load_settings(None, environ=environ))
    text = repr(shown)
    for secret in ("hunter2", "sk-verysecret", "admin-secret"):
        assert secret not in text
    assert shown["database"]["url"] == "postgresql+asyncpg://routerd:***@db/routerd"
    assert shown["plugins"]["openai"]["api_key"] == "***"
