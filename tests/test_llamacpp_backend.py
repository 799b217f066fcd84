"""The llamacpp plugin: llama-server's model metadata, several servers, llama-swap unloading,
and tool-capable routing."""

from __future__ import annotations

import json

import openai
import pytest
from aiohttp import web

from routerd.testing import build_app
from routerd_llamacpp import LlamaCppBackend
from servers import ReplayState, free_port, replay_server, running_gateway

pytestmark = pytest.mark.anyio


async def test_llama_server_metadata_gives_size_and_context(tmp_path):
    """llama-server lists each model with `meta` (parameters, size, training context)."""
    entry = {
        "id": "qwen2.5-7b-instruct-q4_k_m.gguf",
        "object": "model",
        "owned_by": "llamacpp",
        "meta": {
            "vocab_type": 2,
            "n_vocab": 152064,
            "n_ctx_train": 32768,
            "n_embd": 3584,
            "n_params": 7615616512,
            "size": 4677120000,
        },
    }

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [entry]})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    backend = LlamaCppBackend("llamacpp", f"http://127.0.0.1:{port}", llama_swap=False, connect_timeout=2)
    await backend.start()
    try:
        [model] = await backend.list_models()
    finally:
        await backend.close()
        await runner.cleanup()
    assert model.name == "qwen2.5-7b-instruct-q4_k_m.gguf"
    assert model.parameters == 7615616512
    assert model.size_bytes == 4677120000
    assert model.context_window == 32768


async def test_llama_swap_unloads_through_its_unload_endpoint():
    state = ReplayState(models=["a"])
    with replay_server(state) as url:
        backend = LlamaCppBackend("llamacpp", url.removesuffix("/v1"), llama_swap=True, connect_timeout=2)
        await backend.start()
        try:
            await backend.unload("a")
        finally:
            await backend.close()
    assert state.requests == [{"unload": "/unload"}]


def test_several_servers_are_several_backends(tmp_path):
    one, two = ReplayState(models=["one-1b"]), ReplayState(models=["two-3b"])
    with replay_server(one) as first, replay_server(two) as second:
        config = {"plugins": {"llamacpp": {"url": first.removesuffix("/v1"), "urls": [second]}}}
        app = build_app(tmp_path, config)
        with running_gateway(app) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            assert sorted(m.id for m in client.models.list()) == ["one-1b", "routerd", "two-3b"]
            assert client.chat.completions.create(
                model="two-3b", messages=[{"role": "user", "content": "x"}]
            ).model == ("two-3b")
    assert sorted(app.state.gateway.plugins.registry.backends) == ["llamacpp", "llamacpp-2"]
    assert json.dumps(two.requests[-1]["messages"]) == '[{"role": "user", "content": "x"}]'


def test_requests_with_tools_go_only_to_tool_capable_models(tmp_path):
    no_tools, with_tools = ReplayState(models=["plain-70b"]), ReplayState(models=["tooly-1b"])
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    with replay_server(no_tools) as first, replay_server(with_tools) as second:
        config = {"plugins": {"openai": {"base_url": first, "tools": False}, "llamacpp": {"url": second}}}
        with running_gateway(build_app(tmp_path, config)) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            hard = [{"role": "user", "content": "Prove the algorithm correct, optimize it, derive a rigorous bound."}]
            plain = client.chat.completions.create(model="routerd", messages=hard)
            tooly = client.chat.completions.create(
                model="routerd", messages=[{"role": "user", "content": "x"}], tools=tools
            )
            with pytest.raises(openai.BadRequestError, match="cannot call tools"):
                client.chat.completions.create(
                    model="plain-70b", messages=[{"role": "user", "content": "x"}], tools=tools
                )
    assert plain.model == "plain-70b"  # a hard prompt goes to the big model when tools are not needed
    assert tooly.model == "tooly-1b"
