"""A whole completion sent as a stream: a cached answer, or the last answer of the skill loop, to a client that
asked for ``stream=true``. The events are the ones a live stream has (a role chunk, the content, the tool calls or
the legacy function call, the finish reason, usage when asked for, ``[DONE]``), so a client cannot tell the
difference."""

from __future__ import annotations

import msgspec

from routerd.pipeline.streaming import DONE, sse
from routerd.schemas.openai import ChatCompletion, ChatCompletionChunk, ChunkChoice, Delta, ToolCall

PIECE = 64  # characters of content per chunk


def replay(completion: ChatCompletion, *, include_usage: bool) -> bytes:
    """Every event of `completion` as a stream, in one piece of bytes."""
    events: list[bytes] = []

    def chunk(choices: list[ChunkChoice], **extra) -> None:
        events.append(sse(ChatCompletionChunk(completion.id, completion.created, completion.model, choices, **extra)))

    for choice in completion.choices:
        message = choice.message
        chunk([ChunkChoice(choice.index, Delta(role="assistant", content=""))])
        content = message.content if isinstance(message.content, str) else ""
        for start in range(0, len(content), PIECE):
            chunk([ChunkChoice(choice.index, Delta(content=content[start : start + PIECE]))])
        if message.tool_calls:
            calls = [
                msgspec.structs.replace(call, index=i) if isinstance(call, ToolCall) else call
                for i, call in enumerate(message.tool_calls)
            ]
            chunk([ChunkChoice(choice.index, Delta(tool_calls=calls))])
        if message.function_call:  # the legacy form, for a client that sent `functions`
            chunk([ChunkChoice(choice.index, Delta(function_call=message.function_call))])
        chunk([ChunkChoice(choice.index, Delta(), finish_reason=choice.finish_reason or "stop")])
    if include_usage and completion.usage is not None:
        chunk([], usage=completion.usage)
    events.append(DONE)
    return b"".join(events)
