"""Every hook, exercised through the running app: a plugin implements it, and what it registered takes effect
through HTTP (the openai SDK against a served gateway, or Litestar's TestClient) or the command line. A hook
without a test here fails `test_every_hook_has_a_test_through_the_running_app` (as datasette's
``test_plugin_hooks_have_tests``): a hook with no call site is a bug, not a feature."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
from litestar.testing import TestClient

from conftest import fixture_plugin
from routerd import hookspecs
from routerd.testing import FAKE_PLUGIN, TEST_ADMIN_KEY, build_app
from servers import ReplayState, replay_server, running_gateway

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
TESTS = Path(__file__).resolve().parent


def test_every_hook_has_a_test_through_the_running_app() -> None:
    hooks = {name for name in dir(hookspecs) if name.startswith("register_")}
    assert hooks == set(hookspecs.FAMILIES)
    missing = sorted(hook for hook in hooks if f"test_hook_{hook}" not in globals())
    assert not missing, f"hooks without a test through the running app: {missing}"


def client_of(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


def chat(client: openai.OpenAI, text: str, **kwargs):
    return client.chat.completions.with_raw_response.create(
        model="routerd", messages=[{"role": "user", "content": text}], **kwargs
    )


# -- backends and benchmark providers --------------------------------------------------------------------------


def test_hook_register_backends(tmp_path) -> None:
    config = {"plugins": {"fake": {"reply": "pong from the fake"}}}
    with running_gateway(build_app(tmp_path, config, [FAKE_PLUGIN])) as base:
        raw = chat(client_of(base), "ping", extra_query={"model": "fake-small"})
        answer = raw.parse()
        listed = [m.id for m in client_of(base).models.list().data]
    assert answer.choices[0].message.content.startswith("pong from the fake")
    assert raw.headers["x-routerd-model"] == "fake-small"
    assert {"fake-small", "fake-large"} <= set(listed)


def test_hook_register_benchmark_providers(tmp_path) -> None:
    config = {
        "benchmarks": {"extra_benchmarks": ["house_sql"]},
        "plugins": {"house_evals": {"scores": {"fake-large": {"mmlu_pro": 71.0, "house_sql": 0.7}}}},
    }
    app = build_app(tmp_path, config, [FAKE_PLUGIN, fixture_plugin("house_evals")])
    with TestClient(app) as client:
        deadline = time.monotonic() + 10
        while True:
            statuses = {s["source"]: s for s in client.get("/admin/benchmarks/status", headers=ADMIN).json()["sources"]}
            if statuses.get("house_evals", {}).get("ok"):
                break
            assert time.monotonic() < deadline, statuses
            time.sleep(0.05)
        figures = client.get("/admin/benchmarks", params={"model": "fake-large"}, headers=ADMIN).json()
    assert statuses["house_evals"]["stored"] == 2
    merged = figures["models"][0]
    assert merged["benchmarks"]["mmlu_pro"]["value"] == 71.0
    assert merged["benchmarks"]["house_sql"]["source"] == "house_evals"


# -- scorers, judges, learners ------------------------------------------------------------------------------


def test_hook_register_scorers(tmp_path) -> None:
    """A predictor decides the route, and its reason is in the explanation; only predictors are asked."""
    config = {"plugins": {"size": {"weight": 10.0, "label": "big"}, "diversity": {"enabled": False}}}
    app = build_app(tmp_path, config, [FAKE_PLUGIN, fixture_plugin("size", "scorer")])
    with TestClient(app) as client:
        response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
        decision = response.headers["x-routerd-decision-id"]
        explained = client.get(f"/admin/decisions/{decision}", headers=ADMIN).json()
    assert response.headers["x-routerd-model"] == "fake-large"
    contributions = explained["candidates"][0]["contributions"]
    assert contributions["size_big"]["reason"] == "bigger is better"
    assert "judge" not in json.dumps(explained["candidates"])


def test_hook_register_judges(tmp_path) -> None:
    """Profiling grades answers with the registered judges: the verdict and the judge's name are in the profile."""
    config = {
        "profiling": {"enabled": True, "suite": str(TESTS / "data" / "short_suite.toml")},
        "plugins": {"fake": {"reply": "Paris is the capital of France."}},
    }
    app = build_app(tmp_path, config, [FAKE_PLUGIN, fixture_plugin("keyword_judge")])
    with TestClient(app) as client:
        deadline = time.monotonic() + 30
        while True:
            profiles = client.get("/admin/profiles", headers=ADMIN).json()
            if {m["model"] for m in profiles["models"]} >= {"fake-small", "fake-large"}:
                break
            assert time.monotonic() < deadline, profiles
            time.sleep(0.1)
        detail = client.get("/admin/profiles/fake-small", headers=ADMIN).json()
    prompts = [p for c in detail["latest"]["categories"].values() for p in c["prompts"]]
    judged = [p for p in prompts if p["method"] == "judge"]
    assert judged, prompts
    assert {p["judge"] for p in judged} == {"keywords"}
    assert all(p["judged"] and 0 <= p["score"] <= 1 for p in judged)


