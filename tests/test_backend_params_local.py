"""The bundled model, served by the `local` plugin (llama-cpp-python's server, the real Gemma 3 270M), with the
official openai SDK: it ends its turn, honours either name of the answer's limit and a default cap, answers a JSON
schema with JSON that parses, gives ``n`` choices, and refuses what its server would drop. A real llama.cpp server
(the ``llama_server`` fixture) says when a prompt does not fit its context window."""

from __future__ import annotations

import json

import openai
import pytest

from routerd import ChatRequest, ContextLengthExceeded, Message
from routerd.testing import build_app
from routerd_llamacpp import LlamaCppBackend
from routerd_local.llama_server import PREAMBLE, transcript_prompt
from servers import running_gateway

MODEL = "gemma-3-270m"
SIGNATURE = f"\n\nModel: {MODEL}"
# What must never show in an answer: Gemma's turn tokens, and the transcript format's turn labels.
LEAKS = ("<end_of_turn>", "<start_of_turn>", "<eos>", "User:", "Assistant:")
HI = [{"role": "user", "content": "Hi!"}]
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "person", "schema": SCHEMA, "strict": True}}


def client_of(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def client(tmp_path_factory, gemma_path):
    app = build_app(tmp_path_factory.mktemp("local"), {"plugins": {"local": {"enabled": True}}})
    with running_gateway(app) as base:
        yield client_of(base)


def text_of(chunks: list) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_the_prompt_is_a_plain_transcript_with_the_clients_system_message():
    messages = [
        {"role": "system", "content": "Answer like a pirate."},
        {"role": "user", "content": [{"type": "text", "text": "Hi!"}]},
        {"role": "assistant", "content": "Ahoy!"},
        {"role": "user", "content": "Where is your ship?"},
    ]
    assert transcript_prompt(messages) == (
        "Answer like a pirate.\n\nUser: Hi!\nAssistant: Ahoy!\nUser: Where is your ship?\nAssistant:"
    )
    assert transcript_prompt(HI) == f"{PREAMBLE}\n\nUser: Hi!\nAssistant:"


def test_the_bundled_model_ends_its_turn_streamed_and_not(client):
    """Asked "Hi!" with no limit, the bundled model answered ~4,000 tokens of rambling in Gemma's format; in its
    transcript format it stops at the end of its turn, far under the default cap."""
    answer = client.chat.completions.create(model=MODEL, messages=HI, temperature=0)
    text = answer.choices[0].message.content
    assert answer.choices[0].finish_reason == "stop"
    assert 0 < answer.usage.completion_tokens < 64
    assert text.endswith(SIGNATURE) and text.removesuffix(SIGNATURE).strip()
    assert text == text.strip() and not any(leak in text for leak in LEAKS)
    chunks = list(client.chat.completions.create(model=MODEL, messages=HI, temperature=0, stream=True))
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert text_of(chunks) == text  # the same answer, trimmed the same way


def test_the_readme_snippet_answers_within_the_default_cap(client):
    answer = client.chat.completions.create(model="routerd", messages=HI)
    assert answer.model == MODEL
    assert answer.usage.completion_tokens <= 256
    assert not any(leak in answer.choices[0].message.content for leak in LEAKS)


@pytest.mark.parametrize(
    "limits", [{"max_tokens": 3}, {"max_completion_tokens": 3}, {"max_tokens": 9, "max_completion_tokens": 3}]
)
def test_either_name_of_the_limit_holds_the_smaller_when_both(client, limits):
    story = [{"role": "user", "content": "Write a long story about a dragon who learns to fly."}]
    answer = client.chat.completions.create(model=MODEL, messages=story, temperature=0, **limits)
    assert answer.usage.completion_tokens == 3
    assert answer.choices[0].finish_reason == "length"


def test_the_default_cap_applies_when_the_request_sets_no_limit(tmp_path, gemma_path):
    app = build_app(tmp_path / "data", {"plugins": {"local": {"enabled": True, "max_output_tokens": 2}}})
    story = [{"role": "user", "content": "Write a long story about a dragon who learns to fly."}]
    with running_gateway(app) as base:
        client = client_of(base)
        capped = client.chat.completions.create(model=MODEL, messages=story, temperature=0)
        own = client.chat.completions.create(model=MODEL, messages=story, temperature=0, max_tokens=4)
    assert (capped.usage.completion_tokens, capped.choices[0].finish_reason) == (2, "length")
    assert own.usage.completion_tokens == 4  # the request's own limit wins, larger too


def test_a_json_schema_is_answered_with_json_of_its_shape_streamed_and_not(client):
    messages = [{"role": "user", "content": "Invent a person. Reply with JSON."}]
    answer = client.chat.completions.create(
        model=MODEL, messages=messages, response_format=JSON_SCHEMA, max_tokens=80, temperature=0
    )
    person = json.loads(answer.choices[0].message.content)  # JSON answers are not signed
    assert set(person) == {"name", "age"} and isinstance(person["name"], str) and isinstance(person["age"], int)
    assert answer.choices[0].finish_reason == "stop"
    chunks = client.chat.completions.create(
        model=MODEL, messages=messages, response_format=JSON_SCHEMA, max_tokens=80, stream=True, seed=1
    )
    streamed = json.loads(text_of(list(chunks)))
    assert set(streamed) == {"name", "age"} and isinstance(streamed["age"], int)


def test_n_gives_n_choices_streamed_and_not(client):
    answer = client.chat.completions.create(model=MODEL, messages=HI, n=2, max_tokens=8, seed=11)
    assert [c.index for c in answer.choices] == [0, 1]
    assert all(c.message.content for c in answer.choices)
    chunks = list(client.chat.completions.create(model=MODEL, messages=HI, n=2, max_tokens=8, seed=11, stream=True))
    finished = sorted(c.choices[0].index for c in chunks if c.choices and c.choices[0].finish_reason)
    assert finished == [0, 1]


def test_a_parameter_its_server_would_drop_is_refused_by_name(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model=MODEL, messages=HI, max_tokens=3, extra_body={"typical_p": 0.5})
    assert refused.value.param == "typical_p"
    taken = client.chat.completions.create(
        model=MODEL, messages=HI, max_tokens=3, extra_body={"top_k": 1, "min_p": 0.1, "repetition_penalty": 1.2}
    )
    assert taken.usage.completion_tokens <= 3


@pytest.mark.anyio
async def test_a_real_llama_cpp_server_refusing_a_long_prompt_is_context_length_exceeded(llama_server):
    """The server runs with a 2048-token window; llama-cpp-python's server says so in OpenAI's words."""
    backend = LlamaCppBackend("llamacpp", llama_server, llama_swap=False, connect_timeout=5)
    await backend.start()
    try:
        request = ChatRequest(messages=[Message(role="user", content="word " * 3000)], max_tokens=5)
        with pytest.raises(ContextLengthExceeded) as refused:
            await backend.chat(MODEL, request)
    finally:
        await backend.close()
    assert "maximum context length is 2048 tokens" in refused.value.message
    assert (refused.value.status_code, refused.value.code, refused.value.param) == (
        400,
        "context_length_exceeded",
        "messages",
    )
