"""The ``ollama`` backend plugin against a replay of Ollama's native API (tests/ollama_replay.py):
the backend class directly, then the whole gateway with the official openai SDK."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import msgspec
import openai
import pytest
from litestar.testing import TestClient

import routerd
from ollama_replay import WEATHER_CALL, OllamaReplay, chat_answer, final_line, stream_lines
from routerd import ChatRequest
from routerd.capabilities import ModelFacts
from routerd.testing import TEST_ADMIN_KEY, build_app
from routerd_ollama import OllamaBackend
from routerd_ollama.backend import base_url, keep_alive_value

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "Get the current weather for a location",
        "parameters": {
            "type": "object",
            "properties": {
                "location": {"type": "string", "description": "The location to get the weather for"},
                "format": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["location", "format"],
        },
    },
}
LLAMA, LLAVA, MINILM, QWEN = "llama3.2:latest", "llava:latest", "all-minilm:latest", "qwen2.5:0.5b"


@pytest.fixture
def ollama() -> Iterator[OllamaReplay]:
    server = OllamaReplay()
    server.start()
    yield server
    server.stop()


@contextlib.asynccontextmanager
async def started(url: str, **options) -> AsyncIterator[OllamaBackend]:
    backend = OllamaBackend("ollama", url, **options)
    await backend.start()
    try:
        yield backend
    finally:
        await backend.close()


def _request(data: dict) -> ChatRequest:
    return msgspec.convert(data, ChatRequest)


def ask(text: str = "why is the sky blue?", **fields) -> ChatRequest:
    return _request({"messages": [{"role": "user", "content": text}], **fields})


async def collect(stream) -> list[routerd.ChatCompletionChunk]:
    return [chunk async for chunk in stream]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


# -- the catalog -----------------------------------------------------------------------------
@pytest.mark.anyio
async def test_list_models_reads_tags_and_show(ollama):
    async with started(ollama.url, model_prefix="ollama/") as backend:
        models = {m.name: m for m in await backend.list_models()}
    assert set(models) == {f"ollama/{n}" for n in (LLAMA, LLAVA, MINILM, QWEN)}
    llama = models[f"ollama/{LLAMA}"]
    assert (llama.backend, llama.parameters, llama.context_window, llama.size_bytes) == (
        "ollama",
        3212749888,
        131072,
        2019393189,
    )
    # Ollama 0.6.4 and later list every capability: all of them are the server's word.
    assert llama.capabilities == routerd.Capabilities(
        chat=True, vision=False, tools=True, embeddings=False, json_output=True
    )
    assert llama.metadata["quantization"] == "Q4_K_M" and llama.metadata["digest"].startswith("a80c4f17")
    assert models[f"ollama/{LLAVA}"].capabilities == routerd.Capabilities(
        chat=True, vision=True, tools=False, embeddings=False, json_output=True
    )
    minilm = models[f"ollama/{MINILM}"]
    assert (minilm.capabilities.chat, minilm.capabilities.embeddings, minilm.context_window) == (False, True, 512)
    # An older server: no capabilities, no general.parameter_count. What /api/show shows decides
    # (a template without .Tools, no pooling type, no projector); vision is left to the name.
    qwen = models[f"ollama/{QWEN}"]
    assert (qwen.parameters, qwen.context_window) == (494_030_000, 32768)
    assert qwen.capabilities == routerd.Capabilities(chat=True, tools=False, embeddings=False)
    described = ModelFacts().describe(qwen)
    assert described.capabilities == routerd.Capabilities(
        chat=True, vision=False, tools=False, embeddings=False, json_output=True
    )
    assert described.metadata["origins"] == {
        "chat": "metadata",
        "vision": "name",
        "tools": "metadata",
        "embeddings": "metadata",
        "json_output": "name",
        "parameters": "metadata",
        "context_window": "metadata",
    }


@pytest.mark.anyio
async def test_an_older_server_shows_vision_embeddings_and_tools_in_its_metadata(ollama):
    """Without a capabilities list, the signs Ollama itself reads: a projector, a pooling type,
    a template that uses .Tools."""
    tag, show = ollama.models[QWEN]
    ollama.models["my-vision:latest"] = (
        {**tag, "name": "my-vision:latest", "digest": "2" * 64},
        {**show, "projector_info": {"clip.has_vision_encoder": True}, "template": "{{ if .Tools }}{{ end }}"},
    )
    ollama.models["my-embedder:latest"] = (
        {**tag, "name": "my-embedder:latest", "digest": "3" * 64},
        {**show, "model_info": {"general.architecture": "bert", "bert.pooling_type": 1, "bert.context_length": 512}},
    )
    async with started(ollama.url) as backend:
        models = {m.name: m for m in await backend.list_models()}
    vision = models["my-vision:latest"].capabilities
    assert (vision.vision, vision.tools, vision.chat) == (True, True, True)
    embedder = models["my-embedder:latest"].capabilities
    assert (embedder.embeddings, embedder.chat, embedder.vision) == (True, False, None)


@pytest.mark.anyio
async def test_each_model_is_shown_once_per_digest(ollama):
    tag, show = ollama.models[LLAMA]
    ollama.models["llama3.2:3b"] = ({**tag, "name": "llama3.2:3b", "model": "llama3.2:3b"}, show)  # same digest
    async with started(ollama.url) as backend:
        await backend.list_models()
        await backend.list_models()
        assert ollama.count("/api/show") == 4
        ollama.models[QWEN][0]["digest"] = "0" * 64  # re-pulled: a new digest
        await backend.list_models()
    assert [b["model"] for b in ollama.bodies("/api/show")][4:] == [QWEN]


@pytest.mark.anyio
async def test_a_model_show_refuses_is_described_by_its_name(ollama, caplog):
    tag = {**ollama.models[QWEN][0], "name": "mistral:7b", "digest": "1" * 64}
    tag["details"] = {**tag["details"], "parameter_size": ""}
    ollama.models["mistral:7b"] = (tag, None)  # /api/show answers 404
    async with started(ollama.url) as backend:
        models = {m.name: m for m in await backend.list_models()}
    mistral = models["mistral:7b"]
    assert mistral.parameters is None  # the server said nothing: the catalog goes by the name
    assert mistral.capabilities == routerd.Capabilities(tools=False)  # Ollama refuses tools it cannot see
    described = ModelFacts().describe(mistral)
    assert (described.parameters, described.capabilities.chat, described.capabilities.tools) == (7e9, True, False)
    assert described.metadata["origins"]["parameters"] == "name"
    assert "mistral:7b: /api/show failed" in caplog.text


# -- chat ------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_chat_translates_parameters_and_the_answer(ollama):
    request = ChatRequest(
        messages=[
            routerd.Message(role="developer", content="Be brief."),
            routerd.Message(role="user", content="why is the sky blue?"),
        ],
        temperature=0.2,
        top_p=0.9,
        seed=7,
        stop="END",
        presence_penalty=0.5,
        frequency_penalty=0.25,
        max_tokens=50,
        max_completion_tokens=64,
        top_k=30,
        min_p=0.05,
        typical_p=0.9,
        repetition_penalty=1.15,
    )
    async with started(ollama.url, keep_alive="10m") as backend:
        completion = await backend.chat(LLAMA, request)
    (body,) = ollama.bodies("/api/chat")
    assert body == {
        "model": LLAMA,
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "why is the sky blue?"}],
        "stream": False,
        "options": {
            "temperature": 0.2,
            "top_p": 0.9,
            "seed": 7,
            "presence_penalty": 0.5,
            "frequency_penalty": 0.25,
            "top_k": 30,
            "min_p": 0.05,
            "typical_p": 0.9,
            "repeat_penalty": 1.15,  # vLLM's repetition_penalty, under Ollama's name
            "num_predict": 50,  # the smaller of max_tokens and max_completion_tokens
            "stop": ["END"],
        },
        "keep_alive": "10m",
    }
    assert completion.model == LLAMA
    assert completion.choices[0].message.content == "Hello! How are you today?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage == routerd.Usage(26, 298, 324)


@pytest.mark.anyio
async def test_chat_sends_images_formats_and_tools(ollama):
    image = [
        {"type": "text", "text": "what is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    history = [
        {"role": "user", "content": "What is the weather today in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_current_weather", "arguments": '{"location": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "22 degrees"},
    ]
    requests = [
        {"messages": [{"role": "user", "content": image}], "max_tokens": 9},
        {"messages": [{"role": "user", "content": "JSON please"}], "response_format": {"type": "json_object"}},
        {
            "messages": [{"role": "user", "content": "age?"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}},
        },
        {"messages": history, "tools": [WEATHER_TOOL]},
        {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL], "tool_choice": "none"},
    ]
    async with started(ollama.url) as backend:
        for request in requests:
            await backend.chat(LLAVA, _request(request))
    vision, json_mode, structured, tools, no_tools = ollama.bodies("/api/chat")
    assert vision["messages"] == [{"role": "user", "content": "what is in this image?", "images": [PNG]}]
    assert vision["options"] == {"num_predict": 9}
    assert json_mode["format"] == "json"
    assert structured["format"] == schema
    assert tools["tools"] == [WEATHER_TOOL]
    assert tools["messages"][1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_current_weather", "arguments": {"location": "Paris"}}}],
        },
        {"role": "tool", "content": "22 degrees", "tool_name": "get_current_weather"},
    ]
    assert "tools" not in no_tools and "keep_alive" not in no_tools and "format" not in no_tools


@pytest.mark.anyio
async def test_an_image_by_link_is_refused_before_calling_ollama(ollama):
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    async with started(ollama.url) as backend:
        with pytest.raises(routerd.InvalidRequest, match="data URLs"):
            await backend.chat(LLAVA, _request({"messages": [{"role": "user", "content": content}]}))
    assert ollama.count("/api/chat") == 0


@pytest.mark.anyio
async def test_chat_answers_tool_calls_and_length(ollama):
    ollama.chat_reply = chat_answer("", message={"role": "assistant", "content": "", "tool_calls": [WEATHER_CALL]})
    async with started(ollama.url) as backend:
        called = await backend.chat(LLAMA, ask(tools=[WEATHER_TOOL]))
        ollama.chat_reply = chat_answer("The sky is", done_reason="length")
        cut = await backend.chat(LLAMA, ask(max_tokens=3))
    choice = called.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_current_weather"
    assert call.function.arguments == '{"format":"celsius","location":"Paris, FR"}'
    assert cut.choices[0].finish_reason == "length"


# -- streams ---------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_stream_normalises_ndjson_to_openai_chunks(ollama):
    async with started(ollama.url) as backend:
        chunks = await collect(backend.stream(LLAMA, ask(stream=True, stream_options={"include_usage": True})))
        plain = await collect(backend.stream(LLAMA, ask(stream=True)))
    assert ollama.bodies("/api/chat")[0]["stream"] is True
    first, *middle, finish, usage = chunks
    assert first.choices[0].delta.role == "assistant" and first.choices[0].delta.content == "The"
    assert "".join(c.choices[0].delta.content for c in middle) == " sky is blue."
    assert finish.choices[0].finish_reason == "stop"
    assert usage.choices == [] and usage.usage == routerd.Usage(26, 282, 308)
    assert len({c.id for c in chunks}) == 1 and {c.model for c in chunks} == {LLAMA}
    # the counts come whether or not the client asked (the gateway's relay drops them for a client that did not)
    assert plain[-1].choices == [] and plain[-1].usage == routerd.Usage(26, 282, 308)
    assert plain[-2].choices[0].finish_reason == "stop"


THINKING = "The user asks about the sky. Rayleigh scattering."


@pytest.mark.anyio
async def test_a_thinking_models_reasoning_is_relayed_apart_from_its_answer(ollama):
    """Ollama 0.9+ sends a thinking model's reasoning as `message.thinking` (its docs' "Chat request (with
    thinking)"); it becomes the answer's `reasoning`, the field Ollama's own OpenAI-compatible API uses."""
    ollama.chat_reply = chat_answer("Blue.", message={"role": "assistant", "content": "Blue.", "thinking": THINKING})
    thinking = [
        {"model": "qwen3", "created_at": "2025-06-01T00:00:00Z", "done": False,
         "message": {"role": "assistant", "content": "", "thinking": piece}}
        for piece in ("The user asks about the sky.", " Rayleigh scattering.")
    ]  # fmt: skip
    ollama.stream = thinking + stream_lines("Blue", ".")
    async with started(ollama.url) as backend:
        completion = await backend.chat(LLAMA, ask())
        chunks = await collect(backend.stream(LLAMA, ask(stream=True)))
    message = completion.choices[0].message
    assert (message.content, message.reasoning) == ("Blue.", THINKING)
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.reasoning or "" for d in deltas) == THINKING
    assert "".join(d.content or "" for d in deltas) == "Blue."
    assert all(not d.reasoning for d in deltas[deltas.index(next(d for d in deltas if d.content)) :])


