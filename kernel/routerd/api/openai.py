"""The OpenAI-compatible endpoints: chat completions (JSON and SSE), models, embeddings."""

from __future__ import annotations

import base64
import struct
import time
from collections.abc import AsyncIterator

import msgspec
from litestar import MediaType, Request, Response, get, post
from litestar.response import Stream

from routerd.api.streaming import estimate_usage, relay_events
from routerd.errors import InvalidRequest, ModelNotFound
from routerd.routing import RoutingDecision, route
from routerd.schemas.openai import (
    ChatCompletion,
    ChatRequest,
    EmbeddingRequest,
    ModelCard,
    ModelList,
)

_encoder = msgspec.json.Encoder()
_chat_decoder = msgspec.json.Decoder(ChatRequest)
_embedding_decoder = msgspec.json.Decoder(EmbeddingRequest)


def decode(decoder: msgspec.json.Decoder, body: bytes):
    """Decode a request body; a bad one is a 400 that names the field."""
    if not body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        return decoder.decode(body)
    except msgspec.ValidationError as exc:
        message = str(exc)
        param = message.rsplit("`$.", 1)[-1].rstrip("`") if "`$." in message else None
        raise InvalidRequest(f"invalid request: {message}", param=param) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None


def as_base64(vector: list[float] | str) -> str:
    """An embedding as the OpenAI API's base64 form: little-endian float32."""
    if isinstance(vector, str):
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _pinned(request: Request, requested: object, external_name: str) -> str | None:
    """The model a request names (``?model=`` wins over the body), or None to route."""
    name = request.query_params.get("model") or (requested if isinstance(requested, str) else None)
    if not name or name in (external_name, "auto"):
        return None
    return name


def decision_headers(decision: RoutingDecision, model: str) -> dict[str, str]:
    headers = {"X-Routerd-Model": model, "X-Routerd-Decision-Id": decision.id}
    if decision.runner_up is not None:
        headers["X-Routerd-Runner-Up"] = decision.runner_up.id
    return headers


@post("/v1/chat/completions", status_code=200)
async def chat_completions(request: Request) -> Response | Stream:
    gateway = request.app.state.gateway
    await gateway.auth.principal(request)
    chat: ChatRequest = decode(_chat_decoder, await request.body())
    settings = gateway.settings
    gateway.signature.clean_request(chat)
    decision = route(
        gateway.catalog,
        chat,
        pinned=_pinned(request, chat.model, settings.routing.external_model_name),
        quality_preference=settings.routing.quality_preference,
        available=gateway.dispatcher.available,
    )
    if chat.stream:
        start = await gateway.dispatcher.start_stream(decision.ranked, chat)
        events: AsyncIterator[bytes] = relay_events(gateway, chat, start)
        return Stream(
            events,
            media_type="text/event-stream",
            headers={
                **decision_headers(decision, start.entry.id),
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            },
        )
    completion, entry = await gateway.dispatcher.chat(decision.ranked, chat)
    completion = finish_completion(gateway, chat, completion, entry.id)
    return Response(
        _encoder.encode(completion), media_type=MediaType.JSON, headers=decision_headers(decision, entry.id)
    )


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


@post("/v1/embeddings", status_code=200)
async def embeddings(request: Request) -> Response:
    gateway = request.app.state.gateway
    await gateway.auth.principal(request)
    body: EmbeddingRequest = decode(_embedding_decoder, await request.body())
    inputs = [body.input] if isinstance(body.input, str) else body.input
    settings = gateway.settings
    named = _pinned(request, body.model, settings.routing.external_model_name) or settings.routing.embed_model
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
    if body.encoding_format == "base64":
        for item in result.data:
            item.embedding = as_base64(item.embedding)
    return Response(_encoder.encode(result), media_type=MediaType.JSON, headers={"X-Routerd-Model": entry.id})


ROUTES = [chat_completions, list_models, embeddings]
