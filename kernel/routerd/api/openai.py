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

import msgspec
from litestar import MediaType, Request, Response, asgi, get
from litestar.exceptions import InternalServerException, MethodNotAllowedException
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.handlers import ASGIRouteHandler
from litestar.types import Receive, Scope, Send

from routerd.errors import InvalidRequest, ModelNotFound
from routerd.pipeline.chat import pinned_model, send_json
from routerd.schemas.openai import ChatRequest, EmbeddingRequest, ModelCard, ModelList

_encoder = msgspec.json.Encoder()
_chat_decoder = msgspec.json.Decoder(ChatRequest)
_embedding_decoder = msgspec.json.Decoder(EmbeddingRequest)

_ALLOW = (b"allow", b"OPTIONS, POST")


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
    await gateway.chat.handle(scope, receive, send, chat, await gateway.auth.principal_of(scope))


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
    named = pinned_model(scope, request.model, settings.routing.external_model_name) or settings.routing.embed_model
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