@pytest.mark.anyio
async def test_stream_relays_a_tool_call(ollama):
    # As Ollama streams tool calls (ollama.com/blog/streaming-tool): a line with the whole call.
    ollama.stream = [
        {
            "model": "qwen3",
            "created_at": "2025-05-27T22:54:58Z",
            "message": {"role": "assistant", "content": "", "tool_calls": [WEATHER_CALL]},
            "done": False,
        },
        final_line(),
    ]
    async with started(ollama.url) as backend:
        chunks = await collect(backend.stream(LLAMA, ask(stream=True, tools=[WEATHER_TOOL])))
    assert ollama.bodies("/api/chat")[0]["tools"] == [WEATHER_TOOL]
    (call,) = chunks[0].choices[0].delta.tool_calls
    assert (call.index, call.function.name) == (0, "get_current_weather")
    assert call.function.arguments == '{"format":"celsius","location":"Paris, FR"}'
    assert chunks[-2].choices[0].finish_reason == "tool_calls" and chunks[-1].usage is not None


# -- embeddings and unloading ----------------------------------------------------------------
@pytest.mark.anyio
async def test_embed_and_unload(ollama):
    async with started(ollama.url, keep_alive="-1") as backend:
        result = await backend.embed(MINILM, ["Why is the sky blue?", "Why is the grass green?"])
        await backend.unload(MINILM)
    assert ollama.bodies("/api/embed") == [
        {"model": MINILM, "input": ["Why is the sky blue?", "Why is the grass green?"], "keep_alive": -1}
    ]
    assert [e.index for e in result.data] == [0, 1] and len(result.data[1].embedding) == 4
    assert result.usage == routerd.Usage(16, 0, 16) and result.model == MINILM
    assert ollama.bodies("/api/generate") == [{"model": MINILM, "keep_alive": 0}]
    assert MINILM not in ollama.running


