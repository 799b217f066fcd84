"""Capabilities, context window and size: the backend's metadata first, the name second, the
configuration's ``[models."<name>"]`` overrides over both (routerd.capabilities); for the
openai-compatible, llamacpp and ollama backends against their replay servers, and routing that
honours an override."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from litestar.testing import TestClient

from ollama_replay import OllamaReplay
from routerd import Capabilities, ModelInfo
from routerd.capabilities import ModelFacts
from routerd.config import ModelOverride, load_settings
from routerd.errors import ConfigError
from routerd.naming import capabilities_from_name, context_window_from_name
from routerd.testing import TEST_ADMIN_KEY, build_app
from servers import ReplayState, replay_server, running_gateway

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
PNG = (
    "data:image/png;base64,"
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
IMAGE_MESSAGE = {
    "role": "user",
    "content": [{"type": "text", "text": "What is in this picture?"}, {"type": "image_url", "image_url": {"url": PNG}}],
}
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
HARD = "Prove that the algorithm is correct for every edge case, optimize its complexity, and derive a rigorous bound."


def admin_models(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/admin/models", headers=ADMIN)
    assert response.status_code == 200, response.text
    return {model["id"]: model for model in response.json()["models"]}


# -- the mechanism ---------------------------------------------------------------------------
def test_metadata_wins_over_the_name_and_the_name_fills_the_rest():
    reported = ModelInfo(
        name="llava-13b",  # the name says vision and 13B
        backend="b",
        parameters=13_400_000_000,
        capabilities=Capabilities(vision=False, tools=False),  # the backend knows better
    )
    described = ModelFacts().describe(reported)
    assert described.capabilities == Capabilities(
        chat=True, vision=False, tools=False, embeddings=False, json_output=True
    )
    assert described.parameters == 13_400_000_000
    assert described.context_window is None  # nobody knows: left unknown, no origin
    assert described.metadata["origins"] == {
        "chat": "name",
        "vision": "metadata",
        "tools": "metadata",
        "embeddings": "name",
        "json_output": "name",
        "parameters": "metadata",
    }
    assert "overrides" not in described.metadata


def test_the_configuration_wins_over_both_globs_in_order_then_exact_names():
    overrides = {
        "qwen2.5:*": ModelOverride(tools=False, context_window=8192),
        "qwen2.5:7b*": ModelOverride(vision=True, context_window=32768),
        "qwen2.5:7b-instruct": ModelOverride(tools=True),
        "other/*": ModelOverride(parameters=1),
    }
    facts = ModelFacts(overrides)
    seven = facts.describe(
        ModelInfo(name="qwen2.5:7b-instruct", backend="ollama", context_window=4096, capabilities=Capabilities())
    )
    assert seven.capabilities.vision and seven.capabilities.tools  # the exact name has the last word
    assert seven.context_window == 32768  # the later glob over the earlier one, over the metadata
    assert seven.parameters == 7_000_000_000  # no override: the name
    assert seven.metadata["overrides"] == ["qwen2.5:*", "qwen2.5:7b*", "qwen2.5:7b-instruct"]
    origins = seven.metadata["origins"]
    assert (origins["vision"], origins["tools"], origins["context_window"], origins["parameters"]) == (
        "config",
        "config",
        "config",
        "name",
    )
    half = facts.describe(ModelInfo(name="qwen2.5:0.5b", backend="ollama", capabilities=Capabilities(tools=True)))
    assert (half.capabilities.tools, half.context_window, half.capabilities.vision) == (False, 8192, False)
    # a pattern may name the backend too (``<backend>/<name>``), for one backend's copy of a model
    other = facts.describe(ModelInfo(name="gemma-2b", backend="other"))
    assert other.parameters == 1 and other.metadata["overrides"] == ["other/*"]


def test_name_rules():
    assert capabilities_from_name("nomic-embed-text") == Capabilities(
        chat=False, vision=False, tools=False, embeddings=True, json_output=False
    )
    assert capabilities_from_name("whisper-1").chat is False
    assert capabilities_from_name("tts-1-hd").chat is False
    assert capabilities_from_name("dall-e-3").chat is False
    assert capabilities_from_name("gpt-4o-mini").vision is True
    assert capabilities_from_name("gemma-3-270m").vision is False
    assert capabilities_from_name("qwen2.5:7b").tools is True
    assert context_window_from_name("gpt-4-32k") == 32768
    assert context_window_from_name("yarn-mistral-7b-128k") == 131072
    assert context_window_from_name("qwen2.5:7b-instruct-q4_K_M") is None
    assert context_window_from_name("llama3.1:8b") is None


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ('[models."qwen*"]\nvsion = true\n', 'models."qwen*".vsion (from '),
        ('[models."qwen*"]\ncontext_window = 0\n', 'models."qwen*".context_window'),
        ('[models."qwen*"]\nparameters = -5\n', 'models."qwen*".parameters'),
        ('[models."qwen*"]\ntools = "maybe"\n', 'models."qwen*".tools'),
        ("[models]\nqwen = 3\n", 'models."qwen"'),
        ('[models.""]\ntools = true\n', "models"),
    ],
)
def test_bad_overrides_stop_start_up_naming_the_key(tmp_path, toml, error):
    path = tmp_path / "routerd.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert str(caught.value).startswith(error)


def test_overrides_from_the_file_and_from_json_in_the_environment(tmp_path):
    path = tmp_path / "routerd.toml"
    path.write_text(
        '[models."qwen2.5:7b*"]\nvision = false\ntools = true\ncontext_window = 32768\nparameters = 7_600_000_000\n'
    )
    assert load_settings(path, environ={}).models == {
        "qwen2.5:7b*": ModelOverride(vision=False, tools=True, context_window=32768, parameters=7_600_000_000)
    }
    from_env = load_settings(None, environ={"ROUTERD__MODELS": '{"gpt-4o*": {"tools": false}}'})
    assert from_env.models == {"gpt-4o*": ModelOverride(tools=False)}


# -- each backend against its replay server --------------------------------------------------
@contextlib.contextmanager
def client_for(tmp_path, config: dict[str, Any]) -> Iterator[TestClient]:
    with TestClient(build_app(tmp_path, config)) as client:
        yield client


def test_openai_compatible_backend(tmp_path):
    state = ReplayState(
        models=["gpt-4o", "llava-clone", "plain-7b", "text-embedding-3-small"],
        model_fields={
            # OpenRouter's model list: modalities, supported parameters, context length
            "llava-clone": {"architecture": {"input_modalities": ["text"], "output_modalities": ["text"]}},
            "plain-7b": {"context_length": 8192, "supported_parameters": ["temperature", "max_tokens"]},
        },
    )
    with replay_server(state) as url:
        config = {"plugins": {"openai": {"base_url": url}}, "models": {"plain-*": {"tools": True, "parameters": 8e9}}}
        with client_for(tmp_path, config) as client:
            models = admin_models(client)
    gpt = models["gpt-4o"]
    assert (gpt["capabilities"]["vision"], gpt["capabilities"]["tools"]) == (True, True)
    assert (gpt["origins"]["vision"], gpt["origins"]["tools"]) == ("name", "name")
    clone = models["llava-clone"]
    assert clone["capabilities"]["vision"] is False and clone["origins"]["vision"] == "metadata"
    plain = models["plain-7b"]
    assert (plain["context_window"], plain["origins"]["context_window"]) == (8192, "metadata")
    assert (plain["capabilities"]["tools"], plain["origins"]["tools"]) == (True, "config")  # metadata said no
    assert (plain["parameters"], plain["origins"]["parameters"]) == (8_000_000_000, "config")
    assert plain["overrides"] == ["plain-*"]
    embedder = models["text-embedding-3-small"]["capabilities"]
    assert (embedder["chat"], embedder["embeddings"], embedder["tools"]) == (False, True, False)


def test_llamacpp_backend(tmp_path):
    meta = {"vocab_type": 2, "n_vocab": 152064, "n_ctx_train": 32768, "n_embd": 3584, "size": 4677120000}
    state = ReplayState(
        models=["qwen2.5-vl-7b-instruct-q4_k_m.gguf", "mystery.gguf"],
        model_fields={
            "qwen2.5-vl-7b-instruct-q4_k_m.gguf": {
                "meta": {**meta, "n_params": 7615616512},
                "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},  # no mmproj loaded
            },
            "mystery.gguf": {"meta": {**meta, "n_params": 1_500_000_000}},
        },
    )
    with replay_server(state) as url:
        config = {
            "plugins": {"llamacpp": {"url": url.removesuffix("/v1")}},
            "models": {"mystery.gguf": {"vision": True, "context_window": 4096}},
        }
        with client_for(tmp_path, config) as client:
            models = admin_models(client)
    qwen = models["qwen2.5-vl-7b-instruct-q4_k_m.gguf"]
    assert (qwen["capabilities"]["vision"], qwen["origins"]["vision"]) == (False, "metadata")  # the name says VL
    assert (qwen["parameters"], qwen["origins"]["parameters"]) == (7615616512, "metadata")  # the name says 7B
    assert (qwen["context_window"], qwen["size_bytes"]) == (32768, 4677120000)
    assert (qwen["capabilities"]["tools"], qwen["origins"]["tools"]) == (True, "name")
    mystery = models["mystery.gguf"]
    assert (mystery["capabilities"]["vision"], mystery["origins"]["vision"]) == (True, "config")
    assert (mystery["context_window"], mystery["origins"]["context_window"]) == (4096, "config")
    assert (mystery["parameters"], mystery["origins"]["parameters"]) == (1_500_000_000, "metadata")


def test_ollama_backend(tmp_path):
    server = OllamaReplay()
    server.start()
    try:
        config = {
            "plugins": {"ollama": {"url": server.url}},
            "models": {"llama3.2:*": {"tools": False}, "qwen2.5:0.5b": {"context_window": 8192}},
        }
        with client_for(tmp_path, config) as client:
            models = admin_models(client)
    finally:
        server.stop()
    llama = models["llama3.2:latest"]
    assert (llama["capabilities"]["tools"], llama["origins"]["tools"]) == (False, "config")  # Ollama said yes
    assert (llama["capabilities"]["chat"], llama["origins"]["chat"]) == (True, "metadata")
    assert (llama["parameters"], llama["origins"]["parameters"]) == (3212749888, "metadata")
    llava = models["llava:latest"]
    assert (llava["capabilities"]["vision"], llava["origins"]["vision"]) == (True, "metadata")
    qwen = models["qwen2.5:0.5b"]  # an older server: no capabilities list
    assert (qwen["capabilities"]["vision"], qwen["origins"]["vision"]) == (False, "name")
    assert (qwen["context_window"], qwen["origins"]["context_window"]) == (8192, "config")  # Ollama said 32768


# -- routing honours the overrides -----------------------------------------------------------
def test_a_model_made_vision_capable_by_config_receives_an_image_request(tmp_path):
    state = ReplayState(models=["plain-7b", "other-7b"])
    with replay_server(state) as url:
        without = {"plugins": {"openai": {"base_url": url}}}
        with running_gateway(build_app(tmp_path / "without", without)) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            with pytest.raises(openai.BadRequestError, match="no model with vision"):
                client.chat.completions.create(model="routerd", messages=[IMAGE_MESSAGE])
        with_override = {**without, "models": {"plain-*": {"vision": True}}}
        with running_gateway(build_app(tmp_path / "with", with_override)) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            answer = client.chat.completions.create(model="routerd", messages=[IMAGE_MESSAGE])
    assert answer.model == "plain-7b"
    assert state.requests[-1]["messages"][0]["content"][1]["image_url"]["url"] == PNG


def test_a_model_made_tool_less_by_config_no_longer_gets_tools_requests(tmp_path):
    big, small = ReplayState(models=["tooly-70b"]), ReplayState(models=["small-1b"])
    with replay_server(big) as first, replay_server(small) as second:
        plugins = {"openai": {"base_url": first}, "llamacpp": {"url": second.removesuffix("/v1")}}
        config = {"plugins": plugins, "models": {"tooly-70b": {"tools": False}}}
        with running_gateway(build_app(tmp_path, config)) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            hard = client.chat.completions.create(model="routerd", messages=[{"role": "user", "content": HARD}])
            with_tools = client.chat.completions.create(
                model="routerd", messages=[{"role": "user", "content": HARD}], tools=TOOLS
            )
            with pytest.raises(openai.BadRequestError, match="cannot call tools"):
                client.chat.completions.create(
                    model="tooly-70b", messages=[{"role": "user", "content": "x"}], tools=TOOLS
                )
    assert hard.model == "tooly-70b"  # the big model wins a hard prompt that needs no tools
    assert with_tools.model == "small-1b"  # but tools go elsewhere
    assert all("tools" not in request for request in big.requests)
    assert small.requests[-1]["tools"] == TOOLS
