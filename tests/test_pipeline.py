"""The chat pipeline's call sites for caches and skills, end to end with the openai SDK: what a cache hit must
match, how clients steer caching, hits in the shape the client asked for, the skill loop and its bounds, the
decision log across replicas, and the hard constraints (JSON output) and non-retryable backend errors."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from importlib.metadata import entry_points
from typing import Any

import httpx
import openai
import pytest

from conftest import fixture_plugin
from routerd.testing import TEST_ADMIN_KEY, build_app
from servers import ReplayState, replay_server, running_gateway

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
TEMPLATE_OFF = {"example": {"enabled": False}} if "example" in entry_points(group="routerd").names else {}
TEAM = {
    "members": [
        {"subject": "ann", "token": "t-ann", "tenant": "red"},
        {"subject": "bob", "token": "t-bob", "tenant": "red"},
        {"subject": "cat", "token": "t-cat", "tenant": "blue"},
    ]
}


@contextlib.contextmanager
def gateway(tmp_path, state: ReplayState, *plugins: str, **config):
    """The gateway on a replay server (the `openai` plugin), with fixture plugins; yields (base, client, app)."""
    with replay_server(state) as url:
        # the plugin template's example skill is left out (where the template is installed: `make test` installs
        # it, `make run`'s environment does not): these tests count the skills offered
        tables = {"openai": {"base_url": url}, **TEMPLATE_OFF, **config.pop("plugins", {})}
        app = build_app(tmp_path, {"plugins": tables, **config}, [fixture_plugin(p) for p in plugins])
        with running_gateway(app) as base:
            yield base, openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0), app


def ask(client: openai.OpenAI, messages: list[dict[str, Any]] | str, headers: dict | None = None, **body: Any):
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    return client.chat.completions.with_raw_response.create(
        model="routerd", messages=messages, extra_headers=headers, **body
    )


def cache_of(app) -> Any:
    return app.state.gateway.plugins.registry.caches["memory"]


def wait_stored(app, count: int) -> None:
    deadline = time.monotonic() + 5
    while len(cache_of(app).stored) < count:
        assert time.monotonic() < deadline, "the answer was never stored"
        time.sleep(0.01)


# -- caches: what a hit must match ------------------------------------------------------------------------------


def test_a_hit_needs_the_whole_conversation_and_every_parameter_to_match(tmp_path) -> None:
    state = ReplayState(models=["replay-7b", "replay-70b"])
    with gateway(tmp_path, state, "memory_cache") as (_, client, app):
        one = [{"role": "user", "content": "Shall I delete the logs?"}, {"role": "assistant", "content": "Maybe."}]
        other = [{"role": "user", "content": "Shall I restart it?"}, {"role": "assistant", "content": "Maybe."}]
        yes = {"role": "user", "content": "yes"}
        ask(client, [*one, yes], temperature=0)
        wait_stored(app, 1)
        variants = {
            "the same request": ([*one, yes], {}, {}),
            "another conversation": ([*other, yes], {}, {}),
            "a system prompt": ([{"role": "system", "content": "Be terse."}, *one, yes], {}, {}),
            "another temperature": ([*one, yes], {"temperature": 0.0, "top_p": 0.5}, {}),
            "a max_tokens": ([*one, yes], {"max_tokens": 5}, {}),
            "a seed": ([*one, yes], {"seed": 7}, {}),
            "a top_k": ([*one, yes], {"extra_body": {"top_k": 40}}, {}),
            "a min_p": ([*one, yes], {"extra_body": {"min_p": 0.05}}, {}),
            "a typical_p": ([*one, yes], {"extra_body": {"typical_p": 0.9}}, {}),
            "a repeat_penalty": ([*one, yes], {"extra_body": {"repeat_penalty": 1.1}}, {}),
            "a repetition_penalty": ([*one, yes], {"extra_body": {"repetition_penalty": 1.1}}, {}),
            "an n": ([*one, yes], {"n": 2}, {}),
            "JSON output": ([*one, yes], {"response_format": {"type": "json_object"}}, {}),
            "tools": ([*one, yes], {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, {}),
            "another preference": ([*one, yes], {}, {"X-Routerd-Quality-Preference": "0.9"}),
            "a pinned model": ([*one, yes], {"extra_query": {"model": "replay-7b"}}, {}),
        }
        found = {}
        for label, (messages, body, headers) in variants.items():
            body = {"temperature": 0, **body}
            found[label] = ask(client, messages, headers or None, **body).headers["x-routerd-cache"]
    assert found == {label: "hit" if label == "the same request" else "miss" for label in variants}


def test_tenants_never_share_hits_and_members_of_a_tenant_do(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"])
    with gateway(tmp_path, state, "memory_cache", "team_tokens", plugins={"team_tokens": TEAM}) as (_, client, app):
        ask(client, "What is our VPN's address?", {"X-Team-Token": "t-ann"}, temperature=0)
        wait_stored(app, 1)
        same_tenant = ask(client, "What is our VPN's address?", {"X-Team-Token": "t-bob"}, temperature=0)
        other_tenant = ask(client, "What is our VPN's address?", {"X-Team-Token": "t-cat"}, temperature=0)
        anonymous = ask(client, "What is our VPN's address?", temperature=0)
    assert same_tenant.headers["x-routerd-cache"] == "hit"
    assert other_tenant.headers["x-routerd-cache"] == "miss"
    assert anonymous.headers["x-routerd-cache"] == "miss"
    assert {query.tenant for query in cache_of(app).lookups} == {"red", "blue", "default"}


def test_sampled_requests_bypass_the_caches_unless_configured(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"])
    with gateway(tmp_path, state, "memory_cache") as (_, client, app):
        first, second = ask(client, "Tell me a joke"), ask(client, "Tell me a joke", temperature=0.8)
        assert not cache_of(app).stored and not cache_of(app).lookups
    assert first.headers["x-routerd-cache"] == second.headers["x-routerd-cache"] == "bypass"
    with gateway(tmp_path / "sampled", state, "memory_cache", cache={"sampled": True}) as (_, client, app):
        ask(client, "Tell me a joke")
        wait_stored(app, 1)
        again = ask(client, "Tell me a joke")
    assert again.headers["x-routerd-cache"] == "hit"
    assert cache_of(app).lookups[0].sampled


def test_cache_control_no_store_no_cache_and_max_age(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"])
    with gateway(tmp_path, state, "memory_cache") as (_, client, app):
        question = "What is the boiling point of water?"
        no_store = ask(client, question, {"Cache-Control": "no-store"}, temperature=0)
        time.sleep(0.2)
        assert cache_of(app).stored == [] and cache_of(app).lookups == []
        no_cache = ask(client, question, {"Cache-Control": "no-cache"}, temperature=0)
        wait_stored(app, 1)
        assert cache_of(app).lookups == []  # stored, not looked up
        hit = ask(client, question, temperature=0)
        time.sleep(1.1)
        too_old = ask(client, question, {"Cache-Control": "max-age=1"}, temperature=0)
        fresh_enough = ask(client, question, {"Cache-Control": "max-age=60"}, temperature=0)
    assert no_store.headers["x-routerd-cache"] == "bypass"
    assert no_cache.headers["x-routerd-cache"] == "bypass"
    assert hit.headers["x-routerd-cache"] == "hit"
    assert too_old.headers["x-routerd-cache"] == "miss"
    assert fresh_enough.headers["x-routerd-cache"] == "hit"


def test_a_streamed_answer_is_stored_and_served_as_json_and_the_reverse(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"], reply="The sky is blue because of Rayleigh scattering.")
    with gateway(tmp_path, state, "memory_cache") as (base, client, app):
        streamed = client.chat.completions.create(
            model="routerd",
            messages=[{"role": "user", "content": "Why is the sky blue?"}],
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        live = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
        wait_stored(app, 1)
        as_json = ask(client, "Why is the sky blue?", temperature=0)
        ask(client, "Why is grass green?", temperature=0)
        wait_stored(app, 2)
        replayed = client.chat.completions.create(
            model="routerd",
            messages=[{"role": "user", "content": "Why is grass green?"}],
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(replayed)
        raw = httpx.post(
            f"{base}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "Why is grass green?"}], "temperature": 0, "stream": True},
        )
    answer = as_json.parse()
    assert as_json.headers["x-routerd-cache"] == "hit"
    assert answer.choices[0].message.content == live
    assert answer.usage.completion_tokens > 0
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("The sky is blue because of Rayleigh scattering.")
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert raw.headers["x-routerd-cache"] == "hit" and raw.headers["content-type"].startswith("text/event-stream")
    assert raw.text.endswith("data: [DONE]\n\n")
    assert len(state.requests) == 2  # two misses; the hits called no model


def test_a_failed_stream_is_never_stored_and_a_failing_cache_is_a_miss(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"], behaviour={"replay-7b": "die"})
    with gateway(tmp_path, state, "memory_cache") as (_, client, app):
        with pytest.raises(openai.APIError):
            list(client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": "Hi"}],
                                                temperature=0, stream=True))  # fmt: skip
        time.sleep(0.3)
        assert cache_of(app).stored == []
    state = ReplayState(models=["replay-7b"])
    config = {"plugins": {"memory_cache": {"fail": True}}}
    with gateway(tmp_path / "failing", state, "memory_cache", **config) as (_, client, app):
        answer = ask(client, "Hi there", temperature=0)
    assert answer.headers["x-routerd-cache"] == "miss" and answer.parse().choices[0].message.content


def test_a_cache_slower_than_the_lookup_timeout_is_a_miss(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"])
    config = {"cache": {"lookup_timeout": 0.1}, "plugins": {"memory_cache": {"delay": 5.0}}}
    with gateway(tmp_path, state, "memory_cache", **config) as (_, client, app):
        ask(client, "What is 2 + 2?", temperature=0)
        wait_stored(app, 1)
        started = time.monotonic()
        again = ask(client, "What is 2 + 2?", temperature=0)
        took = time.monotonic() - started
    assert again.headers["x-routerd-cache"] == "miss"  # stored, but the cache took too long to say so
    assert took < 2.0 and len(state.requests) == 2


def test_a_semantic_hit_says_how_similar_and_the_log_says_which_entry(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"])
    config = {"plugins": {"memory_cache": {"semantic": True}}}
    with gateway(tmp_path, state, "memory_cache", **config) as (base, client, app):
        ask(client, "France: capital?", temperature=0)
        wait_stored(app, 1)
        near = ask(client, "capital France", temperature=0)
        logged = httpx.get(f"{base}/admin/decisions/{near.headers['x-routerd-decision-id']}", headers=ADMIN).json()
    assert near.headers["x-routerd-cache"] == "semantic-hit; similarity=0.9000"
    assert logged["cache"] == {"cache": "memory", "entry": cache_of(app).lookups[-1].key[:12], "similarity": 0.9}
    assert logged["status"] == "ok" and logged["chosen_model"] == "replay-7b"


# -- skills --------------------------------------------------------------------------------------------------


def tool_state(*calls: tuple[str, str], behaviour: str = "tools", tools: bool = True) -> ReplayState:
    state = ReplayState(models=["tool-7b", "plain-7b"], behaviour={"tool-7b": behaviour})
    state.tool_calls = list(calls)
    return state


TOOL_MODELS = {"models": {"tool-7b": {"tools": True}, "plain-7b": {"tools": False}}}


def test_skills_are_offered_only_when_asked_for_and_unknown_ones_are_named(tmp_path) -> None:
    state = tool_state(("word_count", '{"text": "a b"}'))
    with gateway(tmp_path, state, "skills", **TOOL_MODELS) as (_, client, _app):
        ask(client, "Count the words of 'a b'")
        with pytest.raises(openai.BadRequestError) as refused:
            ask(client, "Count", {"X-Routerd-Skills": "word_count, telepathy"})
        counted = ask(client, "Count the words of 'a b'", {"X-Routerd-Skills": "word_count"})
    assert "tools" not in state.requests[0]
    assert "telepathy" in refused.value.message and refused.value.body["param"] == "X-Routerd-Skills"
    assert counted.headers["x-routerd-model"] == "tool-7b"  # skills need a model that calls tools
    assert counted.parse().choices[0].message.content.startswith('The tools said: {"words": 2}')


def test_skills_offered_always_unless_the_request_says_none(tmp_path) -> None:
    state = tool_state(("word_count", '{"text": "a b c"}'))
    config = {"skills": {"offer": "always"}, **TOOL_MODELS}
    with gateway(tmp_path, state, "skills", **config) as (_, client, _app):
        offered = ask(client, "Count the words")
        declined = ask(client, "Count the words", {"X-Routerd-Skills": "none"})
    assert offered.parse().choices[0].message.content.startswith('The tools said: {"words": 3}')
    names = [t["function"]["name"] for t in state.requests[0]["tools"]]
    assert names == ["word_count", "slow", "broken"]
    assert "tools" not in state.requests[-1]
    assert declined.parse().choices[0].message.content.startswith("Hello from the replay server.")


def test_skills_offered_never_are_not_offered_even_when_asked_for(tmp_path) -> None:
    state = tool_state(("word_count", '{"text": "a b"}'))
    config = {"skills": {"offer": "never"}, **TOOL_MODELS}
    with gateway(tmp_path, state, "skills", **config) as (_, client, app):
        answer = ask(client, "Count the words", {"X-Routerd-Skills": "word_count"})
    assert "tools" not in state.requests[0]
    assert answer.parse().choices[0].message.content.startswith("Hello from the replay server.")
    assert app.state.gateway.plugins.registry.skills["word_count"].runs == []


def test_the_loop_stops_at_its_iteration_limit_with_a_clear_finish_reason(tmp_path) -> None:
    state = tool_state(("word_count", '{"text": "again"}'), behaviour="tools_forever")
    config = {"skills": {"max_iterations": 3}, **TOOL_MODELS}
    with gateway(tmp_path, state, "skills", **config) as (base, client, _app):
        raw = ask(client, "Loop", {"X-Routerd-Skills": "word_count"})
        logged = httpx.get(f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN).json()
    answer = raw.parse()
    assert answer.choices[0].finish_reason == "length"
    assert answer.choices[0].message.tool_calls is None
    assert len(state.requests) == 4  # the first call and three more with results
    assert [call["iteration"] for call in logged["skill_calls"]] == [1, 2, 3]
    assert answer.usage.total_tokens == 4 * 15


def test_a_failing_or_slow_skill_is_an_error_the_model_reads_without_secrets(tmp_path) -> None:
    state = tool_state(("broken", "{}"), ("slow", "{}"), ("word_count", "not json"))
    config = {"skills": {"timeout": 0.2}, **TOOL_MODELS}
    with gateway(tmp_path, state, "skills", **config) as (base, client, _app):
        raw = ask(client, "Try them all", {"X-Routerd-Skills": "*"})
        logged = httpx.get(f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN).json()
    results = [m["content"] for m in state.requests[1]["messages"] if m["role"] == "tool"]
    assert results == [
        "error: the skill failed (RuntimeError)",
        "error: the skill took longer than 0.2 s",
        "error: bad arguments: Expecting value: line 1 column 1 (char 0)",
    ]
    assert "sk-hidden" not in json.dumps(logged) and "sk-hidden" not in raw.text
    assert [c["error"] is not None for c in logged["skill_calls"]] == [True, True, True]


def test_a_turn_calling_the_clients_tool_and_a_skill_goes_back_with_the_clients_call_only(tmp_path) -> None:
    state = tool_state(("get_weather", '{"city": "Oslo"}'), ("word_count", '{"text": "x"}'))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    with gateway(tmp_path, state, "skills", **TOOL_MODELS) as (_, client, app):
        answer = ask(client, "Weather?", {"X-Routerd-Skills": "word_count"}, tools=tools).parse()
    calls = answer.choices[0].message.tool_calls
    assert [call.function.name for call in calls] == ["get_weather"]
    assert app.state.gateway.plugins.registry.skills["word_count"].runs == []  # not run: the client answers first


def test_a_stream_with_skills_streams_the_final_answer(tmp_path) -> None:
    state = tool_state(("word_count", '{"text": "one two"}'))
    with gateway(tmp_path, state, "skills", **TOOL_MODELS) as (_, client, _app):
        stream = client.chat.completions.create(
            model="routerd",
            messages=[{"role": "user", "content": "Count"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Routerd-Skills": "word_count"},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith('The tools said: {"words": 2}') and text.endswith("Model: tool-7b")
    assert chunks[-1].usage.total_tokens == 30


# -- the decision log, hard constraints, errors -----------------------------------------------------------------


def test_feedback_reaches_a_decision_another_replica_is_still_answering(tmp_path, postgres_url) -> None:
    """Replica A streams a slow answer; replica B, on the same database, takes the rating for it before A's
    request has ended (A writes the decision as pending after a second), and A's row ends up complete."""
    state = ReplayState(models=["replay-7b"], behaviour={"replay-7b": "slow"})
    database = {"database": {"url": postgres_url}}
    with replay_server(state) as url:
        one = build_app(tmp_path / "a", {"plugins": {"openai": {"base_url": url}}, **database})
        two = build_app(tmp_path / "b", {"plugins": {"openai": {"enabled": False}}, **database})
        with running_gateway(one) as a, running_gateway(two) as b:
            headers: dict[str, str] = {}

            def stream() -> None:
                with httpx.stream(
                    "POST", f"{a}/v1/chat/completions", timeout=60,
                    json={"stream": True, "messages": [{"role": "user", "content": "Tell me a long story"}]},
                ) as response:  # fmt: skip
                    headers.update(response.headers)
                    for _ in response.iter_bytes():
                        if "rated" in headers:
                            break

            reader = threading.Thread(target=stream)
            reader.start()
            deadline = time.monotonic() + 10
            while "x-routerd-decision-id" not in headers:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            rated = httpx.post(f"{b}/v1/feedback", json={"decision_id": headers["x-routerd-decision-id"], "rating": 1})
            headers["rated"] = "yes"
            reader.join(timeout=30)
            deadline = time.monotonic() + 10
            while (row := httpx.get(f"{b}/admin/decisions/{headers['x-routerd-decision-id']}", headers=ADMIN).json())[
                "status"
            ] == "pending":
                assert time.monotonic() < deadline
                time.sleep(0.05)
    assert rated.status_code == 201, rated.text
    assert rated.json()["model"] == "replay-7b"
    assert row["status"] in ("ok", "cancelled") and row["chosen_model"] == "replay-7b"


