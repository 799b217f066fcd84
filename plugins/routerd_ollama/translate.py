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
    ContextLengthExceeded,
    Delta,
    FunctionCall,
    InvalidRequest,
    Message,
    Usage,
)
from routerd import ToolCall as OpenAIToolCall
from routerd.toolkit import is_context_length_refusal, json_schema_of, output_limit, public_message
from routerd_ollama.schemas import ChatLine, ToolCall

# Sampling parameters that Ollama takes, under the same name, in `options`: OpenAI's, then the vendor ones
# (llama.cpp's names).
_SAME_NAME_OPTIONS = (
    "temperature",
    "top_p",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "top_k",
    "min_p",
    "typical_p",
    "repeat_penalty",
)
# Ollama knows the roles system, user, assistant and tool.
_ROLES = {"developer": "system", "function": "tool"}


def _given(value: Any) -> bool:
    return value is not msgspec.UNSET and value is not None


# -- requests --------------------------------------------------------------------------------
def options_of(request: ChatRequest) -> dict[str, Any]:
    """Ollama's ``options`` for the request's sampling parameters: ``max_tokens`` or ``max_completion_tokens`` (the
    smaller of the two) is ``num_predict``; ``repetition_penalty`` (vLLM's name) is ``repeat_penalty`` unless that is
    given too."""
    options = {name: getattr(request, name) for name in _SAME_NAME_OPTIONS if _given(getattr(request, name))}
    if _given(request.repetition_penalty):
        options.setdefault("repeat_penalty", request.repetition_penalty)
    limit = output_limit(request)
    if limit is not None:
        options["num_predict"] = limit
    if _given(request.stop):
        options["stop"] = [request.stop] if isinstance(request.stop, str) else list(request.stop)
    return options


def format_of(request: ChatRequest) -> str | dict[str, Any] | None:
    """Ollama's ``format``: ``"json"`` for JSON mode, the schema itself for structured outputs (a ``json_schema``
    format, or llama-cpp-python's ``json_object`` with a ``schema``); a 400 naming ``response_format`` for a format
    Ollama cannot produce."""
    response_format = request.response_format
    if not _given(response_format):
        return None
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        schema = response_format.get("schema")
        return schema if isinstance(schema, dict) else "json"
    if kind == "json_schema":
        schema = json_schema_of(response_format)
        return schema if schema is not None else "json"
    raise InvalidRequest(
        f"response_format of type {kind!r} is not one Ollama can produce (text, json_object, json_schema)",
        param="response_format",
    )


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


def line_error(error: str, *, mid_stream: bool = False) -> BackendError | ContextLengthExceeded:
    """The gateway's error for an ``error`` line of Ollama's (its message made fit for clients)."""
    message = public_message(error) or "no message"
    if is_context_length_refusal(None, error):
        return ContextLengthExceeded(f"Ollama refused the request: {message}")
    return BackendError(f"Ollama failed{' mid-stream' if mid_stream else ''}: {message}")


def finish_reason(line: ChatLine, called_tools: bool) -> str:
    if called_tools:
        return "tool_calls"
    return "length" if line.done_reason == "length" else "stop"


def usage_of(line: ChatLine) -> Usage:
    return Usage(line.prompt_eval_count, line.eval_count, line.prompt_eval_count + line.eval_count)


def completion_from(line: ChatLine, model: str) -> ChatCompletion:
    """An OpenAI completion from a non-streamed ``/api/chat`` answer."""
    if line.error:
        raise line_error(line.error)
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
            raise line_error(line.error, mid_stream=True)
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
