"""Parameters mean what they say (issue 13), end to end with the openai SDK against a served gateway: unknown
parameters are refused as OpenAI refuses them, vendor sampling parameters reach the backend, the legacy
``functions`` / ``function_call`` work as tools (streamed and not), a prompt over every context window is a 400
``context_length_exceeded`` (from routing, and from backends that refuse it), and a client's mistakes never take a
backend out of rotation.

The backends: the local replay server (OpenAI's shapes; tests/servers.py), with a few rules of an upstream added
here (a refused ``json_schema``, a streamed tool call, a failure whose message carries a traceback); the fake
backend; and, as a plugin of this module, `Windowed`: models whose servers hold fewer tokens than their metadata
says (a llama.cpp server runs with an ``n_ctx`` below the ``n_ctx_train`` it reports), which refuse a longer prompt
as backends do, with `routerd.ContextLengthExceeded`."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from importlib.metadata import EntryPoint
from typing import Any

import httpx
import openai
import pytest
from aiohttp import web

import routerd
from conftest import fixture_plugin
from routerd.testing import FAKE_PLUGIN, FakeBackend, build_app
from servers import ReplayState, aiohttp_in_thread, chunk, replay_app, running_gateway

WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
TOOL_MODELS = {"models": {"tool-7b": {"tools": True}, "plain-7b": {"tools": False}}}
HARD = "Prove that the algorithm is correct for every edge case, optimize it, and derive a rigorous bound."
BEST = {"X-Routerd-Quality-Preference": "1"}  # with HARD: the largest model first

Rule = Callable[[web.Request, dict[str, Any]], Awaitable[web.StreamResponse | None]]


def client_of(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


@contextlib.contextmanager
def upstream(state: ReplayState, rule: Rule | None = None) -> Iterator[str]:
    """The replay server, with `rule` answering the chat requests it has an answer for; yields its /v1 URL."""
    app = replay_app(state)
    if rule is not None:

        @web.middleware
        async def rules(request: web.Request, handler):
            if request.method == "POST" and request.path == "/v1/chat/completions":
                body = await request.json()
                answer = await rule(request, body)
                if answer is not None:
                    state.requests.append(body)
                    return answer
            return await handler(request)

        app.middlewares.append(rules)
    with aiohttp_in_thread(app) as base:
        yield f"{base}/v1"


@contextlib.contextmanager
def gateway(tmp_path, state: ReplayState, rule: Rule | None = None, extra=(), **config) -> Iterator[tuple[str, Any]]:
    """A gateway on the replay server (the `openai` plugin); yields (base URL, app)."""
    with upstream(state, rule) as url:
        plugins = {"openai": {"base_url": url}, **config.pop("plugins", {})}
        app = build_app(tmp_path, {"plugins": plugins, **config}, list(extra))
        with running_gateway(app) as base:
            yield base, app


def ask(client: openai.OpenAI, text: str = "Hi", headers: dict | None = None, **body: Any):
    return client.chat.completions.with_raw_response.create(
        model=body.pop("model", "routerd"), messages=[{"role": "user", "content": text}], extra_headers=headers, **body
    )


# -- unknown parameters -----------------------------------------------------------------------------------------


def test_an_unknown_or_misspelt_parameter_is_a_400_that_names_it_as_openai_does(tmp_path) -> None:
    app = build_app(tmp_path, {}, [FAKE_PLUGIN])
    with running_gateway(app) as base:
        client = client_of(base)
        with pytest.raises(openai.BadRequestError) as misspelt:
            ask(client, extra_body={"temprature": 0.2})
        with pytest.raises(openai.BadRequestError) as several:
            ask(client, extra_body={"frobnicate": 1, "top_k": 5, "best_of": 2})
        with pytest.raises(openai.BadRequestError) as streamed:
            client.chat.completions.create(
                model="routerd", messages=[{"role": "user", "content": "Hi"}], stream=True, extra_body={"seeed": 1}
            )
        raw = httpx.post(f"{base}/v1/chat/completions", json={"messages": [{"role": "user", "content": "x"}], "x": 1})
        fine = ask(client, temperature=0.2)
        backend = app.state.gateway.plugins.registry.backends["fake"]
    assert misspelt.value.status_code == 400
    assert misspelt.value.body == {
        "message": "Unrecognized request argument supplied: temprature",
        "type": "invalid_request_error",
        "param": "temprature",
        "code": "unknown_parameter",
    }
    assert several.value.body["message"] == "Unrecognized request arguments supplied: frobnicate, best_of"
    assert several.value.body["param"] == "frobnicate"
    assert streamed.value.body["param"] == "seeed"
    assert raw.status_code == 400 and raw.json()["error"]["code"] == "unknown_parameter"
    assert "Traceback" not in raw.text
    assert fine.http_response.status_code == 200
    assert backend.calls == [("chat", backend.calls[0][1])]  # only the valid request reached a model


def test_vendor_sampling_parameters_reach_an_openai_compatible_backend_and_are_validated(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"])
    vendor = {"top_k": 40, "min_p": 0.05, "typical_p": 0.9, "repeat_penalty": 1.1, "repetition_penalty": 1.05}
    with gateway(tmp_path, state) as (base, _app):
        client = client_of(base)
        answer = ask(client, extra_body=vendor).parse()
        with pytest.raises(openai.BadRequestError) as negative:
            ask(client, extra_body={"top_k": -1})
        with pytest.raises(openai.BadRequestError) as over_one:
            ask(client, extra_body={"min_p": 1.5})
    assert answer.choices[0].message.content.startswith("Hello from the replay server.")
    assert {name: state.requests[0].get(name) for name in vendor} == vendor
    assert negative.value.body["param"] == "top_k" and over_one.value.body["param"] == "min_p"
    assert len(state.requests) == 1


def test_unknown_fields_inside_messages_are_left_out_not_refused(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"])
    history = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!", "reasoning_content": "greet back", "audio": None},
        {"role": "user", "content": "How are you?"},
    ]
    with gateway(tmp_path, state) as (base, _app):
        answer = client_of(base).chat.completions.create(model="routerd", messages=history)
    assert answer.choices[0].message.content.startswith("Hello from the replay server.")
    assert state.requests[0]["messages"][1] == {"role": "assistant", "content": "Hello!"}


def test_embeddings_refuse_unknown_parameters_and_a_size_the_model_cannot_give(tmp_path) -> None:
    config = {"plugins": {"fake": {"models": [{"name": "nomic-embed-text", "embeddings": True}]}}}
    with running_gateway(build_app(tmp_path, config, [FAKE_PLUGIN])) as base:
        client = client_of(base)
        with pytest.raises(openai.BadRequestError) as unknown:
            client.embeddings.create(model="nomic-embed-text", input="hi", extra_body={"truncate": True})
        own_size = client.embeddings.create(model="nomic-embed-text", input="hi", dimensions=8)
        with pytest.raises(openai.BadRequestError) as shorter:
            client.embeddings.create(model="nomic-embed-text", input="hi", dimensions=4)
    assert unknown.value.body["message"] == "Unrecognized request argument supplied: truncate"
    assert unknown.value.body["code"] == "unknown_parameter"
    assert len(own_size.data[0].embedding) == 8
    assert shorter.value.body["param"] == "dimensions"
    assert "makes vectors of 8 dimensions" in shorter.value.body["message"]


def test_audio_output_is_refused_by_name_and_text_output_asked_for_passes(tmp_path) -> None:
    state = ReplayState(models=["replay-7b"])
    with gateway(tmp_path, state) as (base, _app):
        client = client_of(base)
        text = ask(client, modalities=["text"]).parse()
        with pytest.raises(openai.BadRequestError) as modalities:
            ask(client, modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"})
        with pytest.raises(openai.BadRequestError) as audio:
            ask(client, audio={"voice": "alloy", "format": "wav"})
    assert text.choices[0].message.content.startswith("Hello from the replay server.")
    assert audio.value.body["param"] == "audio" and audio.value.body["code"] == "unsupported_parameter"
    assert modalities.value.body["param"] in ("audio", "modalities")
    assert len(state.requests) == 1


# -- legacy functions -------------------------------------------------------------------------------------------


def tool_state() -> ReplayState:
    state = ReplayState(models=["tool-7b", "plain-7b"], behaviour={"tool-7b": "tools", "plain-7b": "tools"})
    state.tool_calls = [("get_weather", '{"city": "Oslo"}')]
    return state


@pytest.mark.parametrize("as_stream", [True, False])
def test_a_json_request_is_asked_as_a_stream_and_its_tool_calls_assembled(tmp_path, as_stream) -> None:
    """dispatch.stream_json_requests: a JSON request goes upstream as a stream, so first-token and idle deadlines
    hold for it, and the client gets the completion the stream amounts to: tool calls put together from their
    pieces (id, type and name first, the arguments in two pieces), finish_reason, the stream's usage."""
    state = tool_state()
    config = {"dispatch": {"stream_json_requests": as_stream}}
    with gateway(tmp_path, state, **TOOL_MODELS, **config) as (base, _app):
        answer = client_of(base).chat.completions.create(
            model="routerd",
            messages=[{"role": "user", "content": "What is the weather in Oslo?"}],
            tools=[{"type": "function", "function": WEATHER}],
        )
    assert bool(state.requests[0].get("stream")) is as_stream
    choice = answer.choices[0]
    call = choice.message.tool_calls[0]
    assert (call.type, call.function.name, json.loads(call.function.arguments)) == (
        "function",
        "get_weather",
        {"city": "Oslo"},
    )
    assert call.id.startswith("call_0_") and choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert answer.usage.total_tokens == (14 if as_stream else 15)


