"""Asking the cache plugins (`routerd.Cache`) before routing, and showing them complete answers after.

What a hit must match is in the `CacheQuery` the kernel builds (see `routerd.CacheQuery`): the partition is a
hash of the caller's tenant, every message before the last user message, and every parameter that changes an
answer; the key adds the last user message. Requests for a sampled answer (a temperature above 0, or none, and no
seed: OpenAI's default temperature is 1) bypass the caches unless ``cache.sampled`` is true. Clients steer it per
request with ``Cache-Control``: ``no-store`` (neither look up nor store), ``no-cache`` (do not answer from a
cache, but store the answer), ``max-age=N`` (accept only answers stored at most N seconds ago).

A cache that fails or takes longer than ``cache.lookup_timeout`` counts as a miss (logged); stores run in the
background, after the answer is sent.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from routerd.schemas.catalog import Principal
from routerd.schemas.openai import ChatCompletion, ChatRequest
from routerd.schemas.pipeline import CachedAnswer, CacheQuery

log = logging.getLogger("routerd.cache")
_encoder = msgspec.json.Encoder(order="deterministic")

# Fields that do not change what the model answers: left out of the partition. Every other field is in it, the
# vendor sampling parameters (top_k, min_p, typical_p, repeat_penalty, repetition_penalty) and n included.
IGNORED = frozenset(
    {
        "messages",
        "stream",
        "stream_options",
        "user",
        "store",
        "metadata",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
    }
)


@dataclass(frozen=True)
class CachePolicy:
    """What ``Cache-Control`` (and ``cache.sampled``) allow for one request."""

    lookup: bool
    store: bool
    max_age: float | None = None


def cache_control(headers: Mapping[str, str] | None) -> CachePolicy:
    """The request's ``Cache-Control`` directives (unknown ones are ignored, as HTTP caches do)."""
    value = (headers or {}).get("cache-control", "")
    lookup = store = True
    max_age: float | None = None
    for part in value.lower().split(","):
        directive, _, argument = part.strip().partition("=")
        if directive == "no-store":
            lookup = store = False
        elif directive == "no-cache":
            lookup = False
        elif directive == "max-age":
            try:
                max_age = max(0.0, float(argument.strip().strip('"')))
            except ValueError:
                continue
    return CachePolicy(lookup, store, max_age)


def sampled(chat: ChatRequest) -> bool:
    """Whether the request asks for a sampled answer: one the same request may rightly not get again."""
    temperature = chat.temperature
    hot = temperature is msgspec.UNSET or temperature is None or temperature > 0
    return hot and (chat.seed is msgspec.UNSET or chat.seed is None)


def _digest(data: Any) -> str:
    return hashlib.blake2b(_encoder.encode(data), digest_size=20).hexdigest()


def cache_query(
    chat: ChatRequest,
    principal: Principal,
    *,
    pinned: str | None,
    preference: float,
    max_age: float | None,
) -> CacheQuery:
    """The `CacheQuery` of a request (see `routerd.CacheQuery` for what each part holds)."""
    messages = chat.messages
    last = len(messages) - 1
    while last >= 0 and messages[last].role != "user":
        last -= 1
    params = {
        name: value
        for name, value in msgspec.structs.asdict(chat).items()
        if name not in IGNORED and value is not msgspec.UNSET
    }
    params.pop("model", None)  # the pinned model (or none) stands for it
    if last >= 0 and last == len(messages) - 1:
        context, asked = messages[:last], messages[last]
    else:  # the conversation does not end with a user turn (a tool result, say): all of it is the context
        context, asked = messages, None
    partition = _digest(
        {
            "tenant": principal.tenant,
            "pinned": pinned,
            "preference": round(preference, 6),
            "params": params,
            "context": context,
        }
    )
    key = _digest([partition, asked])
    return CacheQuery(
        partition=partition,
        key=key,
        text=asked.text() if asked is not None else "",
        tenant=principal.tenant,
        sampled=sampled(chat),
        max_age=max_age,
    )


async def lookup(
    caches: Mapping[str, Any],
    query: CacheQuery,
    timeout: float,  # noqa: ASYNC109  (each cache's own limit, not the call's)
) -> tuple[str, CachedAnswer] | None:
    """The first hit among `caches`, in order, with the name of the cache that had it."""
    for name, cache in list(caches.items()):
        try:
            async with asyncio.timeout(timeout):
                found = await cache.lookup(query)
        except TimeoutError:
            log.warning("cache %s did not answer within %g s: a miss", name, timeout)
            continue
        except Exception as exc:
            log.warning("cache %s failed (%s): a miss", name, type(exc).__name__)
            continue
        if found is None:
            continue
        if not isinstance(found, CachedAnswer) or not isinstance(found.completion, ChatCompletion):
            log.warning("cache %s answered %s, not a routerd.CachedAnswer: a miss", name, type(found).__name__)
            continue
        if not found.completion.choices:
            continue
        return name, found
    return None


def copy(completion: ChatCompletion) -> ChatCompletion:
    """A completion of its own (caches keep what they are given; the request path goes on changing its own)."""
    return msgspec.json.decode(msgspec.json.encode(completion), type=ChatCompletion)


class Stores:
    """Shows complete answers to the caches in background tasks, which the gateway awaits when it stops."""

    def __init__(self, caches: Mapping[str, Any]) -> None:
        self.caches = caches
        self.tasks: set[asyncio.Task] = set()

    def store(self, query: CacheQuery, completion: ChatCompletion) -> None:
        if not self.caches:
            return
        task = asyncio.get_running_loop().create_task(self._store(query, completion))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _store(self, query: CacheQuery, completion: ChatCompletion) -> None:
        for name, cache in list(self.caches.items()):
            try:
                await cache.store(query, completion)
            except Exception as exc:
                log.warning("cache %s failed to store an answer (%s)", name, type(exc).__name__)

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
