"""Relaying a stream to the client as server-sent events.

The signature goes in just before the chunk that carries `finish_reason`; usage, when the
client asked for it, comes in a last chunk (estimated when the backend sends none). A failure
after the first byte ends the stream with an error event in the OpenAI error shape, never with
a made-up `finish_reason`. If the client goes away, the upstream request is closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import msgspec

from routerd.dispatch import StreamStart
from routerd.errors import GatewayError
from routerd.schemas.openai import (
    ChatCompletionChunk,
    ChatRequest,
    ChunkChoice,
    Delta,
    ErrorBody,
    ErrorResponse,
    Usage,
)

_encoder = msgspec.json.Encoder()
DONE = b"data: [DONE]\n\n"


def estimate_usage(chat: ChatRequest, completion_text: str) -> Usage:
    """Token counts for a backend that reports none (about four characters a token)."""
    prompt = max(1, sum(len(m.text()) for m in chat.messages) // 4)
    completion = max(1, len(completion_text) // 4) if completion_text else 0
    return Usage(prompt, completion, prompt + completion)


def sse(chunk: ChatCompletionChunk | ErrorResponse) -> bytes:
    return b"data: " + _encoder.encode(chunk) + b"\n\n"


async def _chunks(start: StreamStart, relayed: AsyncIterator[ChatCompletionChunk]):
    yield start.first
    async for chunk in relayed:
        yield chunk


async def relay_events(gateway, chat: ChatRequest, start: StreamStart) -> AsyncIterator[bytes]:
    model = start.entry.id
    single = chat.n in (msgspec.UNSET, None, 1)
    hold = gateway.signature.holdback()
    sign = single and not chat.wants_json()
    finish: ChatCompletionChunk | None = None
    usage = None
    text: list[str] = []
    last: ChatCompletionChunk = start.first
    try:
        async for chunk in _chunks(start, gateway.dispatcher.relay(start)):
            chunk.model = model
            last = chunk
            if chunk.usage:
                usage = chunk.usage
                chunk.usage = msgspec.UNSET
                if not chunk.choices:
                    continue
            for choice in chunk.choices:
                delta = choice.delta
                if delta.tool_calls:
                    sign = False
                if single and isinstance(delta.content, str) and delta.content:
                    text.append(delta.content)
                    delta.content = hold.feed(delta.content)
            if single and chunk.choices and chunk.choices[0].finish_reason is not None:
                finish = chunk
                continue
            if single and chunk.choices and _empty(chunk.choices[0]):
                continue
            yield sse(chunk)
        tail = hold.finish() if single else ""
        if sign:
            tail += gateway.signature.render(model)
        if tail:
            yield sse(ChatCompletionChunk(last.id, last.created, model, [ChunkChoice(0, Delta(content=tail))]))
        if finish is not None:
            yield sse(finish)
        if chat.wants_usage_in_stream():
            usage = usage or estimate_usage(chat, "".join(text))
            yield sse(ChatCompletionChunk(last.id, last.created, model, [], usage=usage))
        yield DONE
    except GatewayError as exc:
        body = ErrorBody(message=exc.message, type=exc.error_type, code=exc.code or "stream_interrupted")
        yield sse(ErrorResponse(body))


def _empty(choice: ChunkChoice) -> bool:
    delta = choice.delta
    return (
        delta.content in ("", None, msgspec.UNSET)
        and delta.role is msgspec.UNSET
        and delta.tool_calls is msgspec.UNSET
        and choice.finish_reason is None
    )
