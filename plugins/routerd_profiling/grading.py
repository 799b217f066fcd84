"""Grading one answer of the suite: a deterministic check where the prompt has an exact expectation, otherwise
the registered judges (``context.judges``: the first valid verdict counts), otherwise a neutral 0.5 marked
unjudged.

An empty answer scores 0 without asking anyone. A judge that raises, times out, or returns something that is not
a valid verdict is passed over by `routerd.Judges`, which says why in the verdict's `notes`, so the profile says
why an answer is unjudged.
"""

from __future__ import annotations

import msgspec

from routerd import Judges, PromptFeatures
from routerd_profiling.checks import check
from routerd_profiling.suite import SuitePrompt

NEUTRAL = 0.5


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """How one answer was scored. `method` is ``exact`` (a deterministic check), ``judge`` (the judge named in
    `judge`), ``empty`` (no answer: 0) or ``unjudged`` (no judge gave a verdict: a neutral 0.5)."""

    score: float
    method: str
    judged: bool
    judge: str | None = None
    reason: str = ""
    notes: list[str] = []


async def grade(
    prompt: SuitePrompt,
    features: PromptFeatures,
    model: str,
    answer: str,
    judges: Judges,
    *,
    judge_timeout: float,
) -> Verdict:
    """Score `answer`, the reply of `model` to `prompt` (see the module's doc)."""
    if not answer.strip():
        return Verdict(score=0.0, method="empty", judged=True, reason="empty answer")
    if prompt.expect is not None:
        result = check(prompt.expect, answer)
        return Verdict(score=result.score, method="exact", judged=True, judge=prompt.expect.kind, reason=result.reason)
    verdict = await judges.verdict(features, model, answer, prompt.reference, timeout=judge_timeout)
    if verdict.judged and verdict.score is not None:
        return Verdict(
            score=verdict.score,
            method="judge",
            judged=True,
            judge=verdict.judge,
            reason=verdict.reason,
            notes=list(verdict.notes),
        )
    return Verdict(score=NEUTRAL, method="unjudged", judged=False, reason=verdict.reason, notes=list(verdict.notes))
