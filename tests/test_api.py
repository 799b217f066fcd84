"""Health, readiness, admin authorisation and the error shape."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from litestar.testing import TestClient
from sqlalchemy.engine import make_url

from conftest import _admin, fixture_plugin
from routerd import AuthRequest, ModelInfo
from routerd.testing import TEST_ADMIN_KEY, build_app
from routerd.testing.fake_backend import FAKE_PLUGIN
from routerd_apikey_auth import AdminKeyAuthenticator, Settings

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}


def assert_openai_error(response, status: int, error_type: str) -> dict:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["type"] == error_type
    return body["error"]


def test_healthz_and_readyz(tmp_path):
    with TestClient(build_app(tmp_path, {}, [FAKE_PLUGIN])) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"database": True, "plugins": True, "models": True}}


EMBEDDER_ONLY = {"plugins": {"fake": {"models": [{"name": "nomic-embed-text", "embeddings": True}]}}}


@pytest.mark.parametrize("config", [{}, EMBEDDER_ONLY], ids=["no models", "an embedding model only"])
def test_readyz_is_503_while_no_chat_model_is_served_unless_configured(tmp_path, config):
    extra = [FAKE_PLUGIN] if config else []
    with TestClient(build_app(tmp_path / "strict", config, extra)) as client:
        error = assert_openai_error(client.get("/readyz"), 503, "server_error")
        assert client.get("/healthz").status_code == 200
    assert error["code"] == "not_ready"
    assert error["message"].startswith("not ready: models (no backend serves a chat model yet;")
    assert "server.require_chat_model = false" in error["message"]
    relaxed = {**config, "server": {"require_chat_model": False}}
    with TestClient(build_app(tmp_path / "relaxed", relaxed, extra)) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": True, "plugins": True}}


def test_readyz_turns_ready_when_discovery_finds_a_chat_model(tmp_path):
    config = {"backends": {"discovery_interval": 0.1}, "plugins": {"fake": {"models": []}}}
    app = build_app(tmp_path, config, [FAKE_PLUGIN])
    with TestClient(app) as client:
        assert client.get("/readyz").status_code == 503
        backend = app.state.gateway.plugins.registry.backends["fake"]
        backend.models = [ModelInfo(name="late-7b", backend="fake", context_window=8192)]  # the backend got a model
        deadline = time.monotonic() + 10
        while (ready := client.get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.05)
    assert ready.json()["checks"]["models"] is True


def test_readyz_is_503_when_the_database_goes_away(tmp_path, postgres_url):
    with TestClient(build_app(tmp_path, {"database": {"url": postgres_url}}, [FAKE_PLUGIN])) as client:
        assert client.get("/readyz").status_code == 200
        name = make_url(postgres_url).database
        asyncio.run(_admin(f'DROP DATABASE "{name}" WITH (FORCE)'))
        error = assert_openai_error(client.get("/readyz"), 503, "server_error")
        assert error["message"] == "not ready: database"
        assert client.get("/healthz").status_code == 200


def test_admin_needs_the_admin_key(tmp_path):
    with TestClient(build_app(tmp_path, {})) as client:
        error = assert_openai_error(client.get("/admin/plugins"), 401, "authentication_error")
        assert "admin API key" in error["message"]
        wrong = client.get("/admin/plugins", headers={"Authorization": "Bearer nope"})
        assert_openai_error(wrong, 401, "authentication_error")
        assert client.get("/admin/plugins", headers=ADMIN).status_code == 200
        assert client.get("/admin/plugins", headers={"X-API-Key": TEST_ADMIN_KEY}).status_code == 200


def test_admin_is_closed_when_no_authenticator_is_enabled(tmp_path):
    app = build_app(tmp_path, {"plugins": {"apikey_auth": {"enabled": False}}})
    with TestClient(app) as client:
        assert_openai_error(client.get("/admin/plugins", headers=ADMIN), 401, "authentication_error")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("settings", "host", "token", "admin"),
    [
        (Settings(), "127.0.0.1", None, True),
        (Settings(), "::1", None, True),
        (Settings(), "10.1.2.3", None, False),
        (Settings(loopback_admin=False), "127.0.0.1", None, False),
        (Settings(admin_api_key="k"), "127.0.0.1", None, False),
        (Settings(admin_api_key="k"), "10.1.2.3", "k", True),
        (Settings(admin_api_key="k"), "10.1.2.3", "k2", False),
    ],
)
async def test_admin_key_authenticator(settings, host, token, admin):
    authenticator = AdminKeyAuthenticator(settings, logging.getLogger("test"))
    headers = {"authorization": f"Bearer {token}"} if token else {}
    principal = await authenticator.authenticate(AuthRequest("GET", "/admin/plugins", headers, host))
    assert (principal is not None and principal.is_admin) is admin


def test_unknown_route_and_wrong_method_use_the_openai_error_shape(tmp_path):
    with TestClient(build_app(tmp_path, {})) as client:
        assert_openai_error(client.get("/v2/nothing"), 404, "not_found_error")
        assert_openai_error(client.post("/healthz"), 405, "invalid_request_error")


def test_unexpected_errors_are_500_without_details(tmp_path, caplog):
    app = build_app(tmp_path, {}, [fixture_plugin("faulty", "faulty_auth")])
    with TestClient(app) as client:
        response = client.get("/admin/plugins")  # the admin key would answer before the faulty one
    error = assert_openai_error(response, 500, "server_error")
    assert "hunter2" not in response.text
    assert "Traceback" not in response.text
    assert error["message"] == "internal error; the gateway's log has the details"
    assert "unexpected error on GET /admin/plugins" in caplog.text
