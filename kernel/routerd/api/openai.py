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

from routerd.catalog import CatalogEntry
from routerd.errors import InvalidRequest, ModelNotFound
from routerd.pipeline.chat import pinned_model, send_json
from routerd.schemas.openai import (
    Architecture,
    CardCapabilities,
    ChatRequest,
    EmbeddingRequest,
    EmbeddingResponse,
    ModelCard,
    ModelList,
)

_encoder = msgspec.json.Encoder()
_chat_decoder = msgspec.json.Decoder(ChatRequest)
_embedding_decoder = msgspec.json.Decoder(EmbeddingRequest)

_ALLOW = (b"allow", b"OPTIONS, POST")


def decode(decoder: msgspec.json.Decoder, body: bytes):
    """Decode a request body; a bad one is a 400 that names the field. A top-level field the schema does not
    know is refused as OpenAI refuses one: ``Unrecognized request argument supplied: <name>``, with the name in
    ``param`` and the code ``unknown_parameter`` (the schema forbids unknown fields, so a valid body costs
    nothing more to decode; which fields are unknown is worked out only for a refused one)."""
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        try:
            return decoder.decode(body)
        except msgspec.ValidationError as exc:
            message = str(exc)
            if message.startswith(_UNKNOWN_FIELD) and " - at `$" not in message:
                raise unknown_parameters(decoder.type, body, message) from None
            param = message.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in message else None
            if param is not None:
                param = param.replace("[...]", "")  # msgspec's mark for a value under some key of a mapping
            raise InvalidRequest(f"invalid request: {message}", param=param) from None
        except msgspec.DecodeError as exc:
            raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    except RecursionError:  # msgspec's answer to JSON nested deeper than Python's recursion limit
        raise InvalidRequest("the request body's JSON is nested too deeply") from None


_UNKNOWN_FIELD = "Object contains unknown field `"


def unknown_parameters(schema: type[msgspec.Struct], body: bytes, message: str) -> InvalidRequest:
    """The 400 for a body with top-level fields `schema` does not have: every such field named, in the body's
    order (msgspec's `message` names the first only)."""
    try:
        fields = msgspec.json.decode(body)
    except msgspec.DecodeError:  # the error was found before the JSON's own: name what msgspec named
        fields = {}
    known = schema.__struct_fields__
    names = [str(name) for name in fields if name not in known] if isinstance(fields, dict) else []
    if not names:
        names = [message[len(_UNKNOWN_FIELD) :].split("`", 1)[0]]
    plural = "s" if len(names) > 1 else ""
    return InvalidRequest(
        f"Unrecognized request argument{plural} supplied: {', '.join(names)}",
        param=names[0],
        code="unknown_parameter",
    )


def check_dimensions(result: EmbeddingResponse, entry: CatalogEntry, dimensions: int) -> None:
    """``dimensions``: the backends give each model's own vectors, which the gateway cannot shorten (truncating is
    right only for models trained for it), so a size other than the model's is refused, never ignored."""
    size = len(result.data[0].embedding) if result.data else dimensions
    if size != dimensions:
        raise InvalidRequest(
            f"the model {entry.id!r} makes vectors of {size} dimensions and cannot shorten them; "
            f"leave dimensions out or send {size}",
            param="dimensions",
            code="unsupported_parameter",
        )


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
    traffic = gateway.traffic  # counted until the answer is sent, a stream to its end: background work yields
    traffic.request_started()
    try:
        chat: ChatRequest = decode(_chat_decoder, body)
        await gateway.chat.handle(scope, receive, send, chat, await gateway.auth.principal_of(scope))
    finally:
        traffic.request_ended()


# The request parameters a model card lists (OpenRouter's ``supported_parameters``): what every chat model takes,
# then what takes a capability. Vendor sampling parameters (top_k, ...) are left out: not every backend has them.
CHAT_PARAMETERS = (
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
    "frequency_penalty",
    "presence_penalty",
)
TOOL_PARAMETERS = ("tools", "tool_choice", "parallel_tool_calls")
JSON_PARAMETERS = ("response_format", "structured_outputs")
EMBEDDING_PARAMETERS = ("encoding_format",)
LISTINGS = ("chat", "embedding", "all")


