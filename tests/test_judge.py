"""The ``judge`` plugin: LLM-as-judge through an OpenAI-compatible endpoint (a local server replaying
chat-completion payloads shaped as the OpenAI API documents them, scripted per test), through a
model the gateway itself serves (``context.models``), and with the real llama.cpp server running
the bundled Gemma 3 270M as the judge."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from litestar.testing import TestClient

from routerd import BackendUnavailable, ChatRequest, InvalidRequest, Judgement, Message, ModelNotFound, PromptFeatures
from routerd.errors import ConfigError
from routerd.testing import build_app
from servers import ReplayState, aiohttp_in_thread, completion, free_port, replay_server

QUESTION = "What is the capital of Australia? Answer in one word."
ANSWER = "Canberra"
REFERENCE = "Canberra (not Sydney, the largest city)."
GOOD = {"explanation": "Correct and brief.", "accuracy": 10, "clarity": 8, "instruction_following": 7}
# (10 - 1) / 9 * 0.5 + (8 - 1) / 9 * 0.2 + (7 - 1) / 9 * 0.3
GOOD_SCORE = round(0.5 + 7 / 9 * 0.2 + 6 / 9 * 0.3, 4)


@dataclass
class JudgeEndpoint:
    """A scripted OpenAI-compatible chat endpoint: each request takes the next of `replies` (a
    text the model says, an HTTP status, or seconds to stall); every request is recorded with
    its headers."""

    replies: list[Any] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)

    def app(self) -> web.Application:
        async def chat(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            reply = self.replies.pop(0) if self.replies else json.dumps(GOOD)
            if isinstance(reply, int):
                error = {"message": "The server had an error while processing your request.", "type": "server_error"}
                return web.json_response({"error": error}, status=reply)
            if isinstance(reply, float):
                await asyncio.sleep(reply)
                reply = json.dumps(GOOD)
            return web.json_response(completion(body["model"], reply))

        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        return app


@contextlib.contextmanager
def judge_app(tmp_path, base_url: str, **settings) -> Iterator[tuple[TestClient, Any]]:
    table = {"enabled": True, "model": "gpt-judge", "base_url": base_url, "api_key": "sk-test-judge", **settings}
    app = build_app(tmp_path, {"plugins": {"judge": table}})
    with TestClient(app) as client:
        yield client, app.state.gateway.plugins.registry.judges["judge"]


@contextlib.contextmanager
def scripted(tmp_path, *replies, **settings) -> Iterator[tuple[JudgeEndpoint, TestClient, Any]]:
    endpoint = JudgeEndpoint(list(replies))
    with aiohttp_in_thread(endpoint.app()) as base, judge_app(tmp_path, f"{base}/v1", **settings) as (client, judge):
        yield endpoint, client, judge


def grade(client: TestClient, judge, answer: str = ANSWER, reference: str | None = REFERENCE) -> Judgement:
    return client.blocking_portal.call(judge.judge, PromptFeatures(text=QUESTION), "some-model", answer, reference)


def assert_unjudged(judgement: Judgement, why: str) -> None:
    assert judgement.judged is False
    assert judgement.score is None
    assert why in judgement.reason


# -- verdicts --------------------------------------------------------------------------------
def test_a_good_verdict_is_a_score_and_the_request_carries_answer_reference_and_key(tmp_path):
    with scripted(tmp_path, json.dumps(GOOD)) as (endpoint, client, judge):
        judgement = grade(client, judge)
    assert judgement == Judgement(
        score=GOOD_SCORE,
        reason="gpt-judge: accuracy 10, clarity 8, instruction following 7; Correct and brief.",
    )
    [sent] = endpoint.requests
    assert sent["model"] == "gpt-judge"
    assert (sent["temperature"], sent["max_tokens"], sent["response_format"]) == (0.0, 400, {"type": "json_object"})
    [user] = sent["messages"]  # one user turn: some chat templates drop system messages
    assert user["role"] == "user"
    assert user["content"].startswith("You are an impartial judge") and "instruction_following" in user["content"]
    assert f"[Question]\n{QUESTION}" in user["content"]
    assert f"[Reference answer or grading notes]\n{REFERENCE}" in user["content"]
    assert f"[The answer to grade]\n{ANSWER}\n[End of the answer]" in user["content"]
    assert endpoint.headers[0]["Authorization"] == "Bearer sk-test-judge"


def test_without_a_reference_none_is_shown_and_weights_are_settings(tmp_path):
    weights = {"accuracy_weight": 1.0, "clarity_weight": 0.0, "instruction_following_weight": 0.0}
    reply = json.dumps({**GOOD, "accuracy": 4})
    with scripted(tmp_path, reply, response_format="none", **weights) as (endpoint, client, judge):
        judgement = grade(client, judge, reference=None)
    assert judgement.score == round(3 / 9, 4)
    assert "Reference" not in endpoint.requests[0]["messages"][0]["content"]
    assert "response_format" not in endpoint.requests[0]


@pytest.mark.parametrize("form", ["json_schema", "json_object_schema"])
def test_the_verdicts_schema_can_be_asked_for(tmp_path, form):
    with scripted(tmp_path, response_format=form) as (endpoint, client, judge):
        assert grade(client, judge).judged
    sent = endpoint.requests[0]["response_format"]
    schema = sent["json_schema"]["schema"] if form == "json_schema" else sent["schema"]
    assert sent["type"] == ("json_schema" if form == "json_schema" else "json_object")
    assert list(schema["properties"]) == ["explanation", "accuracy", "clarity", "instruction_following"]
    assert schema["properties"]["clarity"]["enum"] == list(range(1, 11))


def test_a_verdict_in_a_code_fence_with_text_around_it(tmp_path):
    reply = "Here is my verdict:\n```json\n" + json.dumps(GOOD, indent=2) + "\n```\nI hope this helps {sic}."
    with scripted(tmp_path, reply) as (endpoint, client, judge):
        judgement = grade(client, judge)
    assert judgement.judged and judgement.score == GOOD_SCORE
    assert len(endpoint.requests) == 1


def test_garbage_then_a_good_verdict_is_one_retry_with_a_reminder(tmp_path):
    with scripted(tmp_path, "I think it is a fine answer, 9/10!", json.dumps(GOOD)) as (endpoint, client, judge):
        judgement = grade(client, judge)
    assert judgement.judged and judgement.score == GOOD_SCORE
    assert len(endpoint.requests) == 2
    retry = endpoint.requests[1]["messages"]
    assert retry[:1] == endpoint.requests[0]["messages"]
    assert retry[1] == {"role": "assistant", "content": "I think it is a fine answer, 9/10!"}
    assert retry[2]["role"] == "user"
    assert "not a valid verdict: no JSON object with accuracy" in retry[2]["content"]
    assert '"instruction_following": <1-10>' in retry[2]["content"]


def test_garbage_twice_is_unjudged(tmp_path):
    with scripted(tmp_path, "no idea", "still no idea") as (endpoint, client, judge):
        judgement = grade(client, judge)
    assert_unjudged(judgement, "malformed verdict twice")
    assert len(endpoint.requests) == 2


@pytest.mark.parametrize(
    ("verdict", "problem"),
    [
        ({**GOOD, "accuracy": 11}, "accuracy: expected a number from 1 to 10"),
        ({**GOOD, "clarity": 0}, "clarity: expected a number from 1 to 10"),
        ({**GOOD, "instruction_following": "9"}, "instruction_following: expected a number from 1 to 10"),
        ({**GOOD, "accuracy": True}, "accuracy: expected a number from 1 to 10"),
        ({"explanation": "x", "accuracy": 8, "clarity": 8}, "missing the field `instruction_following`"),
    ],
)
def test_out_of_range_or_missing_fields_are_never_a_score(tmp_path, verdict, problem):
    with scripted(tmp_path, json.dumps(verdict), json.dumps(verdict)) as (endpoint, client, judge):
        judgement = grade(client, judge)
    assert_unjudged(judgement, problem)
    assert problem in endpoint.requests[1]["messages"][2]["content"]  # the reminder says what was wrong


def test_non_numbers_in_the_json_are_refused(tmp_path):
    reply = '{"explanation": "x", "accuracy": NaN, "clarity": 8, "instruction_following": 8}'
    with scripted(tmp_path, reply, reply) as (_, client, judge):
        assert_unjudged(grade(client, judge), "malformed verdict twice")


# -- failing endpoints -----------------------------------------------------------------------
def test_http_500_is_unjudged_without_a_retry(tmp_path):
    with scripted(tmp_path, 500, json.dumps(GOOD)) as (endpoint, client, judge):
        judgement = grade(client, judge)
    assert_unjudged(judgement, "the judge gpt-judge failed: backend judge answered 500")
    assert len(endpoint.requests) == 1


def test_refused_credentials_are_unjudged_and_the_key_is_never_shown(tmp_path, caplog):
    with scripted(tmp_path, 401) as (_, client, judge):
        judgement = grade(client, judge)
    assert_unjudged(judgement, "refused our credentials (401)")
    assert "sk-test-judge" not in judgement.reason and "sk-test-judge" not in caplog.text


def test_connection_refused_is_unjudged(tmp_path):
    with judge_app(tmp_path, f"http://127.0.0.1:{free_port()}/v1") as (client, judge):
        judgement = grade(client, judge)
    assert_unjudged(judgement, "is unreachable")


def test_too_slow_is_unjudged_after_the_timeout(tmp_path):
    with scripted(tmp_path, 2.0, timeout=0.5) as (_, client, judge):
        started = time.monotonic()
        judgement = grade(client, judge)
        elapsed = time.monotonic() - started
        time.sleep(max(0.0, 2.1 - elapsed))  # let the stalled handler end before its server stops
    assert_unjudged(judgement, "did not answer within 0.5 s")
    assert elapsed < 1.5


def test_an_empty_answer_scores_zero_without_asking(tmp_path):
    with scripted(tmp_path) as (endpoint, client, judge):
        judgement = grade(client, judge, answer="  \n")
    assert judgement == Judgement(score=0.0, reason="the answer is empty")
    assert endpoint.requests == []


def test_long_texts_are_cut_for_the_judge(tmp_path):
    with scripted(tmp_path, max_chars=300) as (endpoint, client, judge):
        grade(client, judge, answer="x" * 5000)
    content = endpoint.requests[0]["messages"][0]["content"]
    assert "[... 4700 characters cut ...]" in content and content.count("x") < 400


# -- the plugin ------------------------------------------------------------------------------
def test_off_unless_enabled_even_when_configured(tmp_path, caplog):
    app = build_app(tmp_path, {"plugins": {"judge": {"model": "gpt-judge"}}})
    assert "judge" not in app.state.gateway.plugins.registry.judges
    record = app.state.gateway.plugins.records["judge"]
    assert not record.enabled and "enabled = true" in record.note
    assert "plugins.judge has settings, but the plugin is off" in caplog.text


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ({}, "plugins.judge.model: the judge needs a model"),
        ({"model": "m", "base_url": "ftp://x"}, "plugins.judge.base_url: expected an http"),
        ({"model": "m", "timeout": 0}, "plugins.judge.timeout"),
        ({"model": "m", "colour": "red"}, "plugins.judge.colour: unknown key"),
        (
            {"model": "m", "accuracy_weight": 0, "clarity_weight": 0, "instruction_following_weight": 0},
            "plugins.judge.accuracy_weight: at least one",
        ),
    ],
)
def test_bad_settings_stop_start_up(tmp_path, table, error):
    with pytest.raises(ConfigError) as caught:
        build_app(tmp_path, {"plugins": {"judge": {"enabled": True, **table}}})
    assert str(caught.value).startswith(error)


def test_routing_never_asks_the_judge(tmp_path):
    endpoint, upstream = JudgeEndpoint(), ReplayState(models=["replay-7b"])
    with aiohttp_in_thread(endpoint.app()) as base, replay_server(upstream) as url:
        judge = {"enabled": True, "model": "gpt-judge", "base_url": f"{base}/v1"}
        app = build_app(tmp_path, {"plugins": {"judge": judge, "openai": {"base_url": url}}})
        with TestClient(app) as client:
            registry = app.state.gateway.plugins.registry
            response = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
            assert response.status_code == 200
            decision = client.get(
                f"/admin/decisions/{response.headers['x-routerd-decision-id']}",
                headers={"Authorization": "Bearer routerd-test-admin-key"},
            ).json()
    assert "judge" in registry.judges and "judge" not in registry.scorers  # a judge, never a scorer
    assert endpoint.requests == []
    assert "judge" not in json.dumps(decision["candidates"])


# -- a model the gateway serves --------------------------------------------------------------
def test_the_served_models_service_calls_a_model_without_routing(tmp_path):
    upstream = ReplayState(models=["replay-7b", "replay-1b", "nomic-embed-text"], reply="Plain answer.")
    with replay_server(upstream) as url:
        app = build_app(tmp_path, {"plugins": {"openai": {"base_url": url}}})
        gateway = app.state.gateway
        request = ChatRequest(messages=[Message(role="user", content="hi")], stream=True)
        with pytest.raises(BackendUnavailable, match="has not started"):
            asyncio.run(gateway.models.chat("replay-1b", request))
        with TestClient(app) as client:
            answer = client.blocking_portal.call(gateway.models.chat, "replay-1b", request)
            vectors = client.blocking_portal.call(gateway.models.embed, "nomic-embed-text", ["a", "b"])
            with pytest.raises(InvalidRequest, match="not a chat model"):
                client.blocking_portal.call(gateway.models.chat, "nomic-embed-text", request)
            with pytest.raises(ModelNotFound, match="no model named 'nope'"):
                client.blocking_portal.call(gateway.models.chat, "nope", request)
            assert sorted(gateway.models.names()) == ["nomic-embed-text", "replay-1b", "replay-7b"]
            assert gateway.models.get("replay-7b").parameters == 7_000_000_000
            assert gateway.decisions.recent == {}  # no routing decision, no audit row
    assert answer.choices[0].message.content == "Plain answer."  # no signature
    assert upstream.requests[0]["model"] == "replay-1b" and not upstream.requests[0].get("stream")
    assert len(vectors.data) == 2


def test_a_judge_the_gateway_serves(tmp_path):
    upstream = ReplayState(models=["judge-70b"], reply="```json\n" + json.dumps(GOOD) + "\n```")
    with replay_server(upstream) as url:
        config = {"plugins": {"openai": {"base_url": url}, "judge": {"enabled": True, "model": "judge-70b"}}}
        app = build_app(tmp_path, config)
        with TestClient(app) as client:
            judge = app.state.gateway.plugins.registry.judges["judge"]
            judgement = grade(client, judge)
            upstream.behaviour["judge-70b"] = "error500"
            failed = grade(client, judge)
    assert judgement.judged and judgement.score == GOOD_SCORE
    assert judgement.reason.startswith("judge-70b: accuracy 10")
    assert upstream.requests[0]["response_format"] == {"type": "json_object"}
    assert ANSWER in upstream.requests[0]["messages"][0]["content"]
    assert_unjudged(failed, "answered 500")


def test_a_served_judge_that_is_not_in_the_catalog_is_unjudged(tmp_path):
    app = build_app(tmp_path, {"plugins": {"judge": {"enabled": True, "model": "absent-model"}}})
    with TestClient(app) as client:
        judgement = grade(client, app.state.gateway.plugins.registry.judges["judge"])
    assert_unjudged(judgement, "no model named 'absent-model'")


# -- the real model as the judge -------------------------------------------------------------
CASES = [
    ("What is 12 times 12?", "144", "144"),
    ("Translate 'thank you' into French.", "Danke schön", "merci"),
    ("Name a primary colour.", "Blue.", None),
]


@pytest.mark.parametrize("response_format", ["json_object_schema", "none"])
def test_gemma_served_by_the_gateway_judges_and_any_answer_is_a_valid_judgement(
    llama_server, tmp_path, response_format
):
    """The bundled Gemma 3 270M (a poor judge) as a model the gateway serves: held to the verdict's
    schema it grades; left free it mostly rambles; either way every result is a valid Judgement."""
    tokens = 100 if response_format != "none" else 48  # left free, it rambles to the limit, twice
    judge_table = {"enabled": True, "model": "gemma-3-270m", "max_tokens": tokens, "response_format": response_format}
    app = build_app(tmp_path, {"plugins": {"llamacpp": {"url": llama_server}, "judge": judge_table}})
    judgements = []
    with TestClient(app) as client:
        judge = app.state.gateway.plugins.registry.judges["judge"]
        for question, answer, reference in CASES:
            features = PromptFeatures(text=question)
            judgements.append(client.blocking_portal.call(judge.judge, features, "someone", answer, reference))
    for judgement in judgements:
        assert isinstance(judgement, Judgement)
        if judgement.judged:
            assert 0.0 <= judgement.score <= 1.0
            assert judgement.reason.startswith("gemma-3-270m: accuracy ")
        else:
            assert judgement.score is None and judgement.reason.startswith("the judge gemma-3-270m ")
    if response_format == "json_object_schema":
        assert any(j.judged for j in judgements), judgements
