"""The gateway end to end with the official openai SDK, in front of OpenAI-compatible upstreams
(replay servers shaped as the OpenAI API documents): chat, streams, embeddings, models, pinning,
parameters, the signature, and every failure the issue lists."""

from __future__ import annotations

import contextlib
import json
import time

import httpx
import openai
import pytest

from ollama_replay import OllamaReplay
from routerd.testing import TEST_ADMIN_KEY, build_app
from servers import ReplayState, replay_server, running_gateway

SIGNATURE = "\n\nModel: {model}"
ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
# A prompt that routing sends to the biggest model (the smaller one is below the size it needs).
HARD = "Prove that the algorithm is correct for every edge case, optimize its complexity, and derive a rigorous bound."


@contextlib.contextmanager
def gateway(tmp_path, big: ReplayState, small: ReplayState | None = None, **config):
    """The gateway with the `openai` plugin on `big` and, if given, the `llamacpp` plugin on
    `small` (llama.cpp servers speak the same API)."""
    with contextlib.ExitStack() as stack:
        plugins = {"openai": {"base_url": stack.enter_context(replay_server(big))}}
        if small is not None:
            plugins["llamacpp"] = {"url": stack.enter_context(replay_server(small)).removesuffix("/v1")}
        settings = {"plugins": plugins, **config}
        base = stack.enter_context(running_gateway(build_app(tmp_path, settings)))
        yield base, openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def big() -> ReplayState:
    return ReplayState(models=["replay-70b"])


@pytest.fixture
def small() -> ReplayState:
    return ReplayState(models=["replay-1b"], reply="Small model answer.")


def test_chat_answers_with_the_signature_and_usage(tmp_path, big):
    with gateway(tmp_path, big) as (_, client):
        raw = client.chat.completions.with_raw_response.create(
            model="routerd", messages=[{"role": "user", "content": "hi"}]
        )
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the replay server.\n\nModel: replay-70b"
    assert completion.model == "replay-70b"
    assert completion.usage.total_tokens == 15
    assert raw.headers["x-routerd-model"] == "replay-70b"
    assert raw.headers["x-routerd-decision-id"].startswith("rd-")