def model_card(entry: CatalogEntry, created: int) -> ModelCard:
    """A catalog model's ``/v1/models`` entry, with what it can do."""
    info = entry.info
    caps = info.capabilities
    chat = caps.chat is not False
    embeddings, vision = bool(caps.embeddings), bool(caps.vision) and chat
    tools, json_output = bool(caps.tools) and chat, caps.json_output is not False and chat
    parameters = [*CHAT_PARAMETERS] if chat else []
    parameters += [*TOOL_PARAMETERS] if tools else []
    parameters += [*JSON_PARAMETERS] if json_output else []
    parameters += [*EMBEDDING_PARAMETERS] if embeddings else []
    outputs = (["text"] if chat else []) + (["embeddings"] if embeddings else [])
    return ModelCard(
        id=entry.id,
        created=created,
        owned_by=info.backend,
        type="chat" if chat else "embedding" if embeddings else "other",
        context_length=info.context_window,
        architecture=Architecture(["text", "image"] if vision else ["text"], outputs),
        supported_parameters=parameters,
        capabilities=CardCapabilities(chat, vision, tools, json_output, embeddings),
    )


def gateway_card(name: str, cards: list[ModelCard], created: int) -> ModelCard:
    """The gateway's own model's entry: what routing can reach through it, the union of the chat models'."""
    chats = [c for c in cards if c.type == "chat"]
    union = {field: any(getattr(c.capabilities, field) for c in chats) for field in CardCapabilities.__struct_fields__}
    union["chat"] = True
    union["embeddings"] = any(c.capabilities.embeddings for c in cards)  # /v1/embeddings routes too
    windows = [c.context_length for c in chats if isinstance(c.context_length, int)]
    parameters = [*CHAT_PARAMETERS]
    parameters += [*TOOL_PARAMETERS] if union["tools"] else []
    parameters += [*JSON_PARAMETERS] if union["json_output"] else []
    parameters += [*EMBEDDING_PARAMETERS] if union["embeddings"] else []
    return ModelCard(
        id=name,
        created=created,
        owned_by="routerd",
        type="chat",
        context_length=max(windows) if windows else None,
        architecture=Architecture(["text", "image"] if union["vision"] else ["text"], ["text"]),
        supported_parameters=parameters,
        capabilities=CardCapabilities(**union),
    )


@get("/v1/models")
async def list_models(request: Request) -> Response:
    """The gateway's own model, then every real model (``response.list_real_models``), each with what it can do.
    Models that do not chat are left out (``response.hide_embedding_models``); ``?type=embedding`` lists the
    models that embed, ``?type=chat`` those that chat, ``?type=all`` every one."""
    gateway = request.app.state.gateway
    await gateway.auth.principal(request)
    settings = gateway.settings
    listing = request.query_params.get("type")
    if listing is None:
        listing = "chat" if settings.response.hide_embedding_models else "all"
    elif listing not in LISTINGS:
        raise InvalidRequest(f"type must be one of: {', '.join(LISTINGS)}", param="type")
    now = int(time.time())
    every = [model_card(e, now) for e in gateway.catalog]
    real = every if settings.response.list_real_models else []
    if listing == "embedding":
        cards = [c for c in real if c.capabilities.embeddings]
    else:
        own = gateway_card(settings.routing.external_model_name, every, now)
        cards = [own, *(c for c in real if listing == "all" or c.type == "chat")]
    return Response(_encoder.encode(ModelList(data=cards)), media_type=MediaType.JSON)


@post_endpoint("/v1/embeddings")
async def embeddings(scope: Scope, receive: Receive, send: Send, body: bytes) -> None:
    gateway = scope["litestar_app"].state.gateway
    traffic = gateway.traffic  # counted until the answer is sent: background work yields
    traffic.request_started()
    try:
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
        if request.dimensions is not msgspec.UNSET:
            check_dimensions(result, entry, request.dimensions)
        result.model = entry.id
        if request.encoding_format == "base64":
            for item in result.data:
                item.embedding = as_base64(item.embedding)
        await send_json(send, _encoder.encode(result), [(b"x-routerd-model", entry.id.encode("latin-1"))])
    finally:
        traffic.request_ended()


ROUTES = [chat_completions, list_models, embeddings]