# -- VRAM ------------------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize("ps_ttl", [0.0, 1.0])
async def test_least_recently_used_model_is_unloaded(ollama, ps_ttl):
    async with started(ollama.url, vram_budget=7_000_000_000, ps_ttl=ps_ttl) as backend:
        for model in (LLAMA, QWEN, LLAMA):
            await backend.chat(model, ask())
        assert ollama.unloaded() == []
        await backend.chat(LLAVA, ask())  # 4.7 GB: one of the two must go, the least recently used
    assert ollama.unloaded() == [QWEN]
    assert set(ollama.running) == {LLAMA, LLAVA}


@pytest.mark.anyio
async def test_the_pinned_model_is_never_unloaded(ollama):
    async with started(ollama.url, vram_budget=7_000_000_000, pinned=QWEN) as backend:
        for model in (LLAMA, QWEN, LLAMA, LLAVA):
            await backend.chat(model, ask())
    assert ollama.unloaded() == [LLAMA]
    ollama.requests.clear()
    async with started(ollama.url, vram_budget=1, pinned=f"ollama/{LLAVA}") as backend:
        await backend.chat(QWEN, ask())  # too big for the budget with llava, but llava is pinned
    assert ollama.unloaded() == []


@pytest.mark.anyio
async def test_max_loaded_and_models_loaded_by_others(ollama):
    ollama.load(LLAVA)  # loaded before the gateway came: never used by it, so unloaded first
    async with started(ollama.url, max_loaded=2) as backend:
        await backend.chat(LLAMA, ask())
        await backend.embed(MINILM, ["x"])
        await backend.chat(LLAMA, ask())  # loaded already: nothing to do
    assert ollama.unloaded() == [LLAVA]


