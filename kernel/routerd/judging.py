"""Asking the registered judges for a verdict (``context.judges``).

The judges are asked in registration order; the first valid verdict counts (a `Judgement` with `judged` true and
a finite score in 0..1). A judge that raises, takes longer than the timeout, answers None (no opinion) or returns
something that is not a valid verdict is passed over, and what went wrong is kept in the verdict's `notes`
(secrets masked), so whoever stores the verdict can say why an answer is unjudged.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from typing import Any

import msgspec

from routerd.config import mask_secrets
from routerd.schemas.catalog import Judgement, PromptFeatures

NOTE_MAX = 300  # characters of one judge's failure kept in a note


class JudgeVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """The outcome of asking the judges: `score` in 0..1 and the `judge` that gave it, or `judged` False (score
    None) when none did; `notes` says what each judge passed over did."""

    score: float | None
    judged: bool
    judge: str | None = None
    reason: str = ""
    notes: list[str] = []


def _failure(name: str, exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"{name}: {mask_secrets(text)}"[:NOTE_MAX]


def usable(result: Any) -> tuple[float, str] | str:
    """The score and reason of a valid verdict, or why `result` is not one."""
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


class Judges:
    """The registered judges (`routerd.Judge`), asked in turn."""

    def __init__(self, judges: Mapping[str, Any]) -> None:
        self._judges = judges  # the registry's own mapping: judges registered later are seen

    async def verdict(
        self,
        features: PromptFeatures,
        model: str,
        answer: str,
        reference: str | None = None,
        *,
        timeout: float = 60.0,  # noqa: ASYNC109  (each judge's own limit, not the call's)
    ) -> JudgeVerdict:
        """The first valid verdict on `answer` (the reply of `model` to ``features.text``), each judge given
        `timeout` seconds; see the module's doc."""
        notes: list[str] = []
        for name, judge in list(self._judges.items()):
            try:
                async with asyncio.timeout(timeout):
                    result = await judge.judge(features, model, answer, reference=reference)
            except TimeoutError:
                notes.append(f"{name}: no verdict within {timeout:g} s")
                continue
            except Exception as exc:
                notes.append(_failure(name, exc))
                continue
            found = usable(result)
            if isinstance(found, str):
                if result is not None:  # "no opinion" is not worth a note
                    notes.append(f"{name}: {found}")
                continue
            score, reason = found
            return JudgeVerdict(score=score, judged=True, judge=name, reason=reason[:NOTE_MAX], notes=notes)
        reason = "no judge gave a verdict" if notes else "no judge is registered"
        return JudgeVerdict(score=None, judged=False, reason=reason, notes=notes)