def _stream_with_usage(client) -> list:
    """The chunks of a stream that asks for usage, through the openai SDK."""
    return list(
        client.chat.completions.create(
            model="routerd",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )


def test_stream_relays_chunks_signature_and_usage(tmp_path, big):
    with gateway(tmp_path, big) as (_, client):
        chunks = _stream_with_usage(client)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the replay server.\n\nModel: replay-70b"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 5
    assert big.requests[-1]["stream_options"] == {"include_usage": True}


def _decision(base: str, decision_id: str) -> dict:
    """The audit log's decision once its request has ended (the stream's end is noted just after the last byte)."""
    deadline = time.monotonic() + 5
    while True:
        found = httpx.get(f"{base}/admin/decisions/{decision_id}", headers=ADMIN).json()
        if found["status"] is not None or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_streams_ask_the_backend_for_usage_and_the_audit_log_keeps_its_figures(tmp_path, big):
    """The client did not ask for usage: it gets none, but the backend is asked, and the decision records the
    backend's token counts (9 and 5), not an estimate from the text's length."""
    with gateway(tmp_path, big) as (base, client):
        raw = client.chat.completions.with_raw_response.create(
            model="routerd", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = list(raw.parse())
        decision = _decision(base, raw.headers["x-routerd-decision-id"])
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert big.requests[-1]["stream_options"] == {"include_usage": True}
    assert (decision["status"], decision["prompt_tokens"], decision["completion_tokens"]) == ("ok", 9, 5)


def test_a_backend_that_refuses_stream_options_is_asked_again_without_them_and_never_again(tmp_path, big):
    big.behaviour["replay-70b"] = "no_stream_options"
    with gateway(tmp_path, big) as (base, client):
        first = _stream_with_usage(client)
        asked = len(big.requests)
        raw = client.chat.completions.with_raw_response.create(
            model="routerd", messages=[{"role": "user", "content": "hello there"}], stream=True
        )
        second = list(raw.parse())
        decision = _decision(base, raw.headers["x-routerd-decision-id"])
    for chunks in (first, second):
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Hello from the replay server.\n\nModel: replay-70b"
    assert ["stream_options" in r for r in big.requests] == [True, False, False]
    assert asked == 2
    # the client asked for usage and the backend gives none: routerd's estimate, in the usual last chunk
    assert first[-1].choices == [] and first[-1].usage.prompt_tokens >= 1 and first[-1].usage.completion_tokens > 0
    assert decision["status"] == "ok" and decision["completion_tokens"] > 0


def test_reasoning_and_usage_details_are_relayed_as_the_backend_sends_them(tmp_path, big):
    """The model's reasoning (reasoning_content: DeepSeek, vLLM, llama.cpp) reaches the client, in a stream as
    deltas before the answer, and so do the token details of its usage; the answer is signed as ever. Sent back
    in the next request's history, the reasoning is left out (DeepSeek refuses a request that carries it)."""
    big.reasoning = "Think first then answer"
    with gateway(tmp_path, big) as (_, client):
        answer = client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": "hi"}])
        chunks = _stream_with_usage(client)
        history = [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Hello", "reasoning_content": "Think first"},
            {"role": "user", "content": "again"},
        ]
        client.chat.completions.create(model="routerd", messages=history)
    message = answer.choices[0].message
    assert message.reasoning_content == "Think first then answer"
    assert message.content == "Hello from the replay server.\n\nModel: replay-70b"
    assert answer.usage.completion_tokens_details.reasoning_tokens == 4
    assert answer.usage.prompt_tokens_details.cached_tokens == 3
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = "".join(getattr(d, "reasoning_content", None) or "" for d in deltas)
    assert reasoning == "Think first then answer"
    first_text = next(i for i, d in enumerate(deltas) if d.content)
    assert all(not getattr(d, "reasoning_content", None) for d in deltas[first_text:])
    assert "".join(d.content or "" for d in deltas) == "Hello from the replay server.\n\nModel: replay-70b"
    assert chunks[-1].usage.completion_tokens_details.reasoning_tokens == 4
    assert "reasoning_content" not in big.requests[-1]["messages"][1]


def test_embeddings_one_input_and_a_batch(tmp_path, big):
    with gateway(tmp_path, big) as (_, client):
        one = client.embeddings.create(model="replay-70b", input="hello")
        batch = client.embeddings.create(model="replay-70b", input=["a", "b", "c"])
    assert len(one.data) == 1
    assert [d.index for d in batch.data] == [0, 1, 2]
    assert batch.data[2].embedding == pytest.approx([0.3, 0.2, 0.3])
    assert big.requests[-1] == {"model": "replay-70b", "input": ["a", "b", "c"]}


def test_models_lists_the_gateway_and_both_backends_and_pinning_reaches_each(tmp_path, big, small):
    with gateway(tmp_path, big, small) as (base, client):
        ids = [m.id for m in client.models.list()]
        to_small = client.chat.completions.create(model="replay-1b", messages=[{"role": "user", "content": HARD}])
        to_big = client.chat.completions.create(model="replay-70b", messages=[{"role": "user", "content": HARD}])
        by_query = httpx.post(
            f"{base}/v1/chat/completions?model=replay-1b",
            json={"model": "routerd", "messages": [{"role": "user", "content": HARD}]},
        )
    assert ids[0] == "routerd"
    assert sorted(ids[1:]) == ["replay-1b", "replay-70b"]
    assert to_small.model == "replay-1b" and to_small.choices[0].message.content.startswith("Small model answer.")
    assert to_big.model == "replay-70b"
    assert by_query.json()["model"] == "replay-1b"


def test_real_models_can_be_hidden_from_the_model_list(tmp_path, big):
    with gateway(tmp_path, big, response={"list_real_models": False}, routing={"external_model_name": "team"}) as (
        _,
        client,
    ):
        assert [m.id for m in client.models.list()] == ["team"]


def test_standard_parameters_are_passed_through(tmp_path, big):
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    with gateway(tmp_path, big) as (_, client):
        client.chat.completions.create(
            model="routerd",
            messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}],
            temperature=0.3,
            top_p=0.9,
            n=1,
            max_tokens=12,
            stop=["\n"],
            presence_penalty=0.1,
            frequency_penalty=0.2,
            logit_bias={"50256": -100},
            user="u1",
            seed=7,
            logprobs=True,
            top_logprobs=2,
            tools=tools,
            tool_choice="auto",
        )
    sent = big.requests[-1]
    assert sent["model"] == "replay-70b"
    expected = {
        "temperature": 0.3,
        "top_p": 0.9,
        "n": 1,
        "max_tokens": 12,
        "stop": ["\n"],
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "logit_bias": {"50256": -100},
        "user": "u1",
        "seed": 7,
        "logprobs": True,
        "top_logprobs": 2,
        "tools": tools,
        "tool_choice": "auto",
    }
    assert {key: sent[key] for key in expected} == expected


