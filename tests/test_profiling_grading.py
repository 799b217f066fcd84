"""Grading one answer: empty first, then the exact check, then the first judge with a valid verdict, else a
neutral unjudged 0.5; judges that fail, hang or return nonsense are passed over with a note. The judges here
are small `routerd.Judge` objects, as plugins register them, asked through `routerd.Judges` (``context.judges``)."""

from __future__ import annotations

import asyncio
import math

import pytest

from routerd import Judgement, Judges, PromptFeatures
from routerd_profiling.grading import grade
from routerd_profiling.suite import Expectation, SuitePrompt

OPEN = SuitePrompt(id="open", category="coding", prompt="Write hello world.", reference="print('hello world')")
EXACT = SuitePrompt(id="sum", category="math", prompt="2+3?", reference="5", expect=Expectation(number=5))
FEATURES = PromptFeatures(text="Write hello world.", category="coding")


class Judge:
    """A judge that answers `verdict` (or raises it, or sleeps), recording what it was given."""

    def __init__(self, name: str, verdict=None, *, sleep: float = 0.0) -> None:
        self.name = name
        self.verdict = verdict
        self.sleep = sleep
        self.seen: list[tuple] = []

    async def judge(self, features, model, answer, reference=None):
        self.seen.append((features.category, model, answer, reference))
        await asyncio.sleep(self.sleep)
        if isinstance(self.verdict, BaseException):
            raise self.verdict
        return self.verdict


def run(prompt, answer, *judges, timeout=1.0):
    registered = Judges({j.name: j for j in judges})
    return asyncio.run(grade(prompt, FEATURES, "model-x", answer, registered, judge_timeout=timeout))


def test_the_first_valid_verdict_counts_and_gets_the_reference():
    silent, first, second = Judge("silent"), Judge("first", Judgement(0.8, "good")), Judge("second", Judgement(0.1))
    verdict = run(OPEN, "print('hello world')", silent, first, second)
    assert (verdict.score, verdict.method, verdict.judged, verdict.judge) == (0.8, "judge", True, "first")
    assert verdict.reason == "good" and verdict.notes == []  # a judge with no opinion is no news
    assert first.seen == [("coding", "model-x", "print('hello world')", "print('hello world')")]
    assert second.seen == []


def test_an_exact_expectation_is_checked_without_asking_judges():
    judge = Judge("judge", Judgement(0.0))
    assert run(EXACT, "The answer is 5.", judge).method == "exact"
    assert run(EXACT, "The answer is 5.", judge).score == 1.0
    assert run(EXACT, "It is 6.", judge).score == 0.0
    assert judge.seen == []


@pytest.mark.parametrize("answer", ["", "   \n"])
def test_an_empty_answer_scores_zero_without_asking_anyone(answer):
    judge = Judge("judge", Judgement(1.0))
    verdict = run(OPEN, answer, judge)
    assert (verdict.score, verdict.method, verdict.judged) == (0.0, "empty", True)
    assert run(EXACT, answer).method == "empty"
    assert judge.seen == []


def test_without_a_judge_a_non_empty_answer_is_a_neutral_unjudged_half():
    verdict = run(OPEN, "print('hi')")
    assert (verdict.score, verdict.method, verdict.judged, verdict.judge) == (0.5, "unjudged", False, None)
    assert verdict.reason == "no judge is registered"


@pytest.mark.parametrize(
    ("bad", "note"),
    [
        (ConnectionError("connection refused"), "bad: ConnectionError: connection refused"),
        (ValueError("judge said: 'great answer!!!'"), "bad: ValueError: judge said"),
        ("0.9", "bad: returned str, not a Judgement"),
        ({"score": 0.9}, "bad: returned dict, not a Judgement"),
        (Judgement(None, "could not parse the verdict", judged=False), "bad: unjudged (could not parse the verdict)"),
        (Judgement(0.7, judged=False), "bad: unjudged"),
        (Judgement(7.0), "bad: score 7.0 is outside 0..1"),
        (Judgement(-0.1), "bad: score -0.1 is outside 0..1"),
        (Judgement(math.nan), "bad: score nan is not a number"),
        (Judgement("high"), "bad: score 'high' is not a number"),
    ],
)
def test_a_judge_that_fails_or_returns_nonsense_is_passed_over_with_a_note(bad, note):
    verdict = run(OPEN, "print('hi')", Judge("bad", bad))
    assert (verdict.score, verdict.method, verdict.judged) == (0.5, "unjudged", False)
    assert verdict.reason == "no judge gave a verdict"
    assert verdict.notes[0].startswith(note)
    # and the next judge still gets its turn
    rescued = run(OPEN, "print('hi')", Judge("bad", bad), Judge("good", Judgement(0.9)))
    assert (rescued.score, rescued.judge) == (0.9, "good") and rescued.notes[0].startswith(note)


def test_a_judge_that_hangs_is_cut_off():
    verdict = run(OPEN, "print('hi')", Judge("slow", Judgement(1.0), sleep=5), timeout=0.2)
    assert verdict.method == "unjudged" and verdict.notes == ["slow: no verdict within 0.2 s"]


def test_secrets_in_a_judges_error_are_masked():
    error = ConnectionError("cannot reach https://judge:s3cret-key@judge.example/v1")
    verdict = run(OPEN, "print('hi')", Judge("leaky", error))
    assert "s3cret-key" not in verdict.notes[0] and "judge:***@judge.example" in verdict.notes[0]
