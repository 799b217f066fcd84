"""The ``profiling`` plugin in a running gateway, against OpenAI-shaped replay servers (fast and scriptable):
background profiling at start and for new models, per-category results at /admin/profiles, history, reprofiling,
reuse on restart, a new profile when the suite changes, failures mid-suite, profiling switched off (and the whole
plugin), and one replica at a time on PostgreSQL. tests/test_profiling_llamacpp.py does the same with the real
bundled model."""

from __future__ import annotations

import logging
import shutil
import time

import httpx
import openai
import pytest

from profiling_helpers import (
    ADMIN,
    CATEGORIES,
    SHORT_SUITE,
    history,
    profiles,
    profiling_job,
    runs_of,
    wait_for,
    wait_profiled,
)
from routerd import ConfigError
from routerd.testing import build_app
from servers import ReplayState, replay_server, running_gateway

REPLY = "The answer is 5. Paris, of course."


def config(url: str, **profiling) -> dict:
    return {
        "plugins": {"openai": {"base_url": url}},
        "profiling": {"enabled": True, "suite": str(SHORT_SUITE), "max_tokens": 16, **profiling},
    }


def chat_requests(state: ReplayState, model: str | None = None) -> list[dict]:
    return [r for r in state.requests if "messages" in r and (model is None or r["model"] == model)]


def test_models_are_profiled_in_the_background_per_category(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="routerd.plugin.profiling")
    state = ReplayState(models=["alpha-7b", "beta-1b"], reply=REPLY, delay={"alpha-7b": 0.05})
    with replay_server(state) as url, running_gateway(build_app(tmp_path, config(url))) as base:
        found = wait_profiled(base, {"alpha-7b", "beta-1b"})
        detail = history(base, "alpha-7b")
    assert found["suite"]["name"] == "routerd-tests" and found["suite"]["prompts"] == 5
    assert found["due"] == [] and found["enabled"] is True
    alpha = next(m for m in found["models"] if m["model"] == "alpha-7b")
    assert set(alpha["categories"]) == CATEGORIES
    assert alpha["suite_version"] == found["suite"]["suite_version"] and alpha["current"]
    assert (alpha["judged"], alpha["unjudged"], alpha["errors"]) == (3, 2, 0)  # three exact checks, no judge
    math, reasoning, coding = (alpha["categories"][c] for c in ("math", "reasoning", "coding"))
    assert math["quality"] == 1.0 and reasoning["quality"] == 0.0  # "The answer is 5": right, then no letter B
    assert coding["quality"] == 0.5 and coding["unjudged"] == 1  # no judge: a neutral 0.5, marked unjudged
    assert math["ttft_ms"] >= 50 and math["latency_ms"] >= math["ttft_ms"]  # the replay's delay, measured
    assert math["tokens_per_second"] > 0
    assert alpha["overall"]["quality"] == pytest.approx(0.6)
    # every prompt's score, verdict and timings are kept (learned scorers train on them)
    [prompt] = detail["latest"]["categories"]["math"]["prompts"]
    assert prompt["id"] == "math-sum" and prompt["method"] == "exact" and prompt["judge"] == "number"
    assert prompt["reason"] == "expected 5, found 5: right" and prompt["answer"] == REPLY
    assert prompt["latency_ms"] > 0 and prompt["tokens"] > 0
    [unjudged] = detail["latest"]["categories"]["coding"]["prompts"]
    assert (unjudged["score"], unjudged["method"], unjudged["judged"]) == (0.5, "unjudged", False)
    # through the dispatcher, streamed, pinned to each model, one at a time: a warm-up and the five prompts each
    assert len(chat_requests(state, "alpha-7b")) == len(chat_requests(state, "beta-1b")) == 6
    assert all(r["stream"] and r["max_tokens"] <= 16 and r["temperature"] == 0 for r in chat_requests(state))
    # the server logs a line per prompt, with percent done and ETA
    assert "profiling alpha-7b: math prompt 1/5 math-sum: 1.00 exact" in caplog.text
    assert "% done, ETA" in caplog.text
    assert "profiled beta-1b: math 1.00; reasoning 0.00; coding 0.50; creativity 0.50; general 1.00" in caplog.text


