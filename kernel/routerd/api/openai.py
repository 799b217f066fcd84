"""The OpenAI-compatible endpoints: chat completions (JSON and SSE), models, embeddings.

The two POST endpoints are on every request's hot path, so they are Litestar ASGI route
handlers: Litestar routes to them and its exception handlers still turn every error into the
OpenAI shape, but the per-request machinery of an HTTP handler (signature model, kwargs,
response object) is skipped; the body is read, capped and decoded here, and the answer is sent
as two ASGI messages. They behave as HTTP handlers would: 405 with ``Allow`` for other methods,
204 for ``OPTIONS``, 413 above ``server.max_body_bytes``. bench/overhead.py measures the gain.
"""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qsl

import msgspec
from litestar import MediaType, Request, Response, asgi, get
from litestar.exceptions import InternalServerException, MethodNotAllowedException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from routerd.api.streaming import estimate_usage, relay_events, send_events
from routerd.errors import GatewayError, InvalidRequest, ModelNotFound
from routerd.routing import RoutingDecision
from routerd.schemas.openai import (
    ChatCompletion,
    ChatRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
    Usage,
)

_encoder = msgspec.json.Encoder()
_chat_decoder = msgspec.json.Decoder(ChatRequest)
_embedding_decoder = msgspec.json.Decoder(EmbeddingRequest)

_JSON = (b"content-type", b"application/json")
_ALLOW = (b"allow", b"OPTIONS, POST")
_SSE = [
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
    (b"content-type", b"text/event-stream; charset=utf-8"),
]


def decode(decoder: msgspec.json.Decoder, body: bytes):
    """Decode a request body; a bad one is a 400 that names the field."""
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        param = message.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in message else None
        if param is not None:
            param = param.replace("[...]", "")  # msgspec's mark for a value under some key of a mapping
        raise InvalidRequest(f"invalid request: {message}", param=param) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def as_base64(vector: list[float] | str) -> str:
    """An embedding as the OpenAI API's base64 form: little-endian float32."""
    if isinstance(vector, str):
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refused with a 413 above `limit` bytes (announced or received), as
    Litestar's ``Request.body()`` does."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if value.isdigit() and int(value) > limit:
                raise RequestEntityTooLarge
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            body = message.get("body", b"")
            if body:
                size += len(body)
                if size > limit:
                    raise RequestEntityTooLarge
                chunks.append(body)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise InternalServerException("client disconnected prematurely")
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def query_param(scope: Scope, name: str) -> str | None:
    """The first value of a query parameter (most requests have no query string at all)."""
    query = scope.get("query_string")
    if not query:
        return None
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key == name:
            return value
    return None


def _pinned(scope: Scope, requested: object, external_name: str) -> str | None:
    """The model a request names (``?model=`` wins over the body), or None to route."""
    name = query_param(scope, "model") or (requested if isinstance(requested, str) else None)
    if not name or name in (external_name, "auto"):
        return None
    return name


def decision_headers(decision: RoutingDecision, model: str) -> list[tuple[bytes, bytes]]:
    headers = [(b"x-routerd-model", model.encode("latin-1")), (b"x-routerd-decision-id", decision.id.encode())]
    if decision.runner_up is not None:
        headers.append((b"x-routerd-runner-up", decision.runner_up.id.encode("latin-1")))
    if decision.dispatcher is not None:  # LLM dispatcher mode
        headers.append((b"x-routerd-dispatcher", decision.dispatcher.header().encode("latin-1", "replace")))
    return headers