NEWER = {
    "reasoning_effort": "high",
    "verbosity": "low",
    "service_tier": "flex",
    "store": True,
    "metadata": {"team": "search"},
    "prompt_cache_key": "k1",
    "safety_identifier": "user-42",
    "prediction": {"type": "content", "content": "Hello"},
    "web_search_options": {"search_context_size": "low"},
}


def test_newer_standard_parameters_are_passed_through(tmp_path, big):
    with gateway(tmp_path, big) as (_, client):
        client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": "hi"}], **NEWER)
        list(
            client.chat.completions.create(
                model="routerd", messages=[{"role": "user", "content": "hi"}], stream=True, **NEWER
            )
        )
    for sent in big.requests:
        assert {key: sent.get(key) for key in NEWER} == NEWER


def test_a_model_that_refuses_a_parameter_is_asked_again_without_it(tmp_path, big):
    """Routing may send a request with a reasoning effort to a model that does not reason: OpenAI refuses it
    (a 400 naming the parameter), so it is asked again without that parameter, the rest kept, and not sent it
    again; a 400 about anything else is the client's error, passed on."""
    big.behaviour["replay-70b"] = "no_reasoning"
    with gateway(tmp_path, big) as (base, client):
        answer = client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": "hi"}], **NEWER)
        streamed = list(
            client.chat.completions.create(
                model="routerd", messages=[{"role": "user", "content": "hi"}], stream=True, **NEWER
            )
        )
        big.behaviour["replay-70b"] = "error400"
        refused = httpx.post(
            f"{base}/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}], **NEWER}
        )
    assert answer.choices[0].message.content.startswith("Hello from the replay server.")
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices).startswith("Hello from")
    assert ["reasoning_effort" in r for r in big.requests] == [True, False, False, False]
    rest = {key: value for key, value in NEWER.items() if key != "reasoning_effort"}
    assert all({key: r.get(key) for key in rest} == rest for r in big.requests)
    assert refused.status_code == 400 and "string too long" in refused.json()["error"]["message"]
    assert len(big.requests) == 4  # the other 400 was not asked again


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"temperature": 3}, "temperature"),
        ({"n": 0}, "n"),
        ({"top_p": -1}, "top_p"),
        ({"messages": []}, "messages"),
        ({"metadata": {"k": "v" * 513}}, "metadata"),
        ({"reasoning_effort": ""}, "reasoning_effort"),
    ],
)
def test_invalid_parameters_are_400_naming_the_parameter(tmp_path, big, extra, param):
    body = {"model": "routerd", "messages": [{"role": "user", "content": "hi"}], **extra}
    with gateway(tmp_path, big) as (base, _):
        response = httpx.post(f"{base}/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert big.requests == []


def test_json_mode_answers_carry_no_signature(tmp_path, big):
    big.reply = '{"ok": true}'
    with gateway(tmp_path, big) as (_, client):
        completion = client.chat.completions.create(
            model="routerd", messages=[{"role": "user", "content": "json"}], response_format={"type": "json_object"}
        )
    assert completion.choices[0].message.content == '{"ok": true}'


def test_an_echoed_signature_is_stripped_never_doubled(tmp_path, big):
    big.reply = "Sure.\n\nModel: replay-70b"  # the model copies the signature it saw
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello!\n\nModel: replay-70b"},
        {"role": "user", "content": "again"},
    ]
    with gateway(tmp_path, big) as (_, client):
        answer = client.chat.completions.create(model="routerd", messages=history)
        streamed = "".join(
            c.choices[0].delta.content or ""
            for c in client.chat.completions.create(model="routerd", messages=history, stream=True)
            if c.choices
        )
    assert big.requests[0]["messages"][1]["content"] == "Hello!"
    assert answer.choices[0].message.content == "Sure.\n\nModel: replay-70b"
    assert streamed == "Sure.\n\nModel: replay-70b"


