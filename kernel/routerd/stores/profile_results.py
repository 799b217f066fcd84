"""What a profiling run stores: one ``model_profiles`` row per model and category, its ``details`` a
`ProfileDetails` with every prompt's `PromptResult` (score, verdict, timings, the answer itself).

These Structs are the documented shape of ``details`` (docs/profiling.md): learned scorers train on the
per-prompt scores, and `routerd profiles import` validates imported rows against them.
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

ANSWER_MAX = 2000  # characters of an answer kept in a profile
Score = Annotated[float, Meta(ge=0, le=1)]
NonNegative = Annotated[float, Meta(ge=0)]  # milliseconds, tokens per second
Method = Literal["exact", "judge", "empty", "unjudged", "error", "skipped"]


class PromptResult(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One suite prompt's outcome. `score` is None when the prompt failed (`method` ``error``: see `error`) or
    was skipped after too many failures in a row; `judged` is False for a neutral unjudged 0.5."""

    id: Annotated[str, Meta(min_length=1, max_length=80)]
    prompt: Annotated[str, Meta(max_length=20_000)]
    score: Score | None
    method: Method
    judged: bool
    judge: Annotated[str, Meta(max_length=200)] | None = None
    reason: Annotated[str, Meta(max_length=2000)] = ""
    notes: list[Annotated[str, Meta(max_length=2000)]] = []
    answer: Annotated[str, Meta(max_length=ANSWER_MAX)] = ""
    ttft_ms: NonNegative | None = None
    latency_ms: NonNegative | None = None
    tokens: Annotated[int, Meta(ge=0)] = 0
    tokens_per_second: NonNegative | None = None
    error: Annotated[str, Meta(max_length=2000)] | None = None

    @property
    def answered(self) -> bool:
        return self.score is not None


class ProfileDetails(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The ``details`` of one category's row. `run_id` ties together the rows of one run (one per category);
    `judged`, `unjudged` and `errors` count the category's prompts by outcome."""

    run_id: Annotated[str, Meta(min_length=1, max_length=64)]
    suite: Annotated[str, Meta(max_length=60)]
    max_tokens: Annotated[int, Meta(ge=1)]
    judged: Annotated[int, Meta(ge=0)]
    unjudged: Annotated[int, Meta(ge=0)]
    errors: Annotated[int, Meta(ge=0)]
    prompts: list[PromptResult]


class CategoryResult(msgspec.Struct, kw_only=True):
    """The values of one ``model_profiles`` row."""

    category: str
    quality: float | None
    ttft_ms: float | None
    tokens_per_second: float | None
    latency_ms: float | None
    samples: int
    details: ProfileDetails


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def summarise(
    category: str, results: list[PromptResult], *, run_id: str, suite: str, max_tokens: int
) -> CategoryResult:
    """One category's row: quality is the mean score of its answered prompts (None when none was answered);
    the timings are medians over the answered prompts, so one slow outlier does not decide."""
    scores = [r.score for r in results if r.score is not None]
    answered = [r for r in results if r.answered]
    details = ProfileDetails(
        run_id=run_id,
        suite=suite,
        max_tokens=max_tokens,
        judged=sum(1 for r in answered if r.judged),
        unjudged=sum(1 for r in answered if not r.judged),
        errors=len(results) - len(answered),
        prompts=results,
    )
    return CategoryResult(
        category=category,
        quality=sum(scores) / len(scores) if scores else None,
        ttft_ms=_median([r.ttft_ms for r in answered]),
        tokens_per_second=_median([r.tokens_per_second for r in answered]),
        latency_ms=_median([r.latency_ms for r in answered]),
        samples=len(results),
        details=details,
    )


class StoredRun(msgspec.Struct, kw_only=True):
    """One profiling run of one model as stored: its category rows, newest run first where listed."""

    backend: str
    name: str
    suite_version: str
    profiled_at: dt.datetime
    run_id: str
    categories: list[CategoryResult]

    @property
    def answered(self) -> bool:
        return any(c.quality is not None for c in self.categories)
