"""Builtin scorers, one plugin each so each can be switched off on its own:

- ``size_fit``: a model's size against what the prompt's category and difficulty need;
- ``speed``: how fast a model answers (measured latency, else profiled latency, else its size);
- ``cost``: what a call costs (configured prices; local models are free);
- ``diversity``: a model picked too often loses up to half its score;
- ``feedback``: what users said about a model's answers in the prompt's category.
- ``profiles``: a model's quality as the profiler measured it in the prompt's category.
"""

from collections.abc import Mapping, Sequence

import routerd


class PerModelScorer:
    """A scorer whose opinion of each candidate depends on that model alone: a subclass defines
    ``contribution(features, model)``, returning a `routerd.Contribution` or None (no opinion)."""

    def contribution(self, features: routerd.PromptFeatures, model: routerd.ModelInfo) -> routerd.Contribution | None:
        raise NotImplementedError

    async def score(
        self, features: routerd.PromptFeatures, candidates: Sequence[routerd.ModelInfo]
    ) -> Mapping[str, routerd.Contribution]:
        found = {m.name: self.contribution(features, m) for m in candidates}
        return {name: c for name, c in found.items() if c is not None}

    async def judge(self, features, model, answer, reference=None):
        return None
