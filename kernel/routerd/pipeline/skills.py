"""The skill loop: tools the gateway runs itself (`routerd.Skill`).

Which skills a request is offered: with ``skills.offer = "request"`` (the default) the ones the client names in
the ``X-Routerd-Skills`` header (comma-separated names, or ``*`` for all); with ``"always"`` every skill unless the
header says ``none``; with ``"never"`` none. An offered skill is added to the request's tools as a function tool
(a tool of the client's with the same name wins: that skill is not offered), and the request then needs a model
that calls tools.

The loop: the chosen model answers (not streamed); when it calls offered skills, the gateway runs them (each
within ``skills.timeout`` seconds; an error becomes the tool's result, for the model to read) and asks the same
model again with the results, at most ``skills.max_iterations`` times. A turn that calls only the client's tools
goes back to the client unchanged; a turn that calls both kinds goes back with the client's calls only (the
skill calls of that turn are not run: the client answers its own calls first, and the model may call the skill
again after). When the limit is reached, the answer is the model's last text with ``finish_reason`` ``length``.
Usage adds up every call. Each skill call (name, arguments' size, duration, result's size, error) is reported to
the decision log.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from routerd.catalog import CatalogEntry
from routerd.config import SkillSettings
from routerd.dispatch import Dispatcher
from routerd.errors import InvalidRequest
from routerd.schemas.openai import ChatCompletion, ChatRequest, Message, ToolCall, Usage

log = logging.getLogger("routerd.skills")
HEADER = "x-routerd-skills"
RESULT_MAX = 20_000  # characters of a skill's result given to the model


def offered(settings: SkillSettings, skills: Mapping[str, Any], headers: Mapping[str, str], chat: ChatRequest):
    """The skills this request is offered, by name (see the module's doc)."""
    if not skills or settings.offer == "never":
        return {}
    asked = headers.get(HEADER)
    if asked is None:
        chosen = dict(skills) if settings.offer == "always" else {}
    else:
        names = [name.strip() for name in asked.split(",") if name.strip()]
        if names in (["none"], []):
            return {}
        if names == ["*"]:
            chosen = dict(skills)
        else:
            unknown = [name for name in names if name not in skills]
            if unknown:
                known = ", ".join(sorted(skills)) or "none"
                raise InvalidRequest(
                    f"unknown skill {unknown[0]!r} in X-Routerd-Skills (this gateway has: {known})",
                    param="X-Routerd-Skills",
                    code="unknown_skill",
                )
            chosen = {name: skills[name] for name in names}
    client_tools = {_tool_name(tool) for tool in chat.tools or []}
    return {name: skill for name, skill in chosen.items() if name not in client_tools}


def _tool_name(tool: Any) -> str | None:
    if isinstance(tool, dict):
        function = tool.get("function")
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            return function["name"]
    return None


def with_skills(chat: ChatRequest, skills: Mapping[str, Any]) -> ChatRequest:
    """`chat`, not streamed, with the skills added to its tools."""
    tools = list(chat.tools or [])
    for name, skill in skills.items():
        function = {"name": name, "description": skill.description, "parameters": skill.parameters}
        tools.append({"type": "function", "function": function})
    return msgspec.structs.replace(
        chat, tools=tools, stream=False, stream_options=msgspec.UNSET, messages=list(chat.messages)
    )


@dataclass
class LoopResult:
    completion: ChatCompletion
    entry: CatalogEntry
    calls: list[dict[str, Any]] = field(default_factory=list)


def _add(total: Usage | None, usage: Usage | None) -> Usage | None:
    if usage is None:
        return total
    if total is None:
        return Usage(usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
    return Usage(
        total.prompt_tokens + usage.prompt_tokens,
        total.completion_tokens + usage.completion_tokens,
        total.total_tokens + usage.total_tokens,
    )


class SkillLoop:
    def __init__(self, settings: SkillSettings, dispatcher: Dispatcher) -> None:
        self.settings = settings
        self.dispatcher = dispatcher

    async def run(self, chat: ChatRequest, targets: list[CatalogEntry], skills: Mapping[str, Any]) -> LoopResult:
        request = with_skills(chat, skills)
        usage: Usage | None = None
        calls: list[dict[str, Any]] = []
        iteration = 0
        while True:
            completion, entry = await self.dispatcher.chat(targets, request)
            targets = [entry]  # the conversation stays with the model that began it
            usage = _add(usage, completion.usage)
            completion.usage = usage
            choice = completion.choices[0] if completion.choices else None
            tool_calls = choice.message.tool_calls if choice is not None else None
            if not tool_calls:
                return LoopResult(completion, entry, calls)
            mine = [c for c in tool_calls if _call_name(c) in skills]
            theirs = [c for c in tool_calls if _call_name(c) not in skills]
            if not mine:
                return LoopResult(completion, entry, calls)
            assert choice is not None
            if theirs:  # the client's calls go back; the skill calls of this turn are not run
                choice.message.tool_calls = theirs
                return LoopResult(completion, entry, calls)
            if iteration >= self.settings.max_iterations:
                choice.message.tool_calls = msgspec.UNSET
                if not isinstance(choice.message.content, str):
                    choice.message.content = ""
                choice.finish_reason = "length"
                log.info("skill loop stopped after %d iterations", iteration)
                return LoopResult(completion, entry, calls)
            iteration += 1
            request.messages.append(
                Message(role="assistant", content=choice.message.content or None, tool_calls=list(mine))
            )
            for call in mine:
                result, record = await self._run_one(call, skills[_call_name(call)], iteration)
                calls.append(record)
                request.messages.append(Message(role="tool", tool_call_id=_call_id(call), content=result))

    async def _run_one(self, call: ToolCall, skill: Any, iteration: int) -> tuple[str, dict[str, Any]]:
        name = _call_name(call) or ""
        raw = call.function.arguments if call.function is not msgspec.UNSET else ""
        raw = raw if isinstance(raw, str) else ""
        started = time.perf_counter()
        error = None
        try:
            arguments = json.loads(raw) if raw.strip() else {}
            if not isinstance(arguments, dict):
                raise ValueError("the arguments must be a JSON object")
            async with asyncio.timeout(self.settings.timeout):
                result = await skill.run(arguments)
            if not isinstance(result, str):
                raise TypeError(f"the skill returned {type(result).__name__}, not text")
        except TimeoutError:
            error = f"the skill took longer than {self.settings.timeout:g} s"
        except (ValueError, json.JSONDecodeError) as exc:
            error = f"bad arguments: {exc}"
        except Exception as exc:
            log.warning("skill %s failed: %s", name, type(exc).__name__)
            error = f"the skill failed ({type(exc).__name__})"
        if error is not None:
            result = f"error: {error}"
        result = result[:RESULT_MAX]
        record = {
            "iteration": iteration,
            "skill": name,
            "arguments_chars": len(raw),
            "ms": round((time.perf_counter() - started) * 1000, 1),
            "result_chars": len(result),
            "error": error,
        }
        return result, record


def _call_name(call: Any) -> str | None:
    function = getattr(call, "function", None)
    name = getattr(function, "name", None)
    return name if isinstance(name, str) else None


def _call_id(call: Any) -> str:
    ident = getattr(call, "id", None)
    return ident if isinstance(ident, str) else ""