def test_the_routing_explanation_cites_the_profile(tmp_path):
    state = ReplayState(models=["alpha-7b", "beta-1b"], reply=REPLY, delay={"alpha-7b": 0.2})
    with replay_server(state) as url, running_gateway(build_app(tmp_path, config(url))) as base:
        wait_profiled(base, {"alpha-7b", "beta-1b"})
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model="routerd", messages=[{"role": "user", "content": "What is 12 * 12? Calculate it."}]
        )
        explained = httpx.get(f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN).json()
    assert explained["features"]["category"] == "math"
    today = time.strftime("%Y-%m-%d", time.gmtime())
    for candidate in explained["candidates"]:
        profile = candidate["contributions"]["profiles"]
        assert profile["reason"].startswith(f"profiled {today}: math 1.00 over 1 prompts (1 graded), ")
        assert profile["reason"].endswith("tok/s") and profile["weight"] == 2.0 and profile["score"] == 1.0
        speed = candidate["contributions"]["speed"]
        assert speed["reason"].startswith(f"profiled {today}: ") and speed["reason"].endswith(" ms for math prompts")
    speed = {c["model"]: c["contributions"]["speed"]["score"] for c in explained["candidates"]}
    assert speed["alpha-7b"] < speed["beta-1b"]  # the profiled latency replaced the size estimate


def test_profiles_are_reused_on_restart_and_redone_when_the_suite_changes(tmp_path):
    state = ReplayState(models=["alpha-7b"], reply=REPLY)
    suite = tmp_path / "suite.toml"
    shutil.copy(SHORT_SUITE, suite)
    with replay_server(state) as url:
        settings = config(url, suite=str(suite))
        with running_gateway(build_app(tmp_path / "data", settings)) as base:
            first = wait_profiled(base, {"alpha-7b"})
        requests = len(state.requests)
        app = build_app(tmp_path / "data", settings)
        with running_gateway(app) as base:
            wait_for(lambda: profiling_job(app).rounds >= 1)  # a round that saw the model
            assert runs_of(base, "alpha-7b") == 1  # the stored profile stands: nothing profiled again
            assert len(state.requests) == requests
            wait_for(lambda: app.state.gateway.profiles.lookup("openai", "alpha-7b") is not None)  # for the scorers
        suite.write_text(suite.read_text().replace('reference = "Paris."', 'reference = "Paris, on the Seine."'))
        with running_gateway(build_app(tmp_path / "data", settings)) as base:
            second = wait_profiled(base, {"alpha-7b"})
            runs = history(base, "alpha-7b")["history"]
    assert second["suite"]["suite_version"] != first["suite"]["suite_version"]
    assert [r["suite_version"] for r in runs] == [second["suite"]["suite_version"], first["suite"]["suite_version"]]
    assert [r["current"] for r in runs] == [True, False]  # history is kept, the old run marked as such


def test_reprofile_force_adds_to_the_history(tmp_path):
    state = ReplayState(models=["alpha-7b", "beta-1b"], reply=REPLY)
    with replay_server(state) as url, running_gateway(build_app(tmp_path, config(url))) as base:
        wait_profiled(base, {"alpha-7b", "beta-1b"})
        unforced = httpx.post(f"{base}/admin/reprofile", headers=ADMIN)
        assert unforced.status_code == 202 and unforced.json()["force"] is False
        one = httpx.post(f"{base}/admin/reprofile?force=true&model=alpha-7b", headers=ADMIN)
        assert one.status_code == 202 and one.json()["scheduled"] == ["alpha-7b"]
        wait_for(lambda: runs_of(base, "alpha-7b") == 2)
        assert runs_of(base, "beta-1b") == 1  # only the model named
        every = httpx.post(f"{base}/admin/reprofile?force=1", headers=ADMIN).json()
        assert every["scheduled"] == ["alpha-7b", "beta-1b"]
        wait_for(lambda: runs_of(base, "alpha-7b") == 3 and runs_of(base, "beta-1b") == 2)
        runs = history(base, "alpha-7b")["history"]
        unknown = httpx.post(f"{base}/admin/reprofile?model=nope", headers=ADMIN)
        bad = httpx.post(f"{base}/admin/reprofile?force=maybe", headers=ADMIN)
        missing = httpx.get(f"{base}/admin/profiles/nope", headers=ADMIN)
        anonymous = httpx.get(f"{base}/admin/profiles", headers={"Authorization": "Bearer wrong"})
    assert len({r["run_id"] for r in runs}) == 3
    assert [r["profiled_at"] for r in runs] == sorted((r["profiled_at"] for r in runs), reverse=True)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "force"
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    assert anonymous.status_code == 401


