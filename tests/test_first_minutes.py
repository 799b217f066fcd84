"""A new user's first five minutes, as the README leads them: a gateway as `make run` starts it (the bundled
model, background profiling on) and the calls the official openai SDK and LangChain's ``ChatOpenAI`` make by
default. Every answer comes from the real bundled Gemma 3 270M through llama.cpp."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from langchain_openai import ChatOpenAI
from pydantic import BaseModel

from routerd.testing import build_app
from servers import running_gateway

MODEL = "gemma-3-270m"
SIGNATURE = f"Model: {MODEL}"
TURN_MARKERS = ("<end_of_turn>", "<start_of_turn>", "<eos>")


class Capital(BaseModel):
    city: str


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, gemma_path):
    """The gateway `make run` starts: the bundled model and background profiling, both on by default."""
    app = build_app(
        tmp_path_factory.mktemp("first-minutes"),
        {"plugins": {"local": {"enabled": True}}, "profiling": {"enabled": True}},
    )
    with running_gateway(app) as base:
        yield app.state.gateway, base


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=f"{gateway[1]}/v1", api_key="unused", max_retries=0, timeout=300)


def default_cap(gateway) -> int:
    return gateway[0].plugins.registry.backends["local"].settings.max_output_tokens


def test_the_readme_snippet_ends_at_the_end_of_the_models_turn(gateway, client):
    answer = client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": "Hi!"}])
    text = answer.choices[0].message.content
    assert answer.model == MODEL and text.endswith(SIGNATURE)
    assert answer.choices[0].finish_reason in ("stop", "length")
    assert 0 < answer.usage.completion_tokens <= default_cap(gateway)
    assert not any(marker in text for marker in TURN_MARKERS)


@pytest.mark.parametrize("limit", ["max_tokens", "max_completion_tokens"])
def test_the_output_limit_holds_in_either_name(client, limit):
    answer = client.chat.completions.create(
        model="routerd", messages=[{"role": "user", "content": "Write a long story about a dragon."}], **{limit: 6}
    )
    assert answer.usage.completion_tokens <= 6
    assert answer.choices[0].finish_reason == "length"


def test_langchain_invoke_stream_and_structured_output_then_routing_is_unharmed(gateway, client):
    chat = ChatOpenAI(base_url=f"{gateway[1]}/v1", api_key="unused", model="routerd", max_tokens=40, max_retries=0)
    said = chat.invoke("Name a colour.")
    assert said.content.endswith(SIGNATURE)
    assert said.response_metadata["token_usage"]["completion_tokens"] <= 40
    streamed = "".join(chunk.content for chunk in chat.stream("Name a fruit."))
    assert streamed.endswith(SIGNATURE)

    # Structured output: greedy decoding (temperature 0), as structured-output users commonly set it; sampled, the
    # pretrained 270M model now and then writes a string value past the 40 tokens, whatever the gateway does.
    exact = ChatOpenAI(
        base_url=f"{gateway[1]}/v1", api_key="unused", model="routerd", max_tokens=40, max_retries=0, temperature=0
    )
    capital = exact.with_structured_output(Capital).invoke("What is the capital of France? Answer in JSON.")
    assert isinstance(capital, Capital) and capital.city  # a json_schema response format, held by a grammar
    found = exact.with_structured_output(None, method="json_mode").invoke(
        "What is the capital of Italy? Answer in JSON with the key city."
    )
    assert isinstance(found, dict)  # {"type": "json_object"}: JSON, whatever its keys (the client gave no schema)

    # none of that counted against the local backend: an ordinary request still goes to the local model
    assert gateway[0].dispatcher.available("local")
    raw = client.chat.completions.with_raw_response.create(
        model="routerd", messages=[{"role": "user", "content": "Hi!"}], max_tokens=5
    )
    assert raw.headers["x-routerd-model"] == MODEL


def test_json_schema_answers_parse_streamed_and_not(client):
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "capital", "schema": schema, "strict": True}}
    messages = [{"role": "user", "content": "The capital of France, as JSON."}]
    answer = client.chat.completions.create(
        model="routerd", messages=messages, response_format=response_format, max_tokens=60
    )
    assert set(json.loads(answer.choices[0].message.content)) == {"city"}
    chunks = client.chat.completions.create(
        model="routerd", messages=messages, response_format=response_format, max_tokens=60, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert set(json.loads(text)) == {"city"}


def test_n_gives_as_many_choices(client):
    answer = client.chat.completions.create(
        model="routerd", messages=[{"role": "user", "content": "Hi!"}], n=2, max_tokens=5
    )
    assert [c.index for c in answer.choices] == [0, 1]
    assert all(c.message.content.endswith(SIGNATURE) for c in answer.choices)


def test_vendor_sampling_parameters_are_taken_and_a_misspelt_one_is_refused(client):
    answer = client.chat.completions.create(
        model="routerd", messages=[{"role": "user", "content": "Hi!"}], max_tokens=5, extra_body={"top_k": 1}
    )
    assert answer.choices[0].message.content
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="routerd", messages=[{"role": "user", "content": "Hi!"}], extra_body={"temprature": 0.2}
        )
    assert refused.value.body["param"] == "temprature"
    assert "temprature" in refused.value.body["message"]


def test_legacy_functions_without_a_tool_model_are_a_clear_400(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="routerd",
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            functions=[{"name": "weather", "parameters": {"type": "object", "properties": {}}}],
        )
    assert "tools" in refused.value.body["message"]


def test_a_prompt_longer_than_every_window_is_context_length_exceeded(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="routerd", messages=[{"role": "user", "content": "word " * 20_000}], max_tokens=5
        )
    assert refused.value.code == "context_length_exceeded"
    assert refused.value.body["param"] == "messages"


def test_readyz_is_ready_with_the_bundled_model(gateway):
    assert httpx.get(f"{gateway[1]}/readyz").status_code == 200