@pytest.mark.anyio
async def test_ps_is_cached_and_not_asked_without_a_budget(ollama):
    async with started(ollama.url, vram_budget=10**12) as backend:
        await backend.chat(LLAMA, ask())
        await backend.chat(QWEN, ask())
        await collect(backend.stream(LLAVA, ask(stream=True)))
    assert ollama.count("/api/ps") == 1
    ollama.requests.clear()
    async with started(ollama.url) as backend:
        await backend.chat(LLAMA, ask())
    assert ollama.count("/api/ps") == 0


@pytest.mark.anyio
async def test_a_failing_ps_does_not_fail_the_request(ollama, caplog):
    ollama.failures["/api/ps"] = (500, b'{"error": "boom"}')
    async with started(ollama.url, vram_budget=1) as backend:
        completion = await backend.chat(LLAMA, ask())
    assert completion.choices[0].message.content == "Hello! How are you today?"
    assert "could not make room" in caplog.text


# -- failures --------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_server_errors_are_backend_unavailable(ollama):
    for path in ("/api/tags", "/api/chat", "/api/embed"):
        ollama.failures[path] = (500, b'{"error": "llama runner process has terminated"}')
    async with started(ollama.url) as backend:
        with pytest.raises(routerd.BackendUnavailable, match="500: llama runner process has terminated"):
            await backend.chat(LLAMA, ask())
        with pytest.raises(routerd.BackendUnavailable):
            await collect(backend.stream(LLAMA, ask(stream=True)))
        with pytest.raises(routerd.BackendUnavailable):
            await backend.embed(MINILM, ["x"])
        with pytest.raises(routerd.BackendUnavailable):
            await backend.list_models()