def test_signature_format_is_configurable_and_can_be_switched_off(tmp_path, big):
    with gateway(tmp_path, big, response={"signature": "\n-- via {model}"}) as (_, client):
        text = client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": HARD}])
    assert text.choices[0].message.content.endswith("server.\n-- via replay-70b")
    with gateway(tmp_path, big, response={"signature": ""}) as (_, client):
        text = client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": HARD}])
    assert text.choices[0].message.content == "Hello from the replay server."


def test_unknown_model_is_404(tmp_path, big):
    with gateway(tmp_path, big) as (_, client), pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": HARD}])
    assert caught.value.code == "model_not_found"


def test_images_need_a_vision_model(tmp_path, big):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    content = [{"type": "text", "text": "what is this?"}, image]
    with gateway(tmp_path, big) as (_, client), pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": content}])
    assert "vision" in caught.value.message
    assert big.requests == []


def test_malformed_and_oversized_bodies_are_clear_400s(tmp_path, big):
    with gateway(tmp_path, big, server={"max_body_bytes": 4096}) as (base, _):
        broken = httpx.post(
            f"{base}/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
        )
        huge = httpx.post(f"{base}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x" * 10_000}]})
        empty = httpx.post(f"{base}/v1/chat/completions", content=b"")
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]["message"]
    assert huge.status_code == 413 and huge.json()["error"]["type"] == "invalid_request_error"
    assert empty.status_code == 400
    assert big.requests == []


def test_unreachable_backend_is_a_503_in_the_openai_shape(tmp_path, big):
    with contextlib.ExitStack() as upstream:
        url = upstream.enter_context(replay_server(big))
        with running_gateway(build_app(tmp_path, {"plugins": {"openai": {"base_url": url}}})) as base:
            upstream.close()  # the backend dies after discovery: connections are refused from now on
            response = httpx.post(f"{base}/v1/chat/completions", json={"messages": [{"role": "user", "content": HARD}]})
    assert response.status_code == 503
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"] == "backend openai is unreachable"


def test_malformed_upstream_answer_falls_back_to_the_next_model(tmp_path, big, small):
    big.behaviour["replay-70b"] = "malformed"
    with gateway(tmp_path, big, small) as (_, client):
        raw = client.chat.completions.with_raw_response.create(
            model="routerd", messages=[{"role": "user", "content": HARD}]
        )
    assert raw.headers["x-routerd-model"] == "replay-1b"
    assert raw.parse().choices[0].message.content.startswith("Small model answer.")