@pytest.mark.parametrize(
    ("bad", "status", "code"),
    [("no\x00such", 400, None), ("x" * 500, 400, None), ("rd-" + "0" * 32, 404, "decision_not_found")],
)
def test_feedback_for_an_unknown_or_hostile_id_is_a_clear_4xx(tmp_path, postgres_url, bad, status, code) -> None:
    """An id no decision can have (a NUL, longer than any id) is the client's mistake, a 400 naming the field; a
    well-formed id of no decision is a 404. Neither is a 500 on PostgreSQL, which refuses NUL in text."""
    app = build_app(tmp_path, {"database": {"url": postgres_url}})
    with running_gateway(app) as base:
        started = time.monotonic()
        by_decision = httpx.post(f"{base}/v1/feedback", json={"decision_id": bad, "rating": 1})
        by_response = httpx.post(f"{base}/v1/feedback", json={"response_id": bad, "rating": 1})
    assert by_decision.status_code == by_response.status_code == status
    if code is not None:
        assert by_decision.json()["error"]["code"] == code
    else:
        assert by_decision.json()["error"]["param"] == "decision_id"
        assert by_response.json()["error"]["param"] == "response_id"
    assert time.monotonic() - started < 10


def test_a_hostile_model_name_loses_no_other_decision_on_postgresql(tmp_path, postgres_url) -> None:
    state = ReplayState(models=["replay-7b"])
    with gateway(tmp_path, state, database={"url": postgres_url}) as (base, _client, _app):

        def post(model: str) -> httpx.Response:
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            return httpx.post(f"{base}/v1/chat/completions?model=auto", json=body, timeout=30)

        responses = [post("bad\x00model" if i == 5 else "x" * 600 if i == 6 else "routerd") for i in range(20)]
        ids = [r.headers["x-routerd-decision-id"] for r in responses]
        with running_gateway(build_app(tmp_path / "b", {"database": {"url": postgres_url}})) as other:
            deadline = time.monotonic() + 10
            while True:
                found = [httpx.get(f"{other}/admin/decisions/{i}", headers=ADMIN).status_code for i in ids]
                if found == [200] * 20 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
    assert [r.status_code for r in responses] == [200] * 20
    assert found == [200] * 20