def test_a_model_discovered_later_is_profiled_when_it_appears(tmp_path):
    state = ReplayState(models=["alpha-7b"], reply=REPLY)
    with replay_server(state) as url:
        settings = {**config(url), "backends": {"discovery_interval": 0.2}}
        with running_gateway(build_app(tmp_path, settings)) as base:
            wait_profiled(base, {"alpha-7b"})
            state.models = ["alpha-7b", "gamma-3b"]
            found = wait_profiled(base, {"alpha-7b", "gamma-3b"})
            assert runs_of(base, "alpha-7b") == 1
    assert {m["model"] for m in found["models"]} == {"alpha-7b", "gamma-3b"}


def test_failures_mid_suite_are_recorded_and_the_run_goes_on(tmp_path):
    state = ReplayState(
        models=["flaky-7b", "stalling-7b", "steady-1b"],
        reply=REPLY,
        behaviour={"stalling-7b": "stall"},  # sends two words, then nothing for 5 s
        fail_on={"flaky-7b": ["poem", "capital"]},  # the creativity and general prompts fail
    )
    settings = config("", prompt_timeout=1.0, max_consecutive_failures=2)
    with replay_server(state) as url:
        settings["plugins"]["openai"]["base_url"] = url
        with running_gateway(build_app(tmp_path, settings)) as base:
            found = wait_profiled(base, {"flaky-7b", "stalling-7b", "steady-1b"}, timeout=60)
            flaky, stalling = history(base, "flaky-7b")["latest"], history(base, "stalling-7b")["latest"]
    by_model = {m["model"]: m for m in found["models"]}
    assert by_model["steady-1b"]["errors"] == 0
    assert by_model["flaky-7b"]["errors"] == 2 and by_model["flaky-7b"]["categories"]["math"]["quality"] == 1.0
    assert by_model["flaky-7b"]["categories"]["general"]["quality"] is None  # no answer: no quality
    [poem] = flaky["categories"]["creativity"]["prompts"]
    assert poem["method"] == "error" and poem["score"] is None and "overloaded" in poem["error"]
    # the stalling model timed out twice in a row; the rest of its suite was skipped, not waited for
    methods = [p["method"] for c in stalling["categories"].values() for p in c["prompts"]]
    assert methods == ["error", "error", "skipped", "skipped", "skipped"]
    first = stalling["categories"]["math"]["prompts"][0]
    assert first["error"] == "no complete answer within 1 s" and first["answer"]  # the words that did arrive
    assert by_model["stalling-7b"]["overall"]["quality"] is None


def test_profiling_switched_off_never_starts(tmp_path):
    state = ReplayState(models=["alpha-7b"], reply=REPLY)
    with replay_server(state) as url:
        settings = config(url, enabled=False)
        app = build_app(tmp_path, settings)
        with running_gateway(app) as base:
            time.sleep(1.0)
            found = profiles(base)
            refused = httpx.post(f"{base}/admin/reprofile?force=true", headers=ADMIN)
            # and routing goes on without profiles
            hello = {"model": "routerd", "messages": [{"role": "user", "content": "hi"}]}
            answer = httpx.post(f"{base}/v1/chat/completions", json=hello)
    assert chat_requests(state) == [r for r in chat_requests(state) if r["messages"][-1]["content"] == "hi"]
    assert found["models"] == [] and found["due"] == [] and found["enabled"] is False and found["running"] is None
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "profiling_disabled"
    assert answer.status_code == 200
    assert not any(t.get_name() == "routerd-profiling" for t in profiling_job(app)._tasks)


@pytest.mark.postgres
def test_on_postgresql_one_replica_profiles_at_a_time(tmp_path, postgres_url, caplog):
    caplog.set_level(logging.INFO, logger="routerd.plugin.profiling")
    state = ReplayState(models=["alpha-7b"], reply=REPLY, delay={"alpha-7b": 0.3})
    with replay_server(state) as url:
        settings = {**config(url, refresh_interval=0.5), "database": {"url": postgres_url}}
        first, second = build_app(tmp_path / "a", settings), build_app(tmp_path / "b", settings)
        with running_gateway(first) as base_a:
            wait_for(lambda: profiling_job(first).running, timeout=30, step=0.02)
            with running_gateway(second) as base_b:
                wait_profiled(base_a, {"alpha-7b"})
                # the second replica found the lock taken, or the profile already stored: it profiled nothing
                wait_for(lambda: second.state.gateway.profiles.lookup("openai", "alpha-7b") is not None, timeout=10)
                seen_by_b = profiles(base_b)
    assert len(chat_requests(state)) == 6  # one warm-up and five prompts: one replica's run, not two
    assert [m["model"] for m in seen_by_b["models"]] == ["alpha-7b"]
    assert "another replica holds the lock" in caplog.text