def test_hook_register_learners(tmp_path) -> None:
    """A learner sees every routed request's outcome and every rating, off the request path."""
    app = build_app(tmp_path, {}, [FAKE_PLUGIN, fixture_plugin("recorder")])
    with TestClient(app) as client:
        response = client.post(
            "/v1/chat/completions", json={"messages": [{"role": "user", "content": "Write a haiku about rain"}]}
        )
        decision = response.headers["x-routerd-decision-id"]
        rated = client.post("/v1/feedback", json={"decision_id": decision, "rating": 1})
        assert rated.status_code == 201, rated.text
        deadline = time.monotonic() + 5
        while len(seen := client.get("/fixture/outcomes").json()) < 2:
            assert time.monotonic() < deadline, seen
            time.sleep(0.02)
    model = response.headers["x-routerd-model"]
    assert seen[0] == {"model": model, "ok": True, "rating": None, "category": "creativity", "who": "anonymous"}
    assert seen[1]["model"] == model and seen[1]["rating"] == 1.0


# -- skills and caches --------------------------------------------------------------------------------------


def test_hook_register_skills(tmp_path) -> None:
    """A model that calls a skill gets its result and answers with it; the client only sees the answer, and the
    decision log records the call."""
    state = ReplayState(models=["tool-model"], behaviour={"tool-model": "tools"})
    state.tool_calls = [("word_count", json.dumps({"text": "one two three"}))]
    with replay_server(state) as url:
        config = {"plugins": {"openai": {"base_url": url}}, "models": {"tool-model": {"tools": True}}}
        app = build_app(tmp_path, config, [fixture_plugin("skills")])
        with running_gateway(app) as base:
            raw = chat(client_of(base), "How many words?", extra_headers={"X-Routerd-Skills": "word_count"})
            decision = httpx.get(f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN)
    answer = raw.parse()
    assert answer.choices[0].message.content.startswith('The tools said: {"words": 3}')
    assert answer.choices[0].message.tool_calls is None
    offered = state.requests[0]["tools"]
    assert [tool["function"]["name"] for tool in offered] == ["word_count"]
    calls = decision.json()["skill_calls"]
    assert [(c["skill"], c["iteration"], c["error"]) for c in calls] == [("word_count", 1, None)]
    assert answer.usage.total_tokens == 30  # both calls of the loop count