def test_a_json_response_format_goes_only_to_models_held_to_json(tmp_path) -> None:
    state = ReplayState(models=["free-70b", "json-7b"])
    config = {"models": {"free-70b": {"json_output": False}}}
    with gateway(tmp_path, state, **config) as (base, client, _app):
        hard = "Prove the theorem rigorously and derive a tight bound for every edge case."
        free = ask(client, hard)
        held = ask(client, hard, response_format={"type": "json_object"})
        logged = httpx.get(f"{base}/admin/decisions/{held.headers['x-routerd-decision-id']}", headers=ADMIN).json()
        with pytest.raises(openai.BadRequestError) as pinned:
            ask(client, hard, extra_query={"model": "free-70b"}, response_format={"type": "json_object"})
    assert free.headers["x-routerd-model"] == "free-70b"
    assert held.headers["x-routerd-model"] == "json-7b"
    assert {"model": "free-70b", "excluded": "cannot be held to JSON output"} in logged["candidates"]
    assert "cannot be held to JSON output" in pinned.value.message


def test_a_backend_error_that_is_not_retryable_is_passed_on_without_trying_another_model(tmp_path) -> None:
    app = build_app(tmp_path, {}, [fixture_plugin("refusing")])
    hard = "Prove that the algorithm is correct for every edge case, optimize it, and derive a rigorous bound."
    with running_gateway(app) as base:
        answer = httpx.post(
            f"{base}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": hard}]},
            headers={"X-Routerd-Quality-Preference": "1"},
        )
        backends = app.state.gateway.plugins.registry.backends
    assert answer.status_code == 502
    assert answer.json()["error"]["message"] == "refusing declines: the request may not run twice"
    assert backends["refusing"].calls == [("chat", "refusing-70b")]  # ranked first
    assert backends["steady"].calls == []
    assert app.state.gateway.dispatcher.available("refusing")
