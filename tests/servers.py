"""Real servers for the gateway's tests, each on a free port of 127.0.0.1 in a thread of its own:
the gateway under uvicorn, and an OpenAI-compatible upstream that replays responses shaped as
the OpenAI API reference documents them, misbehaving on request."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from aiohttp import web

from routerd.http_server import uvicorn_options


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_gateway(app: Any) -> Iterator[str]:
    """Serve a Litestar app with uvicorn as `routerd serve` does (its HTTP protocol, lifespan
    included); yield its base URL."""
    port = free_port()
    options = uvicorn_options(app.state.gateway.settings.server)  # the limits and deadlines of `routerd serve`
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@dataclass
class ReplayState:
    """How the replay server behaves (per model) and what it saw."""

    models: list[str] = field(default_factory=lambda: ["replay-small", "replay-large"])
    # model -> more fields of its /v1/models entry (llama-server's `meta`, OpenRouter's `architecture`, ...)
    model_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    # model -> ok | error400 | error404 | error500 | malformed | die | slow | stall_first | stall | cut | tools |
    # tools_forever (calls `tool_calls` whatever the conversation holds) |
    # no_stream_options (a 400 for a body with stream_options, as Azure OpenAI API versions before 2024-07 answer) |
    # no_reasoning (OpenAI's 400 for reasoning_effort sent to a model that does not reason) |
    # one of UPSTREAM_ERRORS (the error a real server answers with, whatever the request) |
    # refuse_n (llama-server's refusal of n other than 1)
    behaviour: dict[str, str] = field(default_factory=dict)
    reply: str = "Hello from the replay server."
    echo_seed: bool = False  # the reply ends with " (seed N)", N the request's seed
    # when set, the answer carries the model's reasoning as DeepSeek's API and vLLM send it (reasoning_content,
    # before the content in a stream) and its usage the token details OpenAI documents
    reasoning: str = ""
    delay: dict[str, float] = field(default_factory=dict)  # model -> seconds before it answers
    requests: list[dict[str, Any]] = field(default_factory=list)
    # model -> substrings of the last message that make this model answer 500 (a failure mid-suite)
    fail_on: dict[str, list[str]] = field(default_factory=dict)
    disconnected_at: float | None = None
    down: bool = False
    # behaviour "tools": a request with tools gets, each time its last message is not a tool result, a call of
    # each of these (name, arguments), as OpenAI's API answers one (finish_reason "tool_calls"); after the
    # results, the answer quotes them
    tool_calls: list[tuple[str, str]] = field(default_factory=list)


# Errors real servers answer, as they write them: behaviour -> (status, JSON body).
UPSTREAM_ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    # OpenAI, a prompt over the context window (vLLM words it the same way)
    "context_length": (
        400,
        {
            "error": {
                "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in "
                "9000 tokens. Please reduce the length of the messages.",
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
        },
    ),
    # llama-server (llama.cpp's C++ server), the same
    "llama_server_context": (
        400,
        {
            "error": {
                "code": 400,
                "message": "request (9412 tokens) exceeds the available context size (8192 tokens), try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": 9412,
                "n_ctx": 8192,
            }
        },
    ),
    # llama-cpp-python's server, for a response_format type it does not know: a 500 with a traceback's frame
    "llama_cpp_python_validation": (
        500,
        {
            "error": {
                "message": "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', 'response_format', "
                "'type'), 'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', 'ctx': "
                "{'expected': \"'text' or 'json_object'\"}}\n\n  File \"/usr/lib/python3/dist-packages/llama_cpp/"
                'server/app.py", line 376, in create_chat_completion\n    POST /v1/chat/completions',
                "type": "internal_server_error",
                "param": None,
                "code": None,
            }
        },
    ),
    # a server that failed inside: a whole Python traceback in the message
    "traceback": (
        500,
        {
            "error": {
                "message": 'Traceback (most recent call last):\n  File "/opt/venv/lib/python3.11/site-packages/'
                'llama_cpp/llama.py", line 1204, in _create_completion\n    self.eval(tokens)\n  File '
                '"/opt/venv/lib/python3.11/site-packages/llama_cpp/_internals.py", line 311, in decode\n    '
                'raise RuntimeError(f"llama_decode returned {return_code}")\nRuntimeError: llama_decode returned '
                "-3 (see /var/log/llama/server.log)",
                "type": "internal_server_error",
                "param": None,
                "code": None,
            }
        },
    ),
    # a proxy's error page, long
    "huge_error": (502, {"error": {"message": "Bad gateway " + "x" * 100_000, "type": "server_error"}}),
}
LLAMA_SERVER_N_REFUSAL = {
    "error": {"code": 500, "message": "Only one completion choice is allowed", "type": "server_error"}
}

REASONING_DETAILS = {
    "prompt_tokens_details": {"cached_tokens": 3, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 4, "audio_tokens": 0},
}


def completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-replay",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "system_fingerprint": "fp_replay",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6, "total_tokens": 15},
    }


def chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-replay",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def usage_chunk(model: str, usage: dict[str, Any]) -> bytes:
    """The last chunk of a stream whose client asked for usage (``stream_options.include_usage``)."""
    body = {
        "id": "chatcmpl-replay",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [],
        "usage": usage,
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


async def stream_tool_calls(
    request: web.Request, body: dict[str, Any], model: str, calls: list[dict[str, Any]]
) -> web.StreamResponse:
    """Tool calls streamed as OpenAI's API streams them: each call's id, type and name with empty arguments
    first, then its arguments in two pieces; then ``finish_reason: tool_calls`` (and usage when asked for)."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    heads = [
        {
            "index": i,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        for i, call in enumerate(calls)
    ]
    await response.write(chunk(model, {"role": "assistant", "content": None, "tool_calls": heads}))
    for i, call in enumerate(calls):
        arguments = call["function"]["arguments"]
        half = len(arguments) // 2
        for piece in (arguments[:half], arguments[half:]):
            await response.write(chunk(model, {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}))
    await response.write(chunk(model, {}, finish="tool_calls"))
    if (body.get("stream_options") or {}).get("include_usage"):
        await response.write(usage_chunk(model, {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14}))
    await response.write(b"data: [DONE]\n\n")
    return response