def test_legacy_functions_are_sent_as_tools_and_answered_in_the_legacy_form(tmp_path) -> None:
    state = tool_state()
    with gateway(tmp_path, state, **TOOL_MODELS) as (base, _app):
        client = client_of(base)
        raw = client.chat.completions.with_raw_response.create(
            model="routerd",
            messages=[{"role": "user", "content": "What is the weather in Oslo?"}],
            functions=[WEATHER],
            function_call="auto",
        )
        named = client.chat.completions.create(
            model="routerd",
            messages=[{"role": "user", "content": "What is the weather in Oslo?"}],
            functions=[WEATHER],
            function_call={"name": "get_weather"},
        )
    answer = raw.parse()
    choice = answer.choices[0]
    assert raw.headers["x-routerd-model"] == "tool-7b"  # functions need a model that calls tools
    assert choice.finish_reason == "function_call"
    assert choice.message.function_call.name == "get_weather"
    assert json.loads(choice.message.function_call.arguments) == {"city": "Oslo"}
    assert choice.message.tool_calls is None and choice.message.content is None
    sent = state.requests[0]
    assert sent["tools"] == [{"type": "function", "function": WEATHER}]
    assert sent["tool_choice"] == "auto"
    assert "functions" not in sent and "function_call" not in sent
    assert state.requests[1]["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert named.choices[0].message.function_call.name == "get_weather"


def test_a_legacy_conversation_goes_upstream_as_tool_calls_with_matching_ids(tmp_path) -> None:
    state = tool_state()
    conversation = [
        {"role": "user", "content": "What is the weather in Oslo?"},
        {
            "role": "assistant",
            "content": None,
            "function_call": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
        },
        {"role": "function", "name": "get_weather", "content": '{"sky": "clear", "celsius": 4}'},
    ]
    with gateway(tmp_path, state, **TOOL_MODELS) as (base, _app):
        answer = client_of(base).chat.completions.create(model="routerd", messages=conversation, functions=[WEATHER])
        with pytest.raises(openai.BadRequestError) as nameless:
            client_of(base).chat.completions.create(
                model="routerd",
                messages=[*conversation[:2], {"role": "function", "content": "4 C"}],
                functions=[WEATHER],
            )
        # a result whose call the history does not hold (a client that kept only the results)
        client_of(base).chat.completions.create(
            model="routerd", messages=[conversation[0], conversation[2]], functions=[WEATHER]
        )
    call, result = state.requests[0]["messages"][1:]
    assert call["role"] == "assistant" and "function_call" not in call
    assert call["tool_calls"] == [
        {"id": "call_legacy_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'}}
    ]
    assert result == {"role": "tool", "content": '{"sky": "clear", "celsius": 4}', "tool_call_id": "call_legacy_1"}
    assert answer.choices[0].message.content.startswith('The tools said: {"sky": "clear", "celsius": 4}')
    assert answer.choices[0].finish_reason == "stop"
    assert nameless.value.body["param"] == "messages[2].name"
    assert state.requests[1]["messages"][1:] == [
        {
            "role": "assistant",
            "tool_calls": [
                {"id": "call_legacy_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "content": '{"sky": "clear", "celsius": 4}', "tool_call_id": "call_legacy_1"},
    ]
    assert len(state.requests) == 2


async def streamed_tool_call(request: web.Request, body: dict[str, Any]) -> web.StreamResponse | None:
    """A streamed tool call, chunked as OpenAI's API streams one (the arguments in pieces)."""
    if not (body.get("stream") and body.get("tools")):
        return None
    model = body["model"]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    first = {"index": 0, "id": "call_Xy1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    await response.write(chunk(model, {"role": "assistant", "content": None, "tool_calls": [first]}))
    for piece in ('{"ci', 'ty": "Os', 'lo"}'):
        await response.write(chunk(model, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    await response.write(chunk(model, {}, finish="tool_calls"))
    await response.write(b"data: [DONE]\n\n")
    return response


def test_a_streamed_legacy_function_call_arrives_as_function_call_deltas(tmp_path) -> None:
    state = tool_state()
    with gateway(tmp_path, state, streamed_tool_call, **TOOL_MODELS) as (base, _app):
        client = client_of(base)
        legacy = list(
            client.chat.completions.create(
                model="routerd",
                messages=[{"role": "user", "content": "What is the weather in Oslo?"}],
                functions=[WEATHER],
                stream=True,
            )
        )
        modern = list(
            client.chat.completions.create(
                model="routerd",
                messages=[{"role": "user", "content": "What is the weather in Oslo?"}],
                tools=[{"type": "function", "function": WEATHER}],
                stream=True,
            )
        )
    deltas = [c.choices[0].delta for c in legacy if c.choices]
    assert all(d.tool_calls is None for d in deltas)
    calls = [d.function_call for d in deltas if d.function_call is not None]
    assert calls[0].name == "get_weather"
    assert json.loads("".join(c.arguments or "" for c in calls)) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in legacy if c.choices][-1] == "function_call"
    assert "".join(d.content or "" for d in deltas) == ""  # no signature on a function call
    assert state.requests[0]["tools"] == [{"type": "function", "function": WEATHER}]
    tool_deltas = [c.choices[0].delta for c in modern if c.choices]
    assert any(d.tool_calls for d in tool_deltas) and all(d.function_call is None for d in tool_deltas)
    assert [c.choices[0].finish_reason for c in modern if c.choices][-1] == "tool_calls"


def test_a_cached_tool_call_goes_back_in_the_form_each_client_asked_for(tmp_path) -> None:
    state = tool_state()
    question = "What is the weather in Oslo?"
    with gateway(tmp_path, state, None, [fixture_plugin("memory_cache")], **TOOL_MODELS) as (base, app):
        client = client_of(base)
        modern = ask(client, question, tools=[{"type": "function", "function": WEATHER}], temperature=0)
        cache = app.state.gateway.plugins.registry.caches["memory"]
        deadline = time.monotonic() + 5
        while not cache.stored:
            assert time.monotonic() < deadline, "the answer was never stored"
            time.sleep(0.01)
        legacy = ask(client, question, functions=[WEATHER], temperature=0)
        streamed = list(
            client.chat.completions.create(
                model="routerd",
                messages=[{"role": "user", "content": question}],
                functions=[WEATHER],
                temperature=0,
                stream=True,
            )
        )
    assert modern.parse().choices[0].message.tool_calls[0].function.name == "get_weather"
    assert legacy.headers["x-routerd-cache"] == "hit"
    choice = legacy.parse().choices[0]
    assert choice.finish_reason == "function_call" and choice.message.tool_calls is None
    assert choice.message.function_call.name == "get_weather"
    deltas = [c.choices[0].delta for c in streamed if c.choices]
    calls = [d.function_call for d in deltas if d.function_call is not None]
    assert [c.name for c in calls] == ["get_weather"] and json.loads(calls[0].arguments) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in streamed if c.choices][-1] == "function_call"
    assert len(state.requests) == 1  # both legacy answers came from the cache


def test_functions_where_no_model_calls_tools_are_a_clear_400(tmp_path) -> None:
    state = ReplayState(models=["plain-7b"])
    with gateway(tmp_path, state, models={"plain-7b": {"tools": False}}) as (base, _app):
        with pytest.raises(openai.BadRequestError) as refused:
            client_of(base).chat.completions.create(
                model="routerd", messages=[{"role": "user", "content": "Weather?"}], functions=[WEATHER]
            )
        plain = ask(client_of(base)).parse()
    assert refused.value.body == {
        "message": "no model with tools is available for this request",
        "type": "invalid_request_error",
        "param": "tools",
        "code": "no_capable_model",
    }
    assert plain.choices[0].message.content.startswith("Hello from the replay server.")
    assert len(state.requests) == 1


def test_functions_with_tools_or_function_call_alone_are_refused(tmp_path) -> None:
    state = tool_state()
    with gateway(tmp_path, state, **TOOL_MODELS) as (base, _app):
        client = client_of(base)
        with pytest.raises(openai.BadRequestError) as both:
            ask(client, functions=[WEATHER], tools=[{"type": "function", "function": WEATHER}])
        with pytest.raises(openai.BadRequestError) as alone:
            ask(client, function_call="auto")
        with pytest.raises(openai.BadRequestError) as nameless:
            ask(client, functions=[{"description": "no name"}])
        with pytest.raises(openai.BadRequestError) as bogus:
            ask(client, functions=[WEATHER], function_call="sometimes")
    assert both.value.body["param"] == "functions" and "cannot be used together" in both.value.body["message"]
    assert alone.value.body["param"] == "function_call"
    assert nameless.value.body["param"] == "functions[0]"
    assert bogus.value.body["param"] == "function_call"
    assert state.requests == []


# -- context length: routing ------------------------------------------------------------------------------------

WINDOWS = {
    "models": [
        {"name": "mini-1b", "parameters": 1_000_000_000, "context_window": 100},
        {"name": "midi-7b", "parameters": 7_000_000_000, "context_window": 200, "tools": True},
        {"name": "wide-1b", "parameters": 1_000_000_000, "context_window": 100_000},
    ]
}
LONG = "word " * 800  # 4,000 characters: ~1,000 tokens


def test_a_prompt_over_every_window_is_a_400_context_length_exceeded_routed_or_pinned(tmp_path) -> None:
    config = {"plugins": {"fake": WINDOWS}}
    tools = [{"type": "function", "function": WEATHER}]
    app = build_app(tmp_path, config, [FAKE_PLUGIN])
    with running_gateway(app) as base:
        client = client_of(base)
        held = ask(client, LONG)  # wide-1b holds it
        with pytest.raises(openai.BadRequestError) as routed:
            ask(client, LONG, tools=tools)  # wide-1b cannot call tools; midi-7b can, but holds 200 tokens
        with pytest.raises(openai.BadRequestError) as pinned:
            ask(client, LONG, model="mini-1b")
        with pytest.raises(openai.BadRequestError) as incapable:
            ask(client, LONG, model="wide-1b", tools=tools)  # it cannot call tools, however long the prompt
        with pytest.raises(openai.BadRequestError) as nothing_sees:
            client.chat.completions.create(
                model="routerd",
                messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:,x"}}]}],
            )
        backend = app.state.gateway.plugins.registry.backends["fake"]
    assert held.headers["x-routerd-model"] == "wide-1b"
    assert routed.value.body == {
        "message": "This model's maximum context length is 200 tokens (the largest of the models that could answer "
        "this request). However, your messages resulted in 1000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    assert pinned.value.body["code"] == "context_length_exceeded"
    assert pinned.value.body["message"].startswith("This model's maximum context length is 100 tokens. However,")
    assert incapable.value.body["code"] == "model_incapable"
    assert nothing_sees.value.body["code"] == "no_capable_model"
    assert nothing_sees.value.body["param"] == "messages" and "vision" in nothing_sees.value.message
    assert backend.calls == [("chat", "wide-1b")]


# -- context length: backends that refuse it --------------------------------------------------------------------


class Windowed(FakeBackend):
    """Serves one model whose server holds `holds` tokens, whatever its metadata says: a longer prompt is refused
    as backends refuse one (`routerd.ContextLengthExceeded`)."""

    def __init__(self, name: str, model: routerd.ModelInfo, holds: int) -> None:
        super().__init__(name, [model], f"answered by {model.name}")
        self.holds = holds

    def _check(self, model: str, request: routerd.ChatRequest) -> None:
        tokens = sum(len(m.text()) for m in request.messages) // 4
        if tokens > self.holds:
            raise routerd.ContextLengthExceeded(
                f"This model's maximum context length is {self.holds} tokens. However, your messages resulted in "
                f"{tokens} tokens. Please reduce the length of the messages."
            )

    async def chat(self, model, request):
        self.calls.append(("chat", model))
        self._check(model, request)
        return await super().chat(model, request)

    async def stream(self, model, request):
        pieces = super().stream(model, request)
        first = await anext(pieces)  # the fake backend records the call
        self._check(model, request)
        yield first
        async for piece in pieces:
            yield piece


@routerd.hookimpl
def register_backends(register, context) -> None:
    # "short-70b" is ranked first (the bigger) and its server holds 64 tokens; "long-7b"'s holds 1,000.
    short = routerd.ModelInfo(name="short-70b", backend="short", parameters=70_000_000_000, context_window=4096)
    long = routerd.ModelInfo(name="long-7b", backend="long", parameters=7_000_000_000, context_window=8192)
    register(Windowed("short", short, holds=64))
    register(Windowed("long", long, holds=1000))


WINDOWED = EntryPoint(name="windowed", value=__name__, group="routerd")


def test_a_backends_length_refusal_passes_the_request_on_without_counting_against_it(tmp_path) -> None:
    app = build_app(tmp_path, {}, [WINDOWED])
    medium = HARD + " " + "word " * 300  # ~400 tokens: more than short-70b's server holds
    with running_gateway(app) as base:
        client = client_of(base)
        answers = [ask(client, medium, BEST) for _ in range(4)]  # more than dispatch.breaker_failures
        streamed = list(
            client.chat.completions.create(
                model="routerd", messages=[{"role": "user", "content": medium}], stream=True, extra_headers=BEST
            )
        )
        with pytest.raises(openai.BadRequestError) as everywhere:
            ask(client, HARD + " " + "word " * 2400, BEST)  # ~3,000 tokens: over both servers' windows
        short_ok = ask(client, HARD, BEST)
        dispatcher, backends = app.state.gateway.dispatcher, app.state.gateway.plugins.registry.backends
    assert [a.headers["x-routerd-model"] for a in answers] == ["long-7b"] * 4
    assert backends["short"].calls[:4] == [("chat", "short-70b")] * 4  # tried first every time: still in rotation
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text.startswith("answered by long-7b")
    assert everywhere.value.body["code"] == "context_length_exceeded"
    assert everywhere.value.body["param"] == "messages"
    # the refusal of the largest window (long-7b's, by its metadata) is the one the client reads
    assert everywhere.value.body["message"].startswith("This model's maximum context length is 1000 tokens.")
    assert short_ok.headers["x-routerd-model"] == "short-70b"
    assert dispatcher.available("short") and dispatcher.available("long")
    assert all(breaker.failures == 0 for breaker in dispatcher.breakers.values())


# -- client errors and the circuit breaker -----------------------------------------------------------------------


async def refuses_json_schema(request: web.Request, body: dict[str, Any]) -> web.StreamResponse | None:
    """OpenAI's 400 for a schema it cannot use, to every request with a ``json_schema`` response format."""
    if (body.get("response_format") or {}).get("type") != "json_schema":
        return None
    error = {
        "message": "Invalid schema for response_format 'Answer': In context=(), 'additionalProperties' is required",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": None,
    }
    return web.json_response({"error": error}, status=400)


SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "Answer", "schema": {"type": "object", "properties": {"a": {"type": "string"}}}},
}
STEADY = {"fake": {"models": [{"name": "steady-1b", "parameters": 1_000_000_000}]}}


def test_client_errors_from_a_backend_never_take_it_out_of_rotation(tmp_path) -> None:
    state = ReplayState(models=["replay-70b"])
    with gateway(tmp_path, state, refuses_json_schema, [FAKE_PLUGIN], plugins=STEADY) as (base, app):
        client = client_of(base)
        refused = []
        for _ in range(3):  # dispatch.breaker_failures
            with pytest.raises(openai.BadRequestError) as error:
                ask(client, HARD, BEST, response_format=SCHEMA)
            refused.append(error.value)
        after = ask(client, HARD, BEST)
        dispatcher = app.state.gateway.dispatcher
        available = dispatcher.available("openai")
    assert [e.status_code for e in refused] == [400, 400, 400]
    assert "'additionalProperties' is required" in refused[0].message
    assert after.headers["x-routerd-model"] == "replay-70b"  # the next unpinned request still goes there
    assert available and dispatcher.breakers.get("openai") is None
    assert len(state.requests) == 4

    # the same three requests failing for the backend's own reasons (500s) do take it out
    state = ReplayState(models=["replay-70b"], behaviour={"replay-70b": "error500"})
    with gateway(tmp_path / "failing", state, None, [FAKE_PLUGIN], plugins=STEADY) as (base, app):
        client = client_of(base)
        fallbacks = [ask(client, HARD, BEST).headers["x-routerd-model"] for _ in range(3)]
        after = ask(client, HARD, BEST)
        available = app.state.gateway.dispatcher.available("openai")
    assert fallbacks == ["steady-1b"] * 3
    assert after.headers["x-routerd-model"] == "steady-1b" and not available
    assert len(state.requests) == 3  # out of rotation: not asked the fourth time


async def fails_with_a_traceback(request: web.Request, body: dict[str, Any]) -> web.StreamResponse | None:
    """A 500 whose message goes on with the server's traceback, as some servers send one."""
    message = (
        f"{body['model']} crashed\nTraceback (most recent call last):\n"
        '  File "/srv/app/server.py", line 12, in generate\nRuntimeError: boom'
    )
    return web.json_response({"error": {"message": message, "type": "server_error"}}, status=500)


def test_the_combined_error_of_every_model_failing_is_one_line_per_model_without_tracebacks(tmp_path) -> None:
    state = ReplayState(models=["replay-7b", "replay-70b"])
    with gateway(tmp_path, state, fails_with_a_traceback) as (base, _app):
        raw = httpx.post(f"{base}/v1/chat/completions", json={"messages": [{"role": "user", "content": HARD}]})
    error = raw.json()["error"]
    assert raw.status_code == 503 and error["code"] == "all_backends_failed"
    assert error["message"].startswith("no model could answer (")
    assert "replay-7b" in error["message"] and "replay-70b" in error["message"]
    assert "\n" not in error["message"] and "/srv/app" not in error["message"] and "Traceback" not in error["message"]
