"""A streamed answer assembled into the completion it amounts to, for JSON requests asked upstream as streams
(``dispatch.stream_json_requests``): then the first-token and idle timeouts, and falling back to the next model
when the first chunk is late, apply to JSON requests as to streams.

Each choice's text, reasoning and refusal are the concatenation of its deltas; tool calls are put together by
their ``index`` (the first piece carries the id, type and name, later ones more of the arguments, as OpenAI's
API streams them); log probabilities' ``content`` lists are joined; usage is the last the stream reported. A
stream that ends with a choice that has no ``finish_reason`` was cut short: `BackendError` ``stream_incomplete``.
"""

from __future__ import annotations

from typing import Any

import msgspec

from routerd.catalog import CatalogEntry
from routerd.dispatch import Dispatcher
from routerd.errors import BackendError
from routerd.schemas.openai import (
    AnswerMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    FunctionCall,
    ToolCall,
    Usage,
)


class _Parts:
    __slots__ = ("content", "finish", "logprobs", "reasoning", "reasoning_content", "refusal", "role", "tools")

    def __init__(self) -> None:
        self.role = "assistant"
        self.content: list[str] = []
        self.reasoning_content: list[str] | None = None
        self.reasoning: list[str] | None = None
        self.refusal: list[str] | None = None
        self.tools: dict[int, ToolCall] = {}
        self.finish: str | None = None
        self.logprobs: Any = None


class Assembly:
    """Chunks in, one `ChatCompletion` out (`completion()`)."""

    def __init__(self, first: ChatCompletionChunk) -> None:
        self.first = first
        self.usage: Usage | None = None
        self.choices: dict[int, _Parts] = {}

    def add(self, chunk: ChatCompletionChunk) -> None:
        if chunk.usage:
            self.usage = chunk.usage  # type: ignore[assignment]
        for choice in chunk.choices:
            parts = self.choices.get(choice.index)
            if parts is None:
                parts = self.choices[choice.index] = _Parts()
            delta = choice.delta
            if isinstance(delta.content, str):
                parts.content.append(delta.content)
            if isinstance(delta.reasoning_content, str):
                parts.reasoning_content = (parts.reasoning_content or []) + [delta.reasoning_content]
            if isinstance(delta.reasoning, str):
                parts.reasoning = (parts.reasoning or []) + [delta.reasoning]
            if isinstance(delta.refusal, str):
                parts.refusal = (parts.refusal or []) + [delta.refusal]
            if delta.tool_calls:
                for piece in delta.tool_calls:
                    _add_tool_piece(parts.tools, piece)
            if choice.logprobs:
                parts.logprobs = _join_logprobs(parts.logprobs, choice.logprobs)
            if choice.finish_reason is not None:
                parts.finish = choice.finish_reason

    def completion(self, backend: str) -> ChatCompletion:
        if not self.choices or any(parts.finish is None for parts in self.choices.values()):
            raise BackendError(
                f"backend {backend} ended the stream before the answer finished", code="stream_incomplete"
            )
        choices = []
        for index in sorted(self.choices):
            parts = self.choices[index]
            message = AnswerMessage(role="assistant", content="".join(parts.content) if parts.content else None)
            if parts.tools:
                message.tool_calls = [parts.tools[i] for i in sorted(parts.tools)]
            if parts.reasoning_content is not None:
                message.reasoning_content = "".join(parts.reasoning_content)
            if parts.reasoning is not None:
                message.reasoning = "".join(parts.reasoning)
            if parts.refusal is not None:
                message.refusal = "".join(parts.refusal)
            choices.append(Choice(index, message, parts.finish, parts.logprobs))
        first = self.first
        fingerprint = first.system_fingerprint if isinstance(first.system_fingerprint, str) else None
        return ChatCompletion(
            id=first.id,
            created=first.created,
            model=first.model,
            choices=choices,
            usage=self.usage,
            system_fingerprint=fingerprint,
            service_tier=first.service_tier,
        )


def _add_tool_piece(calls: dict[int, ToolCall], piece: Any) -> None:
    index = piece.index if isinstance(piece.index, int) else len(calls)
    call = calls.get(index)
    function = piece.function if piece.function is not msgspec.UNSET else None
    if call is None:
        call = calls[index] = ToolCall(function=FunctionCall(name="", arguments=""))
    if isinstance(piece.id, str) and piece.id:
        call.id = piece.id
    if isinstance(piece.type, str) and piece.type:
        call.type = piece.type
    if function is not None:
        target = call.function
        assert isinstance(target, FunctionCall)
        if isinstance(function.name, str) and function.name:
            target.name = function.name
        if isinstance(function.arguments, str):
            target.arguments = (target.arguments or "") + function.arguments  # type: ignore[operator]


def _join_logprobs(held: Any, more: Any) -> Any:
    if not isinstance(more, dict):
        return held if held is not None else more
    if not isinstance(held, dict):
        return {key: list(value) if isinstance(value, list) else value for key, value in more.items()}
    for key, value in more.items():
        if isinstance(value, list) and isinstance(held.get(key), list):
            held[key].extend(value)
        elif key not in held or held[key] is None:
            held[key] = value
    return held


async def assembled(
    dispatcher: Dispatcher, targets: list[CatalogEntry], request: ChatRequest
) -> tuple[ChatCompletion, CatalogEntry]:
    """`request` asked of the `targets` in order as a stream (`Dispatcher.start_stream`: the next model when the
    first chunk is late), relayed under the idle and total timeouts, and assembled."""
    start = await dispatcher.start_stream(targets, msgspec.structs.replace(request, stream=True))
    assembly = Assembly(start.first)
    assembly.add(start.first)
    relayed = dispatcher.relay(start)
    try:
        async for chunk in relayed:
            assembly.add(chunk)
    finally:
        await relayed.aclose()
        await start.rest.aclose()  # when the relay never ran
    return assembly.completion(start.entry.info.backend), start.entry


def assemblable(request: ChatRequest) -> bool:
    """Whether a JSON request is asked as a stream under ``dispatch.stream_json_requests``: one choice (servers
    that answer one choice at a time make several choices several requests, each already bounded)."""
    return request.n in (msgspec.UNSET, None, 1)