@pytest.mark.anyio
async def test_malformed_answers_are_backend_errors(ollama):
    async with started(ollama.url) as backend:
        for path in ("/api/tags", "/api/chat", "/api/embed"):
            ollama.failures[path] = (200, b'{"models": [{"name": ')
        for call in (
            backend.list_models(),
            backend.chat(LLAMA, ask()),
            backend.embed(MINILM, ["x"]),
            collect(backend.stream(LLAMA, ask(stream=True))),
        ):
            with pytest.raises(routerd.BackendError) as caught:
                await call
            assert type(caught.value) is routerd.BackendError
            assert "malformed" in caught.value.message


@pytest.mark.anyio
async def test_unreachable_server_is_backend_unavailable():
    async with started(closed_port_url()) as backend:
        with pytest.raises(routerd.BackendUnavailable, match="unreachable"):
            await backend.list_models()
        with pytest.raises(routerd.BackendUnavailable):
            await backend.chat(LLAMA, ask())
        with pytest.raises(routerd.BackendUnavailable):
            await collect(backend.stream(LLAMA, ask(stream=True)))


@pytest.mark.anyio
async def test_error_mid_stream_and_cut_stream_are_backend_errors(ollama):
    ollama.stream = [*stream_lines("The")[:1], {"error": "an error was encountered while running the model"}]
    async with started(ollama.url) as backend:
        stream = backend.stream(LLAMA, ask(stream=True))
        first = await anext(stream)
        assert first.choices[0].delta.content == "The"
        with pytest.raises(routerd.BackendError, match="an error was encountered while running the model"):
            await anext(stream)
        ollama.stream = stream_lines("The", " sky")[:2]  # no final line
        with pytest.raises(routerd.BackendError, match="before it was done"):
            await collect(backend.stream(LLAMA, ask(stream=True)))


