"""The gateway in front of a real llama.cpp server running the bundled Gemma 3 270M, with the
official openai SDK as the client: real tokens, real streams, real embeddings."""

from __future__ import annotations

import contextlib

import openai
import pytest

from routerd.testing import build_app
from servers import running_gateway

MODEL = "gemma-3-270m"


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)


@pytest.fixture(scope="module")
def client(llama_server, tmp_path_factory):
    app = build_app(tmp_path_factory.mktemp("gw"), {"plugins": {"llamacpp": {"url": llama_server}}})
    with running_gateway(app) as base:
        yield openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


def test_models_show_the_gateway_and_the_real_model(client):
    assert [m.id for m in client.models.list()] == ["routerd", MODEL]


def test_chat_gets_a_real_completion(client):
    completion = client.chat.completions.create(
        model="routerd", messages=[{"role": "user", "content": "Say hello."}], max_tokens=12, temperature=0
    )
    text = completion.choices[0].message.content
    assert completion.model == MODEL
    assert text.endswith(f"\n\nModel: {MODEL}")
    assert len(text) > len(f"\n\nModel: {MODEL}")  # the model said something
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert 0 < completion.usage.completion_tokens <= 12
    assert completion.usage.prompt_tokens > 0


def test_stream_gets_real_chunks_and_usage(client):
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Count: one, two,"}],
            max_tokens=8,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 3  # token by token, then the signature
    assert "".join(pieces).endswith(f"Model: {MODEL}")
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] in (
        ["stop"],
        ["length"],
    )
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_same_seed_same_answer(client):
    def ask() -> str:
        messages = [{"role": "user", "content": "Name a colour."}]
        answer = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=6, temperature=0.8, seed=42)
        return answer.choices[0].message.content

    assert ask() == ask()


def test_embeddings_are_real_vectors(client):
    batch = client.embeddings.create(model=MODEL, input=["the cat sat on the mat", "quarterly revenue grew"])
    single = client.embeddings.create(model=MODEL, input="the cat sat on the mat").data[0].embedding
    again = client.embeddings.create(model=MODEL, input="the cat sat on the mat").data[0].embedding
    first, second = (d.embedding for d in batch.data)
    assert len(first) == len(second) == len(single) == 640
    assert single == pytest.approx(again)
    # llama.cpp embeds a batch slightly differently from a single input; the meaning stays
    assert cosine(single, first) > 0.95
    assert cosine(single, first) > cosine(single, second)


def test_max_tokens_is_honoured(client):
    short = client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Tell me a long story."}], max_tokens=3
    )
    assert short.usage.completion_tokens <= 3
    assert short.choices[0].finish_reason == "length"


def test_stop_sequences_reach_the_model(client):
    with contextlib.suppress(openai.APIError):
        answer = client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "Write: a b c d e"}], max_tokens=20, stop=["c"]
        )
        assert "c" not in answer.choices[0].message.content.removesuffix(f"\n\nModel: {MODEL}").split()
