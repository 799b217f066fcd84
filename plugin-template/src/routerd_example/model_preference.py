"""The ``model_preference`` scorer: the operator's own taste, as a score routing adds to the others."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase

from routerd import Contribution, ModelInfo, PromptFeatures


class ModelPreferenceScorer:
    """Gives `score` to every candidate whose name matches one of `patterns` (shell-style globs,
    ``qwen2.5:*``, matched case-sensitively with `fnmatch.fnmatchcase`), naming the first pattern
    that matched; has no opinion on the others, so they are left to the other scorers."""

    name = "model_preference"

    def __init__(self, patterns: Sequence[str], score: float) -> None:
        self.patterns = tuple(patterns)
        self.bonus = score

    def matching_pattern(self, model: str) -> str | None:
        """The first pattern `model` matches, or None."""
        return next((p for p in self.patterns if fnmatchcase(model, p)), None)

    async def score(self, features: PromptFeatures, candidates: Sequence[ModelInfo]) -> Mapping[str, Contribution]:
        contributions: dict[str, Contribution] = {}
        for candidate in candidates:
            pattern = self.matching_pattern(candidate.name)
            if pattern is not None:
                contributions[candidate.name] = Contribution(
                    score=self.bonus, reason=f"preferred by the operator: matches {pattern!r}"
                )
        return contributions