def test_killed_backend_falls_back_is_taken_out_and_probed_back_in(tmp_path, big, small):
    config = {"dispatch": {"breaker_failures": 2, "breaker_cooldown": 0.3}}
    with gateway(tmp_path, big, small, **config) as (_, client):
        ask = lambda: client.chat.completions.with_raw_response.create(  # noqa: E731
            model="routerd", messages=[{"role": "user", "content": HARD}]
        ).headers["x-routerd-model"]
        assert ask() == "replay-70b"
        big.down = True
        assert [ask(), ask()] == ["replay-1b", "replay-1b"]  # each tried the big one first, then fell back
        tried = len(big.requests)
        assert ask() == "replay-1b"
        assert len(big.requests) == tried  # out of rotation: not even tried
        big.down = False
        deadline = time.monotonic() + 10
        while ask() != "replay-70b":  # the probe puts it back after the cooldown
            assert time.monotonic() < deadline, "the recovered backend was never probed back in"
            time.sleep(0.1)


def test_upstream_dying_mid_stream_ends_with_an_error_event(tmp_path, big, small):
    big.behaviour["replay-70b"] = "die"
    with gateway(tmp_path, big, small) as (base, client):
        stream = client.chat.completions.create(
            model="routerd", messages=[{"role": "user", "content": HARD}], stream=True
        )
        received = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                received.append(chunk)
        raw = httpx.post(
            f"{base}/v1/chat/completions", json={"messages": [{"role": "user", "content": HARD}], "stream": True}
        ).text
    assert "Hello" in "".join(c.choices[0].delta.content or "" for c in received if c.choices)
    assert all(c.choices[0].finish_reason is None for c in received if c.choices)  # no fake finish_reason
    assert "replay-70b" not in caught.value.message or "backend" in caught.value.message
    assert '"error"' in raw and "[DONE]" not in raw
    assert small.requests == []  # bytes were sent: never a fallback after that


def test_a_stream_the_upstream_ends_without_a_finish_reason_ends_with_an_error_event(tmp_path, big, small):
    """[DONE] with no finish_reason before it (llama_cpp.server's interrupted stream) is an answer cut short:
    the client gets what came, then an error event, never a clean end."""
    big.behaviour["replay-70b"] = "cut"
    with gateway(tmp_path, big, small) as (base, client):
        received = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in client.chat.completions.create(
                model="routerd", messages=[{"role": "user", "content": HARD}], stream=True
            ):
                received.append(chunk)
        raw = httpx.post(
            f"{base}/v1/chat/completions", json={"messages": [{"role": "user", "content": HARD}], "stream": True}
        ).text
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices).startswith("Hello")
    assert all(c.choices[0].finish_reason is None for c in received if c.choices)
    assert "ended the stream before the answer finished" in caught.value.message
    assert '"code":"stream_incomplete"' in raw and "[DONE]" not in raw and "Model: " not in raw
    assert small.requests == []


def test_client_disconnect_closes_the_upstream_request_within_a_second(tmp_path, big):
    big.behaviour["replay-70b"] = "slow"
    with gateway(tmp_path, big) as (base, _):
        body = {"messages": [{"role": "user", "content": HARD}], "stream": True}
        with httpx.stream("POST", f"{base}/v1/chat/completions", json=body, timeout=10) as response:
            for line in response.iter_lines():
                if "Hello" in line:
                    break
            closed_at = time.monotonic()
        deadline = closed_at + 1.0
        while big.disconnected_at is None and time.monotonic() < deadline + 1:
            time.sleep(0.02)
    assert big.disconnected_at is not None, "the upstream request was never closed"
    assert big.disconnected_at - closed_at < 1.0


