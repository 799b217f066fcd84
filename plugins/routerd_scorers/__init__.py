"""Builtin scorers, one plugin each so each can be switched off on its own:

- ``size_fit``: a model's size against what the prompt's category and difficulty need;
- ``speed``: how fast a model answers (measured latency, else profiled latency, else its size);
- ``cost``: what a call costs (configured prices; local models are free);
- ``diversity``: a model picked too often loses up to half its score;
- ``feedback``: what users said about a model's answers in the prompt's category.
- ``profiles``: a model's quality as the profiler measured it in the prompt's category.
"""

from collections.abc import Mapping, Sequence
from operator import is_
from types import MappingProxyType

import routerd


def _same(known: tuple, candidates: Sequence) -> bool:
    """The same objects in the same order."""
    return len(known) == len(candidates) and all(map(is_, known, candidates))


class PerModelScorer:
    """A scorer whose opinion of each candidate depends on that model alone: a subclass defines
    ``contribution(features, model)``, returning a `routerd.Contribution` or None (no opinion), and may define
    ``cache_key(features, model)``: what that contribution depends on, so it is made once per key (None: made
    every time). Scorers run on every request; most of them have the same opinion of a model request after
    request.

    Contributions are keyed by the candidate's public id (``model.key``: its name unless two backends serve a model
    of that name), so a subclass whose contribution depends on the backend (speed) tells the copies apart.

    A subclass may also define ``opinion_key(features)``: what its whole opinion depends on besides the candidates
    and ``state()`` (a value that changes whenever its opinions may, compared with ==). Then a request with the
    same key and state, over the same candidates (the same `ModelInfo` objects, which are immutable: the catalog
    puts new ones when a model changes), gets the opinion made for the last such request: one lookup instead of
    one per candidate.
    """

    CACHE_SIZE = 10_000
    OPINIONS = 256  # whole opinions kept, by opinion_key
    _contributions: dict | None = None  # cache_key -> contribution, made on first use (no __init__ needed)
    _opinions: dict | None = None  # opinion_key -> (state, candidates, opinion)

    def contribution(self, features: routerd.PromptFeatures, model: routerd.ModelInfo) -> routerd.Contribution | None:
        raise NotImplementedError

    def cache_key(self, features: routerd.PromptFeatures, model: routerd.ModelInfo):
        return None

    def opinion_key(self, features: routerd.PromptFeatures):
        return None

    def state(self):
        return None

    async def score(
        self, features: routerd.PromptFeatures, candidates: Sequence[routerd.ModelInfo]
    ) -> Mapping[str, routerd.Contribution]:
        key = self.opinion_key(features)
        if key is None:
            return self._each(features, candidates)
        opinions = self._opinions
        if opinions is None:
            opinions = self._opinions = {}
        state = self.state()
        made = opinions.get(key)
        if made is not None and made[0] == state and _same(made[1], candidates):
            return made[2]
        if len(opinions) >= self.OPINIONS:
            opinions.clear()
        found = MappingProxyType(self._each(features, candidates))  # shared by requests: read-only
        opinions[key] = (state, tuple(candidates), found)
        return found

    def _each(
        self, features: routerd.PromptFeatures, candidates: Sequence[routerd.ModelInfo]
    ) -> dict[str, routerd.Contribution]:
        cache = self._contributions
        if cache is None:
            cache = self._contributions = {}
        found = {}
        for model in candidates:
            key = self.cache_key(features, model)
            if key is None:
                contribution = self.contribution(features, model)
            elif (contribution := cache.get(key, cache)) is cache:  # not there (None is a cached "no opinion")
                if len(cache) >= self.CACHE_SIZE:
                    cache.clear()
                contribution = cache[key] = self.contribution(features, model)
            if contribution is not None:
                found[model.key] = contribution
        return found
