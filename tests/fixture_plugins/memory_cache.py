"""A cache plugin for the pipeline's tests: answers by exact key, or (`semantic`) by the same words in the same
partition, with a similarity below 1; it records what it was asked."""

from __future__ import annotations

import asyncio
import re
import time

import msgspec

import routerd


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: str = "memory"
    semantic: bool = False
    fail: bool = False  # every lookup raises (a cache whose store is down)
    delay: float = 0.0  # seconds every lookup takes (a cache whose store is slow)


def words(text: str) -> frozenset[str]:
    return frozenset(re.findall(r"\w+", text.lower()))


class MemoryCache:
    def __init__(self, settings: Settings) -> None:
        self.name = settings.name
        self.semantic = settings.semantic
        self.fail = settings.fail
        self.delay = settings.delay
        self.entries: dict[tuple[str, str], tuple[float, routerd.ChatCompletion]] = {}
        self.by_words: dict[tuple[str, frozenset[str]], tuple[float, routerd.ChatCompletion]] = {}
        self.lookups: list[routerd.CacheQuery] = []
        self.stored: list[routerd.CacheQuery] = []

    async def lookup(self, query: routerd.CacheQuery) -> routerd.CachedAnswer | None:
        self.lookups.append(query)
        if self.fail:
            raise ConnectionError("the cache's store is down")
        if self.delay:
            await asyncio.sleep(self.delay)
        found = self.entries.get((query.partition, query.key))
        similarity = 1.0
        if found is None and self.semantic:
            found, similarity = self.by_words.get((query.partition, words(query.text))), 0.9
        if found is None:
            return None
        stored_at, completion = found
        if query.max_age is not None and time.time() - stored_at > query.max_age:
            return None
        return routerd.CachedAnswer(completion=completion, similarity=similarity, entry=query.key[:12])

    async def store(self, query: routerd.CacheQuery, answer: routerd.ChatCompletion) -> None:
        self.stored.append(query)
        self.entries[(query.partition, query.key)] = (time.time(), answer)
        self.by_words[(query.partition, words(query.text))] = (time.time(), answer)


@routerd.hookimpl
def register_caches(register, context):
    register(MemoryCache(context.settings))
