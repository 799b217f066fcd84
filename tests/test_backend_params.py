"""Parameters mean what they say on every backend: what the `openai`, `llamacpp` and `ollama` plugins send their
servers for the answer's limit, the vendor sampling parameters, ``n`` and a ``json_schema`` response format. The
servers are replay servers shaped as each documents its API (tests/servers.py, tests/ollama_replay.py); the client
is the official openai SDK, through the running gateway."""

from __future__ import annotations

import contextlib
import json

import openai
import pytest

from ollama_replay import OllamaReplay, stream_lines
from routerd.testing import build_app
from servers import ReplayState, replay_server, running_gateway

HI = [{"role": "user", "content": "hi"}]
SAMPLING = {"top_k": 20, "min_p": 0.05, "typical_p": 0.9, "repeat_penalty": 1.1}
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer"}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "city", "schema": SCHEMA, "strict": True}}


@contextlib.contextmanager
def gateway(tmp_path, state: ReplayState, plugin: str):
    """The gateway with one plugin (`openai` or `llamacpp`) on the replay server; yields the SDK client."""
    with replay_server(state) as url:
        settings = {"base_url": url} if plugin == "openai" else {"url": url.removesuffix("/v1")}
        with running_gateway(build_app(tmp_path, {"plugins": {plugin: settings}})) as base:
            yield openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


@pytest.fixture
def ollama():
    server = OllamaReplay()
    server.start()
    yield server
    server.stop()


@contextlib.contextmanager
def ollama_gateway(tmp_path, server: OllamaReplay):
    with running_gateway(build_app(tmp_path, {"plugins": {"ollama": {"url": server.url}}})) as base:
        yield openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


# -- the answer's limit ----------------------------------------------------------------------
def test_llama_cpp_servers_get_max_completion_tokens_as_max_tokens_the_smaller_of_both(tmp_path):
    """llama-server and llama-cpp-python's server read max_tokens only; OpenAI takes max_completion_tokens."""
    llama, upstream = ReplayState(models=["llama-7b"]), ReplayState(models=["gpt-x"])
    with gateway(tmp_path / "a", llama, "llamacpp") as client:
        client.chat.completions.create(model="llama-7b", messages=HI, max_completion_tokens=20)
        client.chat.completions.create(model="llama-7b", messages=HI, max_completion_tokens=20, max_tokens=30)
        client.chat.completions.create(model="llama-7b", messages=HI, max_tokens=12, max_completion_tokens=40)
        list(client.chat.completions.create(model="llama-7b", messages=HI, max_completion_tokens=9, stream=True))
        client.chat.completions.create(model="llama-7b", messages=HI)
    with gateway(tmp_path / "b", upstream, "openai") as client:
        client.chat.completions.create(model="gpt-x", messages=HI, max_completion_tokens=20)
    assert [(r.get("max_tokens"), "max_completion_tokens" in r) for r in llama.requests] == [
        (20, False),
        (20, False),
        (12, False),
        (9, False),
        (None, False),  # no limit asked, none added: the llamacpp plugin has no default cap
    ]
    assert upstream.requests[0]["max_completion_tokens"] == 20 and "max_tokens" not in upstream.requests[0]


# -- vendor sampling parameters --------------------------------------------------------------
def test_vendor_sampling_parameters_reach_openai_compatible_servers_as_sent(tmp_path):
    state = ReplayState(models=["vllm-8b"])
    with gateway(tmp_path, state, "openai") as client:
        client.chat.completions.create(model="vllm-8b", messages=HI, extra_body={**SAMPLING, "repetition_penalty": 1.2})
        list(client.chat.completions.create(model="vllm-8b", messages=HI, stream=True, extra_body=SAMPLING))
    for sent in state.requests:
        assert {key: sent[key] for key in SAMPLING} == SAMPLING
    assert state.requests[0]["repetition_penalty"] == 1.2  # vLLM's name, kept for a server that reads it


def test_llama_cpp_servers_get_the_repetition_penalty_under_their_name(tmp_path):
    state = ReplayState(models=["llama-7b"])
    with gateway(tmp_path, state, "llamacpp") as client:
        client.chat.completions.create(model="llama-7b", messages=HI, extra_body={**SAMPLING, "min_p": 0.1})
        client.chat.completions.create(model="llama-7b", messages=HI, extra_body={"repetition_penalty": 1.3})
        client.chat.completions.create(
            model="llama-7b", messages=HI, extra_body={"repetition_penalty": 1.3, "repeat_penalty": 1.05}
        )
    first, renamed, both = state.requests
    assert {key: first[key] for key in SAMPLING} == {**SAMPLING, "min_p": 0.1}
    assert (renamed["repeat_penalty"], "repetition_penalty" in renamed) == (1.3, False)
    assert (both["repeat_penalty"], "repetition_penalty" in both) == (1.05, False)  # the server's own name wins


def test_ollama_takes_the_vendor_sampling_parameters_in_its_options(tmp_path, ollama):
    with ollama_gateway(tmp_path, ollama) as client:
        client.chat.completions.create(
            model="llama3.2:latest", messages=HI, max_completion_tokens=30, extra_body=SAMPLING
        )
        client.chat.completions.create(
            model="llama3.2:latest", messages=HI, max_tokens=25, extra_body={"repetition_penalty": 1.3}
        )
    first, second = ollama.bodies("/api/chat")
    assert first["options"] == {**SAMPLING, "num_predict": 30}
    assert second["options"] == {"repeat_penalty": 1.3, "num_predict": 25}