def test_the_gateway_uses_the_configured_suite_and_refuses_a_bad_one_at_start_up(tmp_path):
    app = build_app(tmp_path / "a", {"profiling": {"suite": str(SHORT_SUITE)}})
    assert profiling_job(app).profiler.suite.name == "routerd-tests"
    bad = tmp_path / "bad.toml"
    bad.write_text(SHORT_SUITE.read_text().replace('category = "coding"', 'category = "poetry"'))
    with pytest.raises(ConfigError, match=r"prompt 'coding-hello' \(prompts\[2\]\): category 'poetry' is not"):
        build_app(tmp_path / "b", {"profiling": {"suite": str(bad)}})


def test_requests_are_answered_while_a_model_is_being_profiled(tmp_path):
    state = ReplayState(models=["slow-7b", "fast-1b"], reply=REPLY, delay={"slow-7b": 3.0})
    with replay_server(state) as url:
        settings = config(url, skip=["fast-*"])  # only the slow model is profiled
        app = build_app(tmp_path, settings)
        with running_gateway(app) as base:
            wait_for(lambda: profiling_job(app).running, timeout=30, step=0.02)
            time.sleep(0.2)  # the profiler now waits on its first request to slow-7b (3 s)
            started = time.perf_counter()
            hello = {"model": "fast-1b", "messages": [{"role": "user", "content": "hi"}]}
            answer = httpx.post(f"{base}/v1/chat/completions", json=hello, timeout=10)
            elapsed = time.perf_counter() - started
            progress = profiling_job(app).profiler.progress
    assert answer.status_code == 200
    assert elapsed < 1.5  # it did not wait for the profiler's request (which had 2.8 s to go)
    assert progress is not None and progress.models == ["slow-7b"]  # profiling.skip kept fast-1b out
    assert len(chat_requests(state, "fast-1b")) == 1  # fast-1b saw only the user's request


def test_a_model_whose_name_has_slashes_is_reachable_by_name_and_by_backend(tmp_path):
    state = ReplayState(models=["team/alpha-7b"], reply=REPLY)
    with replay_server(state) as url, running_gateway(build_app(tmp_path, config(url))) as base:
        wait_profiled(base, {"team/alpha-7b"})
        by_id = history(base, "team/alpha-7b")
        by_backend = history(base, "openai/team/alpha-7b")
        again = httpx.post(f"{base}/admin/reprofile?force=true&model=team/alpha-7b", headers=ADMIN)
    assert by_id["model"] == by_backend["model"] == "team/alpha-7b" and by_id["backend"] == "openai"
    assert again.json()["scheduled"] == ["team/alpha-7b"]


def test_the_plugin_switched_off_serves_no_profiles_and_profiles_nothing(tmp_path):
    """``[plugins.profiling] enabled = false``: no job, no admin routes; the stored profiles stay the kernel's."""
    state = ReplayState(models=["alpha-7b"], reply=REPLY)
    with replay_server(state) as url:
        settings = config(url)
        settings["plugins"]["profiling"] = {"enabled": False}
        app = build_app(tmp_path, settings)
        with running_gateway(app) as base:
            time.sleep(1.0)
            listed = httpx.get(f"{base}/admin/profiles", headers=ADMIN)
            reprofile = httpx.post(f"{base}/admin/reprofile", headers=ADMIN)
            plugins = httpx.get(f"{base}/admin/plugins", headers=ADMIN).json()
    assert listed.status_code == 404 and reprofile.status_code == 404
    assert chat_requests(state) == []
    assert "profiling" not in app.state.gateway.plugins.registry.jobs
    [record] = [p for p in plugins if p["name"] == "profiling"]
    assert record["enabled"] is False and record["builtin"] is True


def test_the_plugin_registers_its_job_routes_and_commands(tmp_path):
    app = build_app(tmp_path, {"profiling": {"suite": str(SHORT_SUITE)}})
    [record] = [r for r in app.state.gateway.plugins.describe() if r["name"] == "profiling"]
    assert record["hooks"] == ["register_commands", "register_jobs", "register_routes"]
    assert record["registered"] == {
        "jobs": ["profiling"],
        "routes": ["GET /admin/profiles", "GET /admin/profiles/{model:path}", "POST /admin/reprofile"],
        "commands": ["profile", "profiles"],
    }