def test_first_token_timeout_moves_on_to_the_next_model(tmp_path, big, small):
    big.behaviour["replay-70b"] = "stall_first"
    with gateway(tmp_path, big, small, dispatch={"first_token_timeout": 0.5}) as (_, client):
        started = time.monotonic()
        stream = client.chat.completions.with_raw_response.create(
            model="routerd", messages=[{"role": "user", "content": HARD}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
        elapsed = time.monotonic() - started
    assert stream.headers["x-routerd-model"] == "replay-1b"
    assert text.startswith("Small model answer.")
    assert elapsed < 4  # the big model stalls for 5 s


@pytest.mark.parametrize(
    ("behaviour", "dispatch", "message"),
    [
        ("stall", {"idle_timeout": 0.5}, "silent for 0.5 s"),
        ("slow", {"generation_timeout": 1.5}, "longer than 1.5 s"),
    ],
)
def test_idle_and_total_timeouts_end_the_stream_with_an_error(tmp_path, big, behaviour, dispatch, message):
    big.behaviour["replay-70b"] = behaviour
    with gateway(tmp_path, big, dispatch=dispatch) as (_, client):
        stream = client.chat.completions.create(
            model="routerd", messages=[{"role": "user", "content": HARD}], stream=True
        )
        with pytest.raises(openai.APIError, match=message):
            for _ in stream:
                pass


def test_an_upstream_400_is_the_clients_mistake_and_is_not_retried(tmp_path, big, small):
    big.behaviour["replay-70b"] = "error400"
    with gateway(tmp_path, big, small) as (_, client), pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": HARD}])
    assert "string too long" in caught.value.message
    assert caught.value.param == "messages[0].content"  # the upstream's, passed on
    assert small.requests == []


def test_a_model_the_backend_no_longer_has_falls_back_without_tripping_the_breaker(tmp_path, big, small):
    big.behaviour["replay-70b"] = "error404"
    with gateway(tmp_path, big, small, dispatch={"breaker_failures": 1}) as (_, client):
        for _ in range(2):
            answer = client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": HARD}])
            assert answer.model == "replay-1b"
    assert len(big.requests) == 2  # still tried: a missing model says nothing about the backend's health


def test_embeddings_in_base64_as_the_sdk_asks_by_default(tmp_path, big):
    with gateway(tmp_path, big) as (base, client):
        decoded = client.embeddings.create(model="replay-70b", input=["a", "b"])  # the SDK asks for base64
        raw = httpx.post(
            f"{base}/v1/embeddings", json={"model": "replay-70b", "input": "a", "encoding_format": "base64"}
        )
        bad = httpx.post(f"{base}/v1/embeddings", json={"model": "replay-70b", "input": "a", "encoding_format": "hex"})
    assert decoded.data[1].embedding == pytest.approx([0.2, 0.2, 0.3])
    assert isinstance(raw.json()["data"][0]["embedding"], str)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "encoding_format"


def test_responses_and_chunks_name_their_object_type(tmp_path, big):
    with gateway(tmp_path, big) as (base, _):
        body = {"messages": [{"role": "user", "content": "hi"}]}
        answer = httpx.post(f"{base}/v1/chat/completions", json=body).json()
        events = httpx.post(f"{base}/v1/chat/completions", json={**body, "stream": True}).text
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["finish_reason"] == "stop"
    chunks = [json.loads(line[6:]) for line in events.splitlines() if line.startswith("data: {")]
    assert chunks and all(c["object"] == "chat.completion.chunk" for c in chunks)  # ours (signature) too


def test_an_openai_compatible_and_an_ollama_server_at_once(tmp_path, big):
    """/v1/models lists both backends' models, and pinning reaches each."""
    ollama = OllamaReplay()
    ollama.start()
    try:
        with replay_server(big) as openai_url:
            config = {"plugins": {"openai": {"base_url": openai_url}, "ollama": {"url": ollama.url}}}
            with running_gateway(build_app(tmp_path, config)) as base:
                client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
                ids = [m.id for m in client.models.list()]
                from_ollama = client.chat.completions.create(
                    model="llama3.2:latest", messages=[{"role": "user", "content": "hi"}]
                )
                from_openai = client.chat.completions.create(
                    model="replay-70b", messages=[{"role": "user", "content": "hi"}]
                )
    finally:
        ollama.stop()
    assert ids[0] == "routerd" and {"replay-70b", "llama3.2:latest"} <= set(ids)
    assert from_ollama.model == "llama3.2:latest" and ollama.count("/api/chat") == 1
    assert from_openai.model == "replay-70b" and big.requests[-1]["model"] == "replay-70b"
