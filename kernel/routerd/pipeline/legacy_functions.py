"""The legacy function calling of the OpenAI API (``functions`` / ``function_call``, deprecated for ``tools`` /
``tool_choice`` but still sent by older clients and LangChain's older agents), translated at the edge so that the
rest of the pipeline, routing and every backend see tools only.

- The request: ``functions`` become ``tools``; ``function_call`` ``"none"`` / ``"auto"`` / ``{"name": x}``
  becomes ``tool_choice`` ``"none"`` / ``"auto"`` / ``{"type": "function", "function": {"name": x}}``. Both
  forms in one request are refused (400), as OpenAI refuses them.
- The history: an assistant turn's ``function_call`` becomes a one-call ``tool_calls`` with a made-up id
  (``call_legacy_<index>``, the same for the same conversation, so caches still match), and each role
  ``function`` message (its result, with the function's ``name``) a role ``tool`` message answering the
  earliest unanswered call of that name. A result with no call before it gets the call it answers.
- The answer, for a client that sent ``functions``: ``message.function_call`` (the first tool call: the legacy
  form has one) and ``finish_reason`` ``"function_call"``; in a stream, ``delta.function_call``.

A request with neither pays for one check of two fields and of each message's role (`uses_legacy_functions`).
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import UNSET

from routerd.errors import InvalidRequest
from routerd.schemas.openai import ChatCompletion, ChatRequest, ChunkChoice, FunctionCall, Message, ToolCall


def uses_legacy_functions(chat: ChatRequest) -> bool:
    """Whether `chat` uses the legacy form anywhere: the parameters, or a message of its history."""
    if chat.functions is not UNSET or chat.function_call is not UNSET:
        return True
    for message in chat.messages:
        if message.role == "function" or message.function_call is not UNSET:
            return True
    return False


def asks_in_legacy_form(chat: ChatRequest) -> bool:
    """Whether the client asked with ``functions``, and so reads a function call in the legacy form."""
    return bool(chat.functions) or chat.function_call not in (UNSET, None)


def to_tools(chat: ChatRequest) -> ChatRequest:
    """`chat` with the legacy parameters and messages in the tools form (see the module's doc)."""
    functions, choice = chat.functions, chat.function_call
    if functions and chat.tools:
        raise InvalidRequest(
            "functions and tools cannot be used together; send tools (functions is deprecated)",
            param="functions",
        )
    if choice not in (UNSET, None) and chat.tool_choice not in (UNSET, None):
        raise InvalidRequest(
            "function_call and tool_choice cannot be used together; send tool_choice (function_call is deprecated)",
            param="function_call",
        )
    if choice not in (UNSET, None) and not functions:
        raise InvalidRequest("function_call is only allowed when functions are given", param="function_call")
    changes: dict[str, Any] = {"functions": UNSET, "function_call": UNSET, "messages": _messages(chat.messages)}
    if functions:
        changes["tools"] = [{"type": "function", "function": msgspec.to_builtins(f)} for f in functions]
    if isinstance(choice, str):
        changes["tool_choice"] = choice
    elif choice not in (UNSET, None):
        changes["tool_choice"] = {"type": "function", "function": {"name": choice.name}}
    return msgspec.structs.replace(chat, **changes)


def _messages(messages: list[Message]) -> list[Message]:
    translated: list[Message] = []
    unanswered: list[tuple[str, str | None]] = []  # (id, function name) of the calls not yet answered
    for index, message in enumerate(messages):
        call = message.function_call
        if message.role == "function":
            name = message.name if isinstance(message.name, str) else None
            if not name:
                raise InvalidRequest(
                    f"messages[{index}]: a message with role 'function' needs the function's name",
                    param=f"messages[{index}].name",
                )
            ident = next((i for i, n in unanswered if n == name), None)
            if ident is None:  # a result whose call the history does not hold: the call it answers goes first
                ident = f"call_legacy_{index}"
                made_up = ToolCall(id=ident, function=FunctionCall(name=name, arguments="{}"))
                translated.append(Message(role="assistant", content=None, tool_calls=[made_up]))
            else:
                unanswered.remove((ident, name))
            content = message.content if message.content is not None else ""
            translated.append(Message(role="tool", content=content, tool_call_id=ident))
        elif call:
            ident = f"call_legacy_{index}"
            name = call.name if isinstance(call.name, str) else None
            arguments = call.arguments if isinstance(call.arguments, str) else "{}"
            tool_call = ToolCall(id=ident, function=FunctionCall(name=name or "", arguments=arguments))
            calls = [*(message.tool_calls or []), tool_call]
            translated.append(msgspec.structs.replace(message, function_call=UNSET, tool_calls=calls))
            unanswered.append((ident, name))
        elif call is None:  # an explicit "function_call": null, as some SDKs echo an answer back
            translated.append(msgspec.structs.replace(message, function_call=UNSET))
        else:
            translated.append(message)
    return translated


def answer_in_legacy_form(completion: ChatCompletion) -> ChatCompletion:
    """`completion` (in place) with its tool calls as legacy function calls."""
    for choice in completion.choices:
        message = choice.message
        if message.tool_calls:
            first = message.tool_calls[0]
            function = first.function if first.function is not UNSET else FunctionCall(name="", arguments="")
            message.function_call = function
            message.tool_calls = UNSET
            if choice.finish_reason in ("tool_calls", None):
                choice.finish_reason = "function_call"
    return completion


def delta_in_legacy_form(choice: ChunkChoice) -> None:
    """A stream chunk's choice (in place) with its tool-call delta as a legacy function-call delta: the first
    call's only (the legacy form has one call); ``finish_reason`` ``"tool_calls"`` becomes ``"function_call"``."""
    delta = choice.delta
    if delta.tool_calls:
        for call in delta.tool_calls:
            if call.index in (0, UNSET) and call.function is not UNSET:
                delta.function_call = call.function
                break
        delta.tool_calls = UNSET
    if choice.finish_reason == "tool_calls":
        choice.finish_reason = "function_call"