# -- n -----------------------------------------------------------------------------------------
def test_n_on_a_llama_cpp_server_is_n_requests_merged(tmp_path):
    """llama-server refuses n other than 1 (refuse_n), llama-cpp-python's server answers one choice: the gateway
    asks n times (seed, seed + 1, ...) and answers n choices, their usage summed."""
    state = ReplayState(models=["llama-7b"], behaviour={"llama-7b": "refuse_n"}, echo_seed=True)
    with gateway(tmp_path, state, "llamacpp") as client:
        answer = client.chat.completions.create(model="llama-7b", messages=HI, n=3, seed=7)
    assert [c.index for c in answer.choices] == [0, 1, 2]
    assert [c.message.content.split("\n\n")[0] for c in answer.choices] == [
        f"Hello from the replay server. (seed {seed})" for seed in (7, 8, 9)
    ]
    assert all(c.finish_reason == "stop" for c in answer.choices)
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens, answer.usage.total_tokens) == (27, 18, 45)
    assert [("n" in r, r["seed"]) for r in state.requests] == [(False, 7), (False, 8), (False, 9)]


def test_n_streamed_from_a_llama_cpp_server_relays_the_answers_one_after_another(tmp_path):
    state = ReplayState(models=["llama-7b"], behaviour={"llama-7b": "refuse_n"}, echo_seed=True)
    with gateway(tmp_path, state, "llamacpp") as client:
        chunks = list(
            client.chat.completions.create(
                model="llama-7b", messages=HI, n=2, seed=3, stream=True, stream_options={"include_usage": True}
            )
        )
    order = [c.choices[0].index for c in chunks if c.choices]
    assert order == sorted(order) and set(order) == {0, 1}  # the first answer whole, then the second
    texts = {
        i: "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
        for i in (0, 1)
    }
    assert texts == {0: "Hello from the replay server. (seed 3)", 1: "Hello from the replay server. (seed 4)"}
    finishes = [
        (c.choices[0].index, c.choices[0].finish_reason) for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == [(0, "stop"), (1, "stop")]
    assert len({c.id for c in chunks}) == 1
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1  # one usage chunk, the two answers' summed (9 prompt tokens, 7 words each)
    assert (usage[0].prompt_tokens, usage[0].completion_tokens, usage[0].total_tokens) == (18, 14, 32)


def test_n_reaches_an_openai_compatible_server_that_takes_it(tmp_path):
    state = ReplayState(models=["gpt-x"])
    with gateway(tmp_path, state, "openai") as client:
        client.chat.completions.create(model="gpt-x", messages=HI, n=2)
    assert len(state.requests) == 1 and state.requests[0]["n"] == 2


def test_n_on_ollama_is_n_chat_requests(tmp_path, ollama):
    ollama.stream = stream_lines("Blue", " sky.")
    with ollama_gateway(tmp_path, ollama) as client:
        answer = client.chat.completions.create(model="llama3.2:latest", messages=HI, n=2, seed=5)
        chunks = list(client.chat.completions.create(model="llama3.2:latest", messages=HI, n=2, stream=True))
    assert [c.index for c in answer.choices] == [0, 1]
    assert all(c.message.content.startswith("Hello! How are you today?") for c in answer.choices)
    assert answer.usage.completion_tokens == 2 * 298
    bodies = ollama.bodies("/api/chat")
    assert [b["options"].get("seed") for b in bodies[:2]] == [5, 6] and len(bodies) == 4
    texts = [
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices and c.choices[0].index == i)
        for i in (0, 1)
    ]
    assert texts == ["Blue sky.", "Blue sky."]


# -- response formats --------------------------------------------------------------------------
def test_a_json_schema_goes_to_llama_cpp_servers_as_the_json_object_with_a_schema_they_take(tmp_path):
    state = ReplayState(models=["llama-7b"], reply='{"city": "Paris", "population": 2100000}')
    with gateway(tmp_path, state, "llamacpp") as client:
        answer = client.chat.completions.create(model="llama-7b", messages=HI, response_format=JSON_SCHEMA)
        list(client.chat.completions.create(model="llama-7b", messages=HI, response_format=JSON_SCHEMA, stream=True))
        client.chat.completions.create(model="llama-7b", messages=HI, response_format={"type": "json_object"})
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="llama-7b", messages=HI, response_format={"type": "regex"})
    assert json.loads(answer.choices[0].message.content) == {"city": "Paris", "population": 2100000}
    sent = [r["response_format"] for r in state.requests]
    assert sent == [{"type": "json_object", "schema": SCHEMA}] * 2 + [{"type": "json_object"}]
    assert refused.value.param == "response_format" and "'regex'" in refused.value.message


def test_a_json_schema_goes_to_openai_as_it_is(tmp_path):
    state = ReplayState(models=["gpt-x"], reply='{"city": "Paris", "population": 2100000}')
    with gateway(tmp_path, state, "openai") as client:
        client.chat.completions.create(model="gpt-x", messages=HI, response_format=JSON_SCHEMA)
    assert state.requests[0]["response_format"] == JSON_SCHEMA


def test_ollama_gets_the_schema_as_its_format_and_refuses_what_it_cannot_do(tmp_path, ollama):
    ollama.chat_reply["message"]["content"] = '{"city": "Paris", "population": 2100000}'
    with ollama_gateway(tmp_path, ollama) as client:
        client.chat.completions.create(model="llama3.2:latest", messages=HI, response_format=JSON_SCHEMA)
        client.chat.completions.create(model="llama3.2:latest", messages=HI, response_format={"type": "text"})
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="llama3.2:latest", messages=HI, response_format={"type": "regex"})
    schema, text = ollama.bodies("/api/chat")
    assert schema["format"] == SCHEMA and "format" not in text
    assert refused.value.param == "response_format"