@pytest.mark.anyio
async def test_unknown_models_and_refused_requests(ollama):
    async with started(ollama.url) as backend:
        with pytest.raises(routerd.ModelNotFound, match="model 'nope:latest' not found"):
            await backend.chat("nope:latest", ask())
        ollama.failures["/api/chat"] = (400, b'{"error": "llava does not support tools"}')
        with pytest.raises(routerd.InvalidRequest, match="does not support tools"):
            await backend.chat(LLAVA, ask(tools=[WEATHER_TOOL]))


# -- the plugin ------------------------------------------------------------------------------
def test_settings_and_registration(tmp_path, ollama, caplog):
    caplog.set_level(logging.INFO)
    app = build_app(tmp_path / "off", {})
    assert "ollama" not in app.state.gateway.plugins.registry.backends
    assert "no url (ROUTER_OLLAMA_URL): no Ollama backend" in caplog.text
    with pytest.raises(routerd.ConfigError, match=r"plugins\.ollama\.vram_budget"):
        build_app(tmp_path / "bad", {"plugins": {"ollama": {"url": ollama.url, "vram_budget": -1}}})
    with pytest.raises(routerd.ConfigError, match=r"plugins\.ollama\.url"):
        build_app(tmp_path / "bad", {"plugins": {"ollama": {"url": "localhost:11434"}}})
    config = {"url": ollama.url + "/api/", "max_loaded": 2, "model_prefix": "o/"}
    app = build_app(tmp_path / "on", {"plugins": {"ollama": config}, "routing": {"pinned_model": "o/x"}})
    backend = app.state.gateway.plugins.registry.backends["ollama"]
    assert isinstance(backend, routerd.Backend)
    assert (backend.base_url, backend.max_loaded, backend.model_prefix, backend.pinned) == (ollama.url, 2, "o/", "o/x")
    assert base_url("http://h:11434/v1/") == "http://h:11434"
    assert [keep_alive_value(v) for v in (None, "", "0", "-1", "10m")] == [None, None, 0, -1, "10m"]


# -- the gateway, end to end -----------------------------------------------------------------
@contextlib.contextmanager
def gateway(tmp_path, ollama: OllamaReplay, **config) -> Iterator[openai.OpenAI]:
    routing = config.pop("routing", {})
    settings = {"plugins": {"ollama": {"url": ollama.url, **config}}, "routing": routing}
    with TestClient(build_app(tmp_path, settings)) as client:
        yield openai.OpenAI(base_url=f"{client.base_url}/v1", api_key="unused", http_client=client, max_retries=0)


def test_gateway_lists_and_chats(tmp_path, ollama):
    with gateway(tmp_path, ollama, keep_alive="10m") as client:
        ids = {m.id for m in client.models.list()}
        completion = client.chat.completions.create(
            model=LLAMA, messages=[{"role": "user", "content": "why is the sky blue?"}], max_tokens=64
        )
    assert {LLAMA, LLAVA, QWEN} <= ids and MINILM not in ids  # an embedding model is no chat UI's choice
    assert completion.choices[0].message.content == f"Hello! How are you today?\n\nModel: {LLAMA}"
    assert completion.model == LLAMA
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (26, 298)
    (body,) = ollama.bodies("/api/chat")
    assert (body["model"], body["options"], body["keep_alive"]) == (LLAMA, {"num_predict": 64}, "10m")