def test_hook_register_caches(tmp_path) -> None:
    """The second identical request is answered from the cache without calling a model; a different one is not."""
    app = build_app(tmp_path, {}, [FAKE_PLUGIN, fixture_plugin("memory_cache")])
    backend = app.state.gateway.plugins.registry.backends["fake"]
    with running_gateway(app) as base:
        client = client_of(base)
        first = chat(client, "What is the capital of France?", temperature=0)
        deadline = time.monotonic() + 5
        while not app.state.gateway.plugins.registry.caches["memory"].stored:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second = chat(client, "What is the capital of France?", temperature=0)
        other = chat(client, "What is the capital of Spain?", temperature=0)
        decision = httpx.get(f"{base}/admin/decisions/{second.headers['x-routerd-decision-id']}", headers=ADMIN)
    assert first.headers["x-routerd-cache"] == "miss"
    assert second.headers["x-routerd-cache"] == "hit"
    assert other.headers["x-routerd-cache"] == "miss"
    assert len(backend.calls) == 2
    assert second.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert second.parse().id != first.parse().id
    assert decision.json()["cache"]["cache"] == "memory"


# -- authenticators, jobs, routes, commands -------------------------------------------------------------------


def test_hook_register_authenticators(tmp_path) -> None:
    config = {"plugins": {"team_tokens": {"members": [{"subject": "ann", "token": "t-ann", "admin": True}]}}}
    app = build_app(tmp_path, config, [FAKE_PLUGIN, fixture_plugin("team_tokens")])
    with TestClient(app) as client:
        refused = client.get("/admin/plugins", headers={"X-Team-Token": "wrong"})
        allowed = client.get("/admin/plugins", headers={"X-Team-Token": "t-ann"})
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    assert allowed.status_code == 200


def test_hook_register_jobs(tmp_path) -> None:
    app = build_app(tmp_path, {"plugins": {"recorder": {"tick": 0.01}}}, [FAKE_PLUGIN, fixture_plugin("recorder")])
    with TestClient(app) as client:
        time.sleep(0.1)
        ticks = client.get("/admin/fixture/ticks", headers=ADMIN).json()
    assert ticks["started"] and ticks["ticks"] >= 2


def test_hook_register_routes(tmp_path) -> None:
    app = build_app(tmp_path, {}, [FAKE_PLUGIN, fixture_plugin("recorder")])
    with TestClient(app) as client:
        open_route = client.get("/fixture/outcomes")
        anonymous_admin = client.get("/admin/fixture/ticks")
        admin = client.get("/admin/fixture/ticks", headers=ADMIN)
    assert open_route.status_code == 200 and open_route.json() == []
    assert anonymous_admin.status_code == 401  # under /admin: the admin guard, as for the kernel's own
    assert admin.status_code == 200


def test_hook_register_commands(tmp_path) -> None:
    """`routerd fixture-hello` comes from an installed plugin, starts the gateway without jobs, and is listed."""
    site = tmp_path / "site"
    (site / "routerd_fixture_recorder-0.1.0.dist-info").mkdir(parents=True)
    info = site / "routerd_fixture_recorder-0.1.0.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: routerd-fixture-recorder\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        "[routerd]\nrecorder = fixture_plugins.recorder\nfake = routerd.testing.fake_backend\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), str(TESTS)]),
        "ROUTERD__DATA_DIR": str(tmp_path / "data"),
        "ROUTERD__PLUGINS__LOCAL__ENABLED": "false",
        "ROUTERD__PLUGINS__HF_LEADERBOARD__ENABLED": "false",
        "ROUTERD__PLUGINS__LMSYS_ARENA__ENABLED": "false",
        "ROUTERD__PROFILING__ENABLED": "false",
    }
    routerd = [str(Path(sys.executable).parent / "routerd")]
    listed = subprocess.run([*routerd, "--help"], env=env, capture_output=True, text=True, timeout=120)
    ran = subprocess.run(
        [*routerd, "fixture-hello", "--greeting", "hi"], env=env, capture_output=True, text=True, timeout=120
    )
    off = subprocess.run(
        [*routerd, "fixture-hello"],
        env={**env, "ROUTERD__PLUGINS__RECORDER__ENABLED": "false"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "fixture-hello" in listed.stdout, listed.stdout + listed.stderr
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "hi: fake-large, fake-small (ticks 0)"
    assert off.returncode == 2 and "No such command 'fixture-hello'" in off.stderr