async def send_json(send: Send, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    headers += (_JSON, (b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


Endpoint = Callable[[Scope, Receive, Send, bytes], Awaitable[None]]


def post_endpoint(path: str) -> Callable[[Endpoint], ASGIRouteHandler]:
    """An ASGI route handler for ``POST path`` that authenticates the caller and reads the body
    before calling `endpoint(scope, receive, send, body)`."""

    def wrap(endpoint: Endpoint) -> ASGIRouteHandler:
        async def handler(scope: Scope, receive: Receive, send: Send) -> None:
            method = scope["method"]
            if method != "POST":
                if method == "OPTIONS":
                    await send({"type": "http.response.start", "status": 204, "headers": [_ALLOW]})
                    await send({"type": "http.response.body", "body": b""})
                    return
                raise MethodNotAllowedException(headers={"Allow": "POST, OPTIONS"})
            gateway = scope["litestar_app"].state.gateway
            await gateway.auth.principal_of(scope)
            body = await read_body(scope, receive, gateway.settings.server.max_body_bytes)
            await endpoint(scope, receive, send, body)

        handler.__name__ = handler.__qualname__ = endpoint.__name__
        handler.__doc__ = endpoint.__doc__
        return asgi(path, copy_scope=False, name=endpoint.__name__)(handler)

    return wrap


@post_endpoint("/v1/chat/completions")
async def chat_completions(scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
    gateway = scope["litestar_app"].state.gateway
    chat: ChatRequest = decode(_chat_decoder, body)
    settings = gateway.settings
    gateway.signature.clean_request(chat)
    decision = await gateway.router.decide(
        chat,
        pinned=_pinned(scope, chat.model, settings.routing.external_model_name),
        preference=quality_preference(scope, settings.routing.quality_preference),
        principal=await gateway.auth.principal_of(scope),
    )
    record, started = decision.record, time.perf_counter()

    def outcome(status: str, usage: Usage | None = None, response_id: str | None = None) -> None:
        gateway.decisions.finish(
            record,
            status=status,
            latency_ms=(time.perf_counter() - started) * 1000,
            prompt_tokens=usage.prompt_tokens if usage else None,
            completion_tokens=usage.completion_tokens if usage else None,
            response_id=response_id,
        )

    try:
        if chat.stream:
            start = await gateway.dispatcher.start_stream(decision.ranked, chat)
            record.chosen_model, record.ttft_ms = start.entry.id, (time.perf_counter() - started) * 1000
            headers = decision_headers(decision, start.entry.id) + _SSE
            await send_events(receive, send, headers, relay_events(gateway, chat, start, outcome))
            return
        completion, entry = await gateway.dispatcher.chat(decision.ranked, chat)
    except GatewayError:
        outcome("error")
        raise
    record.chosen_model = entry.id
    completion = finish_completion(gateway, chat, completion, entry.id)
    outcome("ok", completion.usage, completion.id)
    await send_json(send, _encoder.encode(completion), decision_headers(decision, entry.id))


def quality_preference(scope: Scope, default: float) -> float:
    """The request's ``X-Routerd-Quality-Preference`` (0 = fastest and cheapest, 1 = best), or the
    configured default."""
    for name, value in scope["headers"]:
        if name == b"x-routerd-quality-preference":
            try:
                preference = float(value)
            except ValueError:
                preference = -1.0
            if not 0.0 <= preference <= 1.0:
                raise InvalidRequest(
                    "X-Routerd-Quality-Preference must be a number from 0 to 1",
                    param="X-Routerd-Quality-Preference",
                )
            return preference
    return default


def finish_completion(gateway, chat: ChatRequest, completion: ChatCompletion, model: str) -> ChatCompletion:
    """Name the model, sign text answers, and fill in usage when the backend gave none."""
    completion.model = model
    signature = gateway.signature
    text = ""
    for choice in completion.choices:
        content = choice.message.content
        if isinstance(content, str):
            content = signature.strip(content)
            if not chat.wants_json() and not choice.message.tool_calls:
                content += signature.render(model)
            choice.message.content = content
            text += content
    if completion.usage is None:
        completion.usage = estimate_usage(chat, text)
    return completion


@get("/v1/models")
async def list_models(request: Request) -> Response:
    gateway = request.app.state.gateway
    await gateway.auth.principal(request)
    now = int(time.time())
    cards = [ModelCard(id=gateway.settings.routing.external_model_name, created=now, owned_by="routerd")]
    if gateway.settings.response.list_real_models:
        cards += [ModelCard(id=e.id, created=now, owned_by=e.info.backend) for e in gateway.catalog]
    return Response(_encoder.encode(ModelList(data=cards)), media_type=MediaType.JSON)


@post_endpoint("/v1/embeddings")
async def embeddings(scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
    gateway = scope["litestar_app"].state.gateway
    request: EmbeddingRequest = decode(_embedding_decoder, body)
    inputs = [request.input] if isinstance(request.input, str) else request.input
    settings = gateway.settings
    named = _pinned(scope, request.model, settings.routing.external_model_name) or settings.routing.embed_model
    if named:
        entry = gateway.catalog.get(named)
        if entry is None:
            raise ModelNotFound(f"the model {named!r} does not exist", param="model", code="model_not_found")
        targets = [entry]
    else:
        targets = [e for e in gateway.catalog if e.info.capabilities.embeddings]
        if not targets:
            raise ModelNotFound("no embedding model is available", code="no_capable_model")
    result, entry = await gateway.dispatcher.embed(targets, inputs)
    result.model = entry.id
    if request.encoding_format == "base64":
        for item in result.data:
            item.embedding = as_base64(item.embedding)
    await send_json(send, _encoder.encode(result), [(b"x-routerd-model", entry.id.encode("latin-1"))])


ROUTES = [chat_completions, list_models, embeddings]
