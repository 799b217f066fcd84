"""Profiling as a new user meets it: the gateway with the bundled Gemma 3 270M (a real llama.cpp server) and a
second model, both profiled automatically; /admin/profiles shows per-category quality and speed; a judge
plugin grades the open answers with the real model; the routing explanation cites the profiles; and a judge
that returns garbage or is down leaves answers unjudged without breaking anything."""

from __future__ import annotations

import contextlib
import logging
import time

import httpx
import openai
from aiohttp import web

from conftest import fixture_plugin
from profiling_helpers import ADMIN, CATEGORIES, SHORT_SUITE, history, runs_of, wait_for, wait_profiled
from routerd.testing import build_app
from servers import ReplayState, aiohttp_in_thread, free_port, replay_server, running_gateway

GEMMA = "gemma-3-270m"
JUDGE = fixture_plugin("similarity_judge")


def settings(llama: str, replay: str, judges: list[dict]) -> dict:
    return {
        "plugins": {
            "llamacpp": {"url": llama},
            "openai": {"base_url": replay},
            "similarity_judge": {"judges": judges},
        },
        "profiling": {"enabled": True, "suite": str(SHORT_SUITE), "max_tokens": 24, "prompt_timeout": 60},
    }


@contextlib.contextmanager
def garbage_server():
    """An endpoint that answers every request with 200 and an HTML page."""

    async def garbage(_: web.Request) -> web.Response:
        return web.Response(text="<html>502 Bad Gateway</html>", content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", garbage)
    with aiohttp_in_thread(app) as url:
        yield url


def test_both_models_are_profiled_judged_and_cited_by_routing(llama_server, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="routerd.plugin.profiling")
    state = ReplayState(models=["replay-large"], reply="I think the answer is B.")
    with replay_server(state) as replay:
        config = settings(llama_server, replay, [{"name": "similarity", "url": llama_server}])
        app = build_app(tmp_path, config, [JUDGE])
        with running_gateway(app) as base:
            found = wait_profiled(base, {GEMMA, "replay-large"}, timeout=240)
            gemma = history(base, GEMMA)["latest"]
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            raw = client.chat.completions.with_raw_response.create(
                model="routerd",
                messages=[{"role": "user", "content": "Write a Python function that reverses a string."}],
                max_tokens=8,
            )
            explained = httpx.get(f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN)
            forced = httpx.post(f"{base}/admin/reprofile?force=true&model={GEMMA}", headers=ADMIN)
            wait_for(lambda: runs_of(base, GEMMA) == 2, timeout=240)
            judged_calls = app.state.gateway.plugins.registry.judges["similarity"].calls
    by_model = {m["model"]: m for m in found["models"]}
    assert set(by_model) == {GEMMA, "replay-large"}
    real = by_model[GEMMA]
    assert set(real["categories"]) == CATEGORIES and real["errors"] == 0
    for figures in real["categories"].values():  # real speed, measured on real tokens
        assert 0 <= figures["quality"] <= 1
        assert 0 < figures["ttft_ms"] <= figures["latency_ms"]
        assert figures["tokens_per_second"] > 1
    # open prompts went to the judge plugin, exact ones to the deterministic checks
    methods = {p["id"]: (p["method"], p["judge"]) for c in gemma["categories"].values() for p in c["prompts"]}
    assert methods["math-sum"][0] in ("exact", "empty") and methods["general-capital"][0] in ("exact", "empty")
    assert methods["coding-hello"] == ("judge", "similarity") or methods["coding-hello"][0] == "empty"
    assert judged_calls >= 1 and real["unjudged"] == 0  # every answer graded: exactly or by the judge
    coding = gemma["categories"]["coding"]["prompts"][0]
    assert coding["answer"] and coding["reason"].startswith("similarity to the reference")
    # the replay model answers "the answer is B": right on the choice, wrong on the sum
    assert by_model["replay-large"]["categories"]["reasoning"]["quality"] == 1.0
    assert by_model["replay-large"]["categories"]["math"]["quality"] == 0.0
    # the routing explanation cites both profiles
    assert explained.status_code == 200
    candidates = {c["model"]: c for c in explained.json()["candidates"]}
    for model in (GEMMA, "replay-large"):
        reason = candidates[model]["contributions"]["profiles"]["reason"]
        assert reason.startswith("profiled ") and ": coding " in reason and "over 1 prompts (1 graded)" in reason
    assert candidates[GEMMA]["contributions"]["profiles"]["weight"] == 2.0
    assert " tok/s" in candidates[GEMMA]["contributions"]["profiles"]["reason"]
    assert candidates[GEMMA]["contributions"]["speed"]["reason"].endswith("ms for coding prompts")
    assert forced.status_code == 202
    assert f"profiling {GEMMA}: math prompt 1/5 math-sum" in caplog.text


def test_a_judge_that_returns_garbage_or_is_down_leaves_answers_unjudged(llama_server, tmp_path):
    state = ReplayState(models=["replay-large"], reply="Paris.")
    with garbage_server() as garbage, replay_server(state) as replay:
        judges = [
            {"name": "garbage", "url": garbage},
            {"name": "down", "url": f"http://127.0.0.1:{free_port()}"},
            {"name": "buggy", "url": llama_server, "offset": 2.0},  # scores above 1: not a valid verdict
        ]
        app = build_app(tmp_path, settings(llama_server, replay, judges), [JUDGE])
        with running_gateway(app) as base:
            found = wait_profiled(base, {GEMMA, "replay-large"}, timeout=240)
            latest = {model: history(base, model)["latest"] for model in (GEMMA, "replay-large")}
            alive = httpx.get(f"{base}/healthz")
    assert alive.status_code == 200
    for model, run in latest.items():
        assert found["models"][[m["model"] for m in found["models"]].index(model)]["errors"] == 0
        for category in ("coding", "creativity"):
            [prompt] = run["categories"][category]["prompts"]
            if prompt["method"] == "empty":
                continue
            assert (prompt["score"], prompt["method"], prompt["judged"]) == (0.5, "unjudged", False), model
            assert prompt["reason"] == "no judge gave a verdict"
            notes = " | ".join(prompt["notes"])
            assert "garbage: JSONDecodeError" in notes
            assert "down: ConnectError" in notes
            assert "buggy: score " in notes and "is outside 0..1" in notes
        assert run["categories"]["general"]["prompts"][0]["method"] in ("exact", "empty")  # checks need no judge


COUNTING = """
name = "routerd-long"
version = "t1"

[[prompts]]
id = "count"
category = "general"
prompt = "Count from 1 to 300, with the numbers separated by commas."
reference = "1, 2, 3, ..., 300"
"""


def test_a_user_request_pre_empts_the_real_model_s_profiling_prompt(tmp_path, gemma_path):
    """The `local` plugin's llama.cpp server answers one request at a time: a user's request that arrives while the
    profiler's prompt is being generated pre-empts it (the profiler closes its stream, and the server stops
    generating: its log says the client went away), is answered, and the prompt is asked again after."""
    suite = tmp_path / "long.toml"
    suite.write_text(COUNTING)
    profiling = {"enabled": True, "suite": str(suite), "max_tokens": 96, "quiet_seconds": 0.5, "prompt_timeout": 120}
    app = build_app(tmp_path / "data", {"plugins": {"local": {"enabled": True}}, "profiling": profiling})
    with running_gateway(app) as base:

        def generating() -> dict | None:
            running = httpx.get(f"{base}/admin/profiles", headers=ADMIN, timeout=10).json()["running"]
            return running if running and running["prompt"] == "count" and not running["paused"] else None

        wait_for(generating, timeout=120, step=0.05)  # the model is loaded (the warm-up) and the prompt is sent
        time.sleep(1.0)  # tokens are being generated
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        answer = client.chat.completions.create(
            model=GEMMA, messages=[{"role": "user", "content": "Say hi."}], max_tokens=8
        )
        pre_empted = httpx.get(f"{base}/admin/profiles", headers=ADMIN, timeout=10).json()["running"]
        found = wait_profiled(base, {GEMMA}, timeout=120)
        [prompt] = history(base, GEMMA)["latest"]["categories"]["general"]["prompts"]
        traffic = app.state.gateway.traffic
    assert answer.choices[0].message.content
    assert pre_empted is not None and pre_empted["preempted"] == 1  # before the user's answer came back
    assert (traffic.served, traffic.preemptions) == (1, 1)
    assert found["models"][0]["errors"] == 0 and prompt["error"] is None and prompt["tokens"] > 0
    server_log = (tmp_path / "data" / "plugins" / "local" / f"{GEMMA}.log").read_text()
    assert "Disconnected from client" in server_log  # llama_cpp.server stopped generating the abandoned prompt