def test_gateway_streams_with_usage(tmp_path, ollama):
    with gateway(tmp_path, ollama) as client:
        chunks = list(
            client.chat.completions.create(
                model=QWEN,
                messages=[{"role": "user", "content": "why is the sky blue?"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == f"The sky is blue.\n\nModel: {QWEN}"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].choices == [] and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (
        26,
        282,
    )


def test_gateway_records_ollamas_counts_for_a_stream_whose_client_asked_for_no_usage(tmp_path, ollama):
    settings = {"plugins": {"ollama": {"url": ollama.url}}}
    with TestClient(build_app(tmp_path, settings)) as http:
        client = openai.OpenAI(base_url=f"{http.base_url}/v1", api_key="unused", http_client=http, max_retries=0)
        raw = client.chat.completions.with_raw_response.create(
            model=QWEN, messages=[{"role": "user", "content": "why is the sky blue?"}], stream=True
        )
        chunks = list(raw.parse())
        decision = http.get(
            f"/admin/decisions/{raw.headers['x-routerd-decision-id']}",
            headers={"Authorization": f"Bearer {TEST_ADMIN_KEY}"},
        ).json()
    assert all(c.usage is None for c in chunks) and all(c.choices for c in chunks)
    assert (decision["status"], decision["prompt_tokens"], decision["completion_tokens"]) == ("ok", 26, 282)


def test_gateway_streams_tool_calls_and_sends_images_and_schemas(tmp_path, ollama):
    ollama.stream = [
        {
            "model": LLAMA,
            "created_at": "2025-05-27T22:54:58Z",
            "message": {"role": "assistant", "content": "", "tool_calls": [WEATHER_CALL]},
            "done": False,
        },
        final_line(),
    ]
    image = [
        {"type": "text", "text": "what is in this image?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["age"]}
    with gateway(tmp_path, ollama) as client:
        chunks = list(
            client.chat.completions.create(
                model=LLAMA,
                messages=[{"role": "user", "content": "Weather in Paris?"}],
                tools=[WEATHER_TOOL],
                stream=True,
            )
        )
        client.chat.completions.create(model=LLAVA, messages=[{"role": "user", "content": image}])
        client.chat.completions.create(
            model=LLAMA,
            messages=[{"role": "user", "content": "How old is Ollama?"}],
            response_format={"type": "json_schema", "json_schema": {"name": "age", "schema": schema}},
        )
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    assert [(c.function.name, c.function.arguments) for c in calls] == [
        ("get_current_weather", '{"format":"celsius","location":"Paris, FR"}')
    ]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    tools, vision, structured = ollama.bodies("/api/chat")
    assert tools["tools"] == [WEATHER_TOOL]
    assert vision["messages"][0]["images"] == [PNG]
    assert structured["format"] == schema


def test_gateway_embeds(tmp_path, ollama):
    with gateway(tmp_path, ollama) as client:
        result = client.embeddings.create(model=MINILM, input=["Why is the sky blue?", "Why is the grass green?"])
    assert [len(item.embedding) for item in result.data] == [4, 4]
    assert result.model == MINILM and result.usage.prompt_tokens == 16
    assert ollama.bodies("/api/embed")[0]["input"] == ["Why is the sky blue?", "Why is the grass green?"]


def test_gateway_unloads_the_least_recently_used_model_never_the_pinned_one(tmp_path, ollama):
    hello = [{"role": "user", "content": "hi"}]
    with gateway(tmp_path / "a", ollama, vram_budget=5_000_000_000) as client:
        client.chat.completions.create(model=LLAMA, messages=hello)
        assert ollama.unloaded() == []
        client.chat.completions.create(model=LLAVA, messages=hello)  # both do not fit: llama goes
    assert ollama.unloaded() == [LLAMA]
    ollama.running.clear()
    ollama.requests.clear()
    with gateway(tmp_path / "b", ollama, vram_budget=5_000_000_000, routing={"pinned_model": LLAMA}) as client:
        client.chat.completions.create(model=LLAMA, messages=hello)
        client.chat.completions.create(model=LLAVA, messages=hello)
    assert ollama.count("/api/ps") >= 1 and ollama.unloaded() == []


def test_gateway_reports_backend_failures(tmp_path, ollama):
    with gateway(tmp_path, ollama) as client:
        ollama.failures["/api/chat"] = (500, b'{"error": "llama runner process has terminated"}')
        with pytest.raises(openai.InternalServerError) as caught:
            client.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "hi"}])
        assert caught.value.status_code == 503
        del ollama.failures["/api/chat"]
        ollama.stream = [*stream_lines("The")[:1], {"error": "an error was encountered while running the model"}]
        stream = client.chat.completions.create(model=LLAMA, messages=[{"role": "user", "content": "hi"}], stream=True)
        with pytest.raises(openai.APIError, match="an error was encountered while running the model"):
            list(stream)
