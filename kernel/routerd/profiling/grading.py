"""Grading one answer of the suite: a deterministic check where the prompt has an exact expectation, otherwise
the first scorer whose ``judge()`` gives a valid verdict, otherwise a neutral 0.5 marked unjudged.

An empty answer scores 0 without asking anyone. A judge that raises, times out, or returns something that is not
a valid verdict (not a `Judgement`, no score, a score outside 0..1) is passed over; what went wrong is kept in
the verdict's `notes`, so the profile says why an answer is unjudged.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import msgspec

from routerd.config import mask_secrets
from routerd.profiling.checks import check
from routerd.profiling.suite import SuitePrompt
from routerd.schemas.catalog import Judgement, PromptFeatures

NEUTRAL = 0.5
NOTE_MAX = 300  # characters of one judge's failure kept in a profile


class Verdict(msgspec.Struct, frozen=True, kw_only=True):
    """How one answer was scored. `method` is ``exact`` (a deterministic check), ``judge`` (the scorer named in
    `judge`), ``empty`` (no answer: 0) or ``unjudged`` (no judge gave a verdict: a neutral 0.5)."""

    score: float
    method: str
    judged: bool
    judge: str | None = None
    reason: str = ""
    notes: list[str] = []


def _failure(name: str, exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"{name}: {mask_secrets(text)}"[:NOTE_MAX]


def _valid(result: Any) -> tuple[float, str] | str:
    """The score and reason of a usable verdict, or why it is not one."""
    if result is None:
        return "no opinion"
    if not isinstance(result, Judgement):
        return f"returned {type(result).__name__}, not a Judgement"
    if not result.judged or result.score is None:
        return f"unjudged ({result.reason})"[:NOTE_MAX] if result.reason else "unjudged"
    score = result.score
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        return f"score {score!r} is not a number"[:NOTE_MAX]
    if not 0.0 <= score <= 1.0:
        return f"score {score!r} is outside 0..1"
    return float(score), str(result.reason)


async def grade(
    prompt: SuitePrompt,
    features: PromptFeatures,
    model: str,
    answer: str,
    scorers: Mapping[str, Any],
    *,
    judge_timeout: float,
) -> Verdict:
    """Score `answer`, the reply of `model` to `prompt` (see the module's doc)."""
    if not answer.strip():
        return Verdict(score=0.0, method="empty", judged=True, reason="empty answer")
    if prompt.expect is not None:
        result = check(prompt.expect, answer)
        return Verdict(score=result.score, method="exact", judged=True, judge=prompt.expect.kind, reason=result.reason)
    notes: list[str] = []
    for name, scorer in list(scorers.items()):
        try:
            async with asyncio.timeout(judge_timeout):
                result = await scorer.judge(features, model, answer, reference=prompt.reference)
        except TimeoutError:
            notes.append(f"{name}: no verdict within {judge_timeout:g} s")
            continue
        except Exception as exc:
            notes.append(_failure(name, exc))
            continue
        usable = _valid(result)
        if isinstance(usable, str):
            if result is not None:  # scorers that do not judge are not worth a note
                notes.append(f"{name}: {usable}")
            continue
        score, reason = usable
        return Verdict(score=score, method="judge", judged=True, judge=name, reason=reason[:NOTE_MAX], notes=notes)
    reason = "no judge gave a verdict" if notes else "no scorer judges answers"
    return Verdict(score=NEUTRAL, method="unjudged", judged=False, reason=reason, notes=notes)
