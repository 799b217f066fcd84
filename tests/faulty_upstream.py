"""An OpenAI-compatible upstream with the faults the hardening tests need (tests/servers.py's replay server has
the answers' shapes; this one has time and load): answers that take a while to start and to end, upstreams that
never answer, errors that echo the request's `Authorization` header; it counts requests in flight (and their
peak) and notes each client that left. It runs on a loop of its own (`servers.aiohttp_in_thread`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from aiohttp import web

from servers import aiohttp_in_thread, chunk


@dataclass
class FaultState:
    """How the faulty upstream behaves (per model) and what it saw."""

    models: list[str] = field(default_factory=lambda: ["faulty-1"])
    # model -> seconds before the answer starts (a JSON answer's headers, a stream's first chunk)
    first_delay: dict[str, float] = field(default_factory=dict)
    # model -> seconds a stream goes on after its first chunk (a chunk every 0.1 s)
    stream_seconds: dict[str, float] = field(default_factory=dict)
    hang: set[str] = field(default_factory=set)  # models that accept the request and never answer
    # model -> the status of an error whose message echoes the Authorization header the request carried
    echo_auth: dict[str, int] = field(default_factory=dict)
    echo_auth_in_stream: set[str] = field(default_factory=set)  # models whose stream's second event is such an error
    requests: Counter = field(default_factory=Counter)  # model -> chat requests received
    in_flight: int = 0
    peak: int = 0  # the most chat requests in flight at once
    left: dict[str, list[float]] = field(default_factory=dict)  # model -> when (monotonic) a client went away

    def reset(self) -> None:
        self.requests.clear()
        self.peak = self.in_flight
        self.left.clear()


def _completion(model: str, text: str) -> dict:
    return {
        "id": "chatcmpl-faulty",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }


def faulty_app(state: FaultState) -> web.Application:
    def gone(request: web.Request) -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()

    async def wait(request: web.Request, model: str, seconds: float) -> bool:
        """Wait `seconds` (forever for a hanging model); False when the client went away meanwhile."""
        end = time.monotonic() + seconds
        while model in state.hang or time.monotonic() < end:
            if gone(request):
                state.left.setdefault(model, []).append(time.monotonic())
                return False
            await asyncio.sleep(0.02)
        return True

    async def models(_: web.Request) -> web.Response:
        card = {"object": "model", "created": 1_700_000_000, "owned_by": "faulty"}
        return web.json_response({"object": "list", "data": [{"id": m, **card} for m in state.models]})

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body["model"]
        state.requests[model] += 1
        state.in_flight += 1
        state.peak = max(state.peak, state.in_flight)
        try:
            authorization = request.headers.get("Authorization", "")
            # as a careless proxy words it: the header it got, in full
            message = (
                f"Invalid credentials in header Authorization: {authorization} "
                f"(api_key={authorization.removeprefix('Bearer ')}). Check your key."
            )
            error = {"message": message, "type": "server_error", "param": None, "code": None}
            if model in state.echo_auth:
                return web.json_response({"error": error}, status=state.echo_auth[model])
            if not await wait(request, model, state.first_delay.get(model, 0.0)):
                return web.Response(status=499)
            if not body.get("stream"):
                return web.json_response(_completion(model, "Fine."))
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            try:
                await response.write(chunk(model, {"role": "assistant", "content": "Fine"}))
                if model in state.echo_auth_in_stream:
                    await response.write(b"data: " + json.dumps({"error": error}).encode() + b"\n\n")
                    return response
                end = time.monotonic() + state.stream_seconds.get(model, 0.0)
                while time.monotonic() < end:
                    await asyncio.sleep(0.1)
                    await response.write(chunk(model, {"content": "."}))
                await response.write(chunk(model, {}, finish="stop"))
                await response.write(b"data: [DONE]\n\n")
            except (ConnectionResetError, asyncio.CancelledError):
                state.left.setdefault(model, []).append(time.monotonic())
                raise
            return response
        finally:
            state.in_flight -= 1

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    return app


@contextlib.contextmanager
def faulty_upstream(state: FaultState) -> Iterator[str]:
    """The faulty upstream; yields its ``/v1`` base URL."""
    with aiohttp_in_thread(faulty_app(state)) as base:
        yield f"{base}/v1"
