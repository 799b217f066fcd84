"""What chat UIs see in ``GET /v1/models`` (issue 13), through the openai SDK against a served gateway: each card
says what its model can do in the extra fields other gateways use, embedding models stay out of the chat listing
unless asked for (``response.hide_embedding_models``, ``?type=``), and a chat request that names one keeps its
clear 400."""

from __future__ import annotations

import httpx
import openai
import pytest

from routerd.testing import FAKE_PLUGIN, build_app
from servers import running_gateway

MODELS = {
    "models": [
        {"name": "chat-1b", "parameters": 1_000_000_000, "context_window": 4096},
        {"name": "tools-8b", "parameters": 8_000_000_000, "context_window": 32768, "tools": True},
        {"name": "llava-7b", "parameters": 7_000_000_000, "context_window": 8192, "vision": True},
        {"name": "nomic-embed-text", "context_window": 2048, "embeddings": True},
    ]
}
CHAT_PARAMETERS = [
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
    "frequency_penalty",
    "presence_penalty",
]


def serve(tmp_path, **config):
    app = build_app(tmp_path, {"plugins": {"fake": MODELS}, **config}, [FAKE_PLUGIN])
    return running_gateway(app)


def client_of(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


def test_each_card_says_what_its_model_can_do_and_embedding_models_stay_out(tmp_path) -> None:
    with serve(tmp_path) as base:
        cards = {m.id: m.model_dump(exclude_unset=True) for m in client_of(base).models.list().data}
    assert list(cards) == ["routerd", "chat-1b", "tools-8b", "llava-7b"]
    assert cards["tools-8b"] == {
        "id": "tools-8b",
        "created": cards["tools-8b"]["created"],
        "object": "model",
        "owned_by": "fake",
        "type": "chat",
        "context_length": 32768,
        "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
        "supported_parameters": [
            *CHAT_PARAMETERS,
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "response_format",
            "structured_outputs",
        ],
        "capabilities": {"chat": True, "vision": False, "tools": True, "json_output": True, "embeddings": False},
    }
    assert cards["chat-1b"]["capabilities"]["tools"] is False
    assert "tools" not in cards["chat-1b"]["supported_parameters"]
    assert cards["llava-7b"]["architecture"]["input_modalities"] == ["text", "image"]
    assert cards["llava-7b"]["capabilities"]["vision"] is True
    # the gateway's own model: what routing reaches through it
    own = cards["routerd"]
    assert own["owned_by"] == "routerd" and own["type"] == "chat"
    assert own["context_length"] == 32768
    assert own["capabilities"] == {"chat": True, "vision": True, "tools": True, "json_output": True, "embeddings": True}
    assert own["architecture"]["input_modalities"] == ["text", "image"]


def test_type_lists_embedding_models_or_every_model_and_a_bad_type_is_a_400(tmp_path) -> None:
    with serve(tmp_path) as base:
        embedding = httpx.get(f"{base}/v1/models", params={"type": "embedding"}).json()["data"]
        every = httpx.get(f"{base}/v1/models", params={"type": "all"}).json()["data"]
        chat = httpx.get(f"{base}/v1/models", params={"type": "chat"}).json()["data"]
        bad = httpx.get(f"{base}/v1/models", params={"type": "audio"})
        vectors = client_of(base).embeddings.create(model="nomic-embed-text", input="hi")
    assert [m["id"] for m in embedding] == ["nomic-embed-text"]
    assert embedding[0]["type"] == "embedding"
    assert embedding[0]["architecture"] == {"input_modalities": ["text"], "output_modalities": ["embeddings"]}
    assert embedding[0]["capabilities"] == {
        "chat": False,
        "vision": False,
        "tools": False,
        "json_output": False,
        "embeddings": True,
    }
    assert embedding[0]["supported_parameters"] == ["encoding_format"]
    assert [m["id"] for m in every] == ["routerd", "chat-1b", "tools-8b", "llava-7b", "nomic-embed-text"]
    assert [m["id"] for m in chat] == ["routerd", "chat-1b", "tools-8b", "llava-7b"]
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "type" and "chat, embedding, all" in bad.json()["error"]["message"]
    assert len(vectors.data[0].embedding) == 8


@pytest.mark.parametrize(
    ("response", "listed"),
    [
        ({"hide_embedding_models": False}, ["routerd", "chat-1b", "tools-8b", "llava-7b", "nomic-embed-text"]),
        ({"list_real_models": False}, ["routerd"]),
    ],
    ids=["embedding models shown", "real models not listed"],
)
def test_the_listing_settings(tmp_path, response, listed) -> None:
    with serve(tmp_path, response=response) as base:
        ids = [m.id for m in client_of(base).models.list().data]
    assert ids == listed


def test_a_chat_request_naming_an_embedding_model_keeps_its_clear_400(tmp_path) -> None:
    with serve(tmp_path) as base:
        with pytest.raises(openai.BadRequestError) as refused:
            client_of(base).chat.completions.create(
                model="nomic-embed-text", messages=[{"role": "user", "content": "Hi"}]
            )
    assert refused.value.body == {
        "message": "the model 'nomic-embed-text' is not a chat model",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_incapable",
    }
