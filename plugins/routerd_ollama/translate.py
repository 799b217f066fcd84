"""OpenAI chat requests to Ollama's ``/api/chat`` bodies, and its answers back to OpenAI
completions and stream chunks."""

from __future__ import annotations

import time
import uuid
from typing import Any

import msgspec

from routerd import (
    AnswerMessage,
    BackendError,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Choice,
    ChunkChoice,
    Delta,
    FunctionCall,
    InvalidRequest,
    Message,
    Usage,
)
from routerd import ToolCall as OpenAIToolCall
from routerd_ollama.schemas import ChatLine, ToolCall

# OpenAI sampling parameters that Ollama takes, under the same name, in `options`.
_SAME_NAME_OPTIONS = ("temperature", "top_p", "seed", "presence_penalty", "frequency_penalty")
# Ollama knows the roles system, user, assistant and tool.
_ROLES = {"developer": "system", "function": "tool"}


def _given(value: Any) -> bool:
    return value is not msgspec.UNSET and value is not None


# -- requests --------------------------------------------------------------------------------
def options_of(request: ChatRequest) -> dict[str, Any]:
    """Ollama's ``options`` for the request's sampling parameters (``max_tokens`` is ``num_predict``)."""
    options = {name: getattr(request, name) for name in _SAME_NAME_OPTIONS if _given(getattr(request, name))}
    limit = request.max_completion_tokens if _given(request.max_completion_tokens) else request.max_tokens
    if _given(limit):
        options["num_predict"] = limit
    if _given(request.stop):
        options["stop"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    return options


def format_of(request: ChatRequest) -> str | dict[str, Any] | None:
    """Ollama's ``format``: ``"json"`` for JSON mode, the schema itself for structured outputs."""
    response_format = request.response_format
    if not _given(response_format):
        return None
    kind = response_format.get("type")
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else "json"
    return None


def _image(url: str) -> str:
    """The base64 payload of a ``data:image/...;base64,`` URL (what Ollama's ``images`` take)."""
    header, _, payload = url.partition(",")
    if not (header.startswith("data:") and header.endswith(";base64") and payload):
        raise InvalidRequest(
            "the Ollama backend takes images only as base64 data URLs (data:image/png;base64,...)",
            param="messages",
        )
    return payload


def _arguments(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    try:
        value = msgspec.json.decode(text or "{}")
    except msgspec.DecodeError:
        value = None
    if not isinstance(value, dict):
        raise InvalidRequest("a tool call's arguments must be a JSON object", param="messages")
    return value


def _message(message: Message, tool_names: dict[str, str]) -> dict[str, Any]:
    role = _ROLES.get(message.role, message.role)
    out: dict[str, Any] = {"role": role, "content": message.text()}
    if isinstance(message.content, list):
        images = [_image(p.image_url.url) for p in message.content if p.type == "image_url" and p.image_url]
        if images:
            out["images"] = images
    if message.tool_calls:
        calls = []
        for call in message.tool_calls:
            function = call.function or FunctionCall()
            calls.append({"function": {"name": function.name or "", "arguments": _arguments(function.arguments)}})
        out["tool_calls"] = calls
    if role == "tool":
        name = tool_names.get(message.tool_call_id or "") or message.name
        if name:
            out["tool_name"] = name
    return out


def _messages(request: ChatRequest) -> list[dict[str, Any]]:
    tool_names: dict[str, str] = {}
    for message in request.messages:
        for call in message.tool_calls or []:
            if call.id and call.function and call.function.name:
                tool_names[call.id] = call.function.name
    return [_message(m, tool_names) for m in request.messages]


def chat_body(model: str, request: ChatRequest, *, stream: bool, keep_alive: str | int | None) -> dict[str, Any]:
    """The ``POST /api/chat`` body for an OpenAI chat request."""
    body: dict[str, Any] = {"model": model, "messages": _messages(request), "stream": stream}
    if _given(request.tools) and request.tool_choice != "none":
        tools = [tool for tool in request.tools if tool.get("type", "function") == "function"]
        if tools:
            body["tools"] = tools
    response_format = format_of(request)
    if response_format is not None:
        body["format"] = response_format
    options = options_of(request)
    if options:
        body["options"] = options
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    return body


# -- answers ---------------------------------------------------------------------------------
def _tool_call(call: ToolCall, index: int | None = None) -> OpenAIToolCall:
    arguments = call.function.arguments
    text = arguments if isinstance(arguments, str) else msgspec.json.encode(arguments).decode()
    return OpenAIToolCall(
        id=call.id or f"call_{uuid.uuid4().hex[:24]}",
        type="function",
        function=FunctionCall(name=call.function.name, arguments=text),
        index=msgspec.UNSET if index is None else index,
    )


def finish_reason(line: ChatLine, called_tools: bool) -> str:
    if called_tools:
        return "tool_calls"
    return "length" if line.done_reason == "length" else "stop"


def usage_of(line: ChatLine) -> Usage:
    return Usage(line.prompt_eval_count, line.eval_count, line.prompt_eval_count + line.eval_count)


def completion_from(line: ChatLine, model: str) -> ChatCompletion:
    """An OpenAI completion from a non-streamed ``/api/chat`` answer."""
    if line.error:
        raise BackendError(f"Ollama failed: {line.error[:300]}")
    answer = line.message
    calls = [_tool_call(call) for call in (answer.tool_calls if answer and answer.tool_calls else [])]
    content = answer.content if answer else None
    message = AnswerMessage(role="assistant", content=content or (None if calls else ""))
    if calls:
        message.tool_calls = calls
    if answer is not None and answer.thinking:
        message.reasoning = answer.thinking  # the field Ollama's own OpenAI-compatible API uses
    return ChatCompletion(
        id=f"chatcmpl-{uuid.uuid4().hex}",
        created=int(time.time()),
        model=model,
        choices=[Choice(index=0, message=message, finish_reason=finish_reason(line, bool(calls)))],
        usage=usage_of(line),
    )


class StreamTranslator:
    """Turns the lines of an ``/api/chat`` stream into OpenAI chunks: the first carries the
    role, then content, reasoning (``thinking``) and tool-call deltas, a chunk with
    `finish_reason` for the ``done`` line, and a last chunk with the usage and no choices (always:
    the audit log records it; the relay passes it on only to clients that asked for it)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = f"chatcmpl-{uuid.uuid4().hex}"
        self.created = int(time.time())
        self.started = False
        self.finished = False
        self.tool_calls = 0

    def _chunk(self, delta: Delta, finish: str | None = None) -> ChatCompletionChunk:
        return ChatCompletionChunk(self.id, self.created, self.model, [ChunkChoice(0, delta, finish_reason=finish)])

    def feed(self, line: ChatLine) -> list[ChatCompletionChunk]:
        if line.error:
            raise BackendError(f"Ollama failed mid-stream: {line.error[:300]}")
        chunks = []
        answer = line.message
        delta = Delta()
        if not self.started:
            delta.role = "assistant"
            delta.content = ""
        if answer is not None and answer.content:
            delta.content = answer.content
        if answer is not None and answer.thinking:
            delta.reasoning = answer.thinking
        if answer is not None and answer.tool_calls:
            delta.tool_calls = [_tool_call(call, self.tool_calls + i) for i, call in enumerate(answer.tool_calls)]
            self.tool_calls += len(answer.tool_calls)
        if delta.role or delta.content or delta.tool_calls or delta.reasoning:
            chunks.append(self._chunk(delta))
        self.started = True
        if line.done:
            self.finished = True
            chunks.append(self._chunk(Delta(), finish_reason(line, self.tool_calls > 0)))
            chunks.append(ChatCompletionChunk(self.id, self.created, self.model, [], usage=usage_of(line)))
        return chunks
