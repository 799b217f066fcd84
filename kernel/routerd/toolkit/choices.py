"""``n`` choices from a server that answers one (llama.cpp's servers, Ollama): ``n`` requests, their choices merged
into one answer with indexes 0 to n-1 and the usage summed.

Choice ``i`` is asked with ``seed + i`` when the request has a seed, so a seeded request gets ``n`` reproducible
answers rather than ``n`` copies of one. Without a stream the requests run at once (a server with several slots
answers them together; one with a single slot queues them). A stream relays the answers one after another, each
whole before the next starts, with its chunks re-indexed (choice ``i`` has index ``i``) and one id; their usage
chunks are summed into one at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from routerd.schemas.openai import ChatCompletion, ChatCompletionChunk, ChatRequest, Usage
from routerd.toolkit.dialect import choices_asked, given


def one_choice_request(request: ChatRequest, index: int) -> ChatRequest:
    """The request for choice `index` alone."""
    changes: dict[str, Any] = {"n": msgspec.UNSET}
    if given(request.seed):
        changes["seed"] = request.seed + index
    return msgspec.structs.replace(request, **changes)


def _sum_details(details: list[Any]) -> dict[str, Any] | msgspec.UnsetType:
    total: dict[str, Any] = {}
    for item in details:
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                total[key] = total.get(key, 0) + value
    return total or msgspec.UNSET


def sum_usage(usages: list[Usage]) -> Usage:
    return Usage(
        prompt_tokens=sum(u.prompt_tokens for u in usages),
        completion_tokens=sum(u.completion_tokens for u in usages),
        total_tokens=sum(u.total_tokens for u in usages),
        prompt_tokens_details=_sum_details([u.prompt_tokens_details for u in usages]),
        completion_tokens_details=_sum_details([u.completion_tokens_details for u in usages]),
    )


def merge_completions(answers: list[ChatCompletion]) -> ChatCompletion:
    """One answer with the choices of `answers`, in order, indexed from 0; the first answer's id."""
    first = answers[0]
    choices = []
    for answer in answers:
        for choice in sorted(answer.choices, key=lambda c: c.index):
            choice.index = len(choices)
            choices.append(choice)
    usages = [a.usage for a in answers if a.usage is not None]
    return msgspec.structs.replace(first, choices=choices, usage=sum_usage(usages) if usages else None)


async def chat_choices(ask: Callable[[ChatRequest], Awaitable[ChatCompletion]], request: ChatRequest) -> ChatCompletion:
    """`ask` (which gets one choice) once per choice the request asks for, at once; the answers merged."""
    n = choices_asked(request)
    if n == 1:
        return await ask(request)
    tasks = [asyncio.ensure_future(ask(one_choice_request(request, i))) for i in range(n)]
    try:
        answers = await asyncio.gather(*tasks)
    except BaseException:  # the first failure is the answer's; the other requests are not waited for
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return merge_completions(list(answers))


async def stream_choices(
    stream: Callable[[ChatRequest], AsyncIterator[ChatCompletionChunk]], request: ChatRequest
) -> AsyncIterator[ChatCompletionChunk]:
    """`stream` (which gets one choice) once per choice the request asks for, one after another, as one stream."""
    n = choices_asked(request)
    if n == 1:
        async with contextlib.aclosing(stream(request)) as chunks:
            async for chunk in chunks:
                yield chunk
        return
    ident: tuple[str, int] | None = None
    model = ""
    usages: list[Usage] = []
    for i in range(n):
        async with contextlib.aclosing(stream(one_choice_request(request, i))) as chunks:
            async for chunk in chunks:
                if ident is None:
                    ident = (chunk.id, chunk.created)
                chunk.id, chunk.created = ident
                model = chunk.model
                if given(chunk.usage):
                    usages.append(chunk.usage)  # type: ignore[arg-type]
                    chunk.usage = msgspec.UNSET
                    if not chunk.choices:
                        continue
                for choice in chunk.choices:
                    choice.index = i + choice.index
                yield chunk
    if usages and ident is not None:
        yield ChatCompletionChunk(ident[0], ident[1], model, [], usage=sum_usage(usages))
