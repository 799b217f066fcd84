"""What the request pipeline shows the caches and skills it calls, and what they give back."""

from __future__ import annotations

import msgspec

from routerd.schemas.openai import ChatCompletion


class CacheQuery(msgspec.Struct, frozen=True, kw_only=True):
    """What a `routerd.Cache` sees of a request.

    `partition` is a hash of everything a hit must match besides the last user message: the caller's tenant and
    API key, every earlier message (the system prompt included), tools and tool_choice, response_format, the
    pinned model, the sampling parameters (temperature, top_p, seed, n, max_tokens, stop, logit_bias, penalties,
    ...) and the quality preference. A cache never answers across partitions. `key` is a hash of the partition
    and the last user message: two requests with the same key are the same request. `text` is the last user
    message's text, for caches that compare meaning. `tenant` is the caller's tenant (a partition already
    contains it; a cache may keep tenants' entries apart in its store too). `sampled` is true when the request
    asks for sampling (a temperature above 0, or none given, and no seed): the same request may rightly get
    another answer. `max_age` is the oldest answer the client accepts, in seconds (``Cache-Control: max-age``;
    None: the cache's own limit)."""

    partition: str
    key: str
    text: str
    tenant: str = "default"
    sampled: bool = False
    max_age: float | None = None


class CachedAnswer(msgspec.Struct, kw_only=True):
    """A cache hit: the stored completion (as `Cache.store` was given it), how similar the stored request's last
    message is to this one's (1.0: the same request), and the cache's own id of the entry, which the decision
    log records."""

    completion: ChatCompletion
    similarity: float = 1.0
    entry: str = ""