def replay_app(state: ReplayState) -> web.Application:
    async def models(_: web.Request) -> web.Response:
        if state.down:
            return web.Response(status=503, text="down")
        card = {"object": "model", "created": 1_700_000_000, "owned_by": "replay"}
        data = [{"id": m, **card, **state.model_fields.get(m, {})} for m in state.models]
        return web.json_response({"object": "list", "data": data})

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        state.requests.append(body)
        model = body["model"]
        if model in state.delay:
            await asyncio.sleep(state.delay[model])
        behaviour = "down" if state.down else state.behaviour.get(model, "ok")
        last = str((body.get("messages") or [{}])[-1].get("content"))
        if any(part in last for part in state.fail_on.get(model, [])):
            behaviour = "error500"
        if behaviour in ("down", "error500"):
            return web.json_response({"error": {"message": "overloaded", "type": "server_error"}}, status=500)
        if behaviour == "error400":  # OpenAI's answer to an over-long message content
            error = {
                "message": "Invalid 'messages[0].content': string too long. Expected a string with maximum length "
                "10485760, but got a string with length 10485761 instead.",
                "type": "invalid_request_error",
                "param": "messages[0].content",
                "code": "string_above_max_length",
            }
            return web.json_response({"error": error}, status=400)
        if behaviour in UPSTREAM_ERRORS:
            status, error_body = UPSTREAM_ERRORS[behaviour]
            return web.json_response(error_body, status=status)
        if behaviour == "refuse_n" and body.get("n", 1) != 1:
            return web.json_response(LLAMA_SERVER_N_REFUSAL, status=500)
        if behaviour == "no_stream_options" and "stream_options" in body:
            error = {
                "message": "Unrecognized request argument supplied: stream_options",
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
            return web.json_response({"error": error}, status=400)
        if behaviour == "no_reasoning" and "reasoning_effort" in body:
            error = {
                "message": "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                "type": "invalid_request_error",
                "param": "reasoning_effort",
                "code": "unsupported_parameter",
            }
            return web.json_response({"error": error}, status=400)
        if behaviour == "error404":
            return web.json_response({"error": {"message": "model not found", "type": "not_found"}}, status=404)
        if behaviour == "malformed":
            return web.Response(text="<html>502 Bad Gateway</html>", content_type="application/json")
        reply = f"{state.reply} (seed {body.get('seed')})" if state.echo_seed else state.reply
        if behaviour in ("tools", "tools_forever") and body.get("tools"):
            messages = body.get("messages") or [{}]
            if messages[-1].get("role") != "tool" or behaviour == "tools_forever":
                calls = [
                    {"id": f"call_{i}_{len(state.requests)}", "type": "function",
                     "function": {"name": name, "arguments": arguments}}
                    for i, (name, arguments) in enumerate(state.tool_calls)
                ]  # fmt: skip
                if body.get("stream"):
                    return await stream_tool_calls(request, body, model, calls)
                answer = completion(model, "")
                answer["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": calls}
                answer["choices"][0]["finish_reason"] = "tool_calls"
                return web.json_response(answer)
            results = [m.get("content") for m in messages if m.get("role") == "tool"]
            reply = "The tools said: " + " | ".join(map(str, results))
            if not body.get("stream"):
                return web.json_response(completion(model, reply))
        if not body.get("stream"):
            answer = completion(model, reply)
            if state.reasoning:
                answer["choices"][0]["message"]["reasoning_content"] = state.reasoning
                answer["usage"].update(REASONING_DETAILS)
            return web.json_response(answer)
        if behaviour == "stall_first":
            await asyncio.sleep(5)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk(model, {"role": "assistant", "content": ""}))
        for i, word in enumerate(state.reasoning.split(" ") if state.reasoning else []):
            await response.write(chunk(model, {"reasoning_content": word if i == 0 else " " + word, "content": None}))
        words = reply.split(" ")
        try:
            for i, word in enumerate(words):
                await response.write(chunk(model, {"content": word if i == 0 else " " + word}))
                if behaviour == "die" and i == 1:
                    request.transport.close()  # the upstream dies mid-stream
                    return response
                if behaviour == "cut" and i == 1:  # as llama_cpp.server ends an interrupted stream
                    await response.write(b"data: [DONE]\n\n")
                    return response
                if behaviour == "slow":
                    await asyncio.sleep(0.5)
                if behaviour == "stall" and i == 1:
                    await asyncio.sleep(5)
            if behaviour == "slow":
                for _ in range(60):
                    await response.write(chunk(model, {"content": "."}))
                    await asyncio.sleep(0.5)
            await response.write(chunk(model, {}, finish="stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 9, "completion_tokens": len(words), "total_tokens": 9 + len(words)}
                if state.reasoning:
                    usage.update(REASONING_DETAILS)
                await response.write(usage_chunk(model, usage))
            await response.write(b"data: [DONE]\n\n")
        except (ConnectionResetError, asyncio.CancelledError):
            state.disconnected_at = time.monotonic()
            raise
        return response

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        state.requests.append(body)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [{"object": "embedding", "index": i, "embedding": [0.1 * (i + 1), 0.2, 0.3]} for i in range(len(inputs))]
        usage = {"prompt_tokens": len(inputs), "total_tokens": len(inputs)}
        return web.json_response({"object": "list", "data": data, "model": body["model"], "usage": usage})

    async def unload(request: web.Request) -> web.Response:  # llama-swap's
        state.requests.append({"unload": request.path})
        return web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/unload", unload)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/embeddings", embeddings)
    return app


@contextlib.contextmanager
def aiohttp_in_thread(app: web.Application) -> Iterator[str]:
    """Run an aiohttp app in its own thread and event loop on a free port; yield its base URL."""
    port = free_port()
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)

    async def stop() -> None:
        await runner.cleanup()
        # Handlers still waiting (a stalled stream, a slow answer) end here, not at interpreter exit.
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def replay_server(state: ReplayState) -> Iterator[str]:
    """The OpenAI-shaped replay server; yields its ``/v1`` base URL."""
    with aiohttp_in_thread(replay_app(state)) as base:
        yield f"{base}/v1"
