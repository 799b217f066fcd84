"""The ``profiles`` scorer and the ``speed`` scorer reading the runtime profiles: quality per category with a
weight that follows how many answers were graded, reasons that cite the profile, and the profiled latency in
place of the size estimate (counted once, by ``speed``)."""

from __future__ import annotations

import asyncio
import datetime as dt

from routerd import CategoryProfile, ModelInfo, Outcome, ProfileIndex, PromptFeatures, RuntimeProfile
from routerd_scorers.profiles import ProfilesScorer
from routerd_scorers.speed import SpeedScorer

WHEN = dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC)
SMALL = ModelInfo(name="small-1b", backend="ollama", parameters=1_000_000_000)
LARGE = ModelInfo(name="large-70b", backend="ollama", parameters=70_000_000_000)
UNPROFILED = ModelInfo(name="new-8b", backend="ollama", parameters=8_000_000_000)


def profile(model: ModelInfo, **categories: CategoryProfile) -> RuntimeProfile:
    return RuntimeProfile(
        backend=model.backend, model=model.name, suite_version="2026.12+abc", profiled_at=WHEN, categories=categories
    )


def figures(category, quality, *, samples=4, judged=4, unjudged=0, errors=0, latency=None, tps=None):
    return CategoryProfile(
        category=category,
        quality=quality,
        samples=samples,
        judged=judged,
        unjudged=unjudged,
        errors=errors,
        latency_ms=latency,
        tokens_per_second=tps,
        ttft_ms=50.0 if latency else None,
    )


def index() -> ProfileIndex:
    found = ProfileIndex()
    found.replace(
        [
            profile(
                SMALL,
                coding=figures("coding", 0.25, judged=2, unjudged=2, latency=900.0, tps=61.2),
                general=figures("general", 0.8, latency=300.0, tps=70.0),
            ),
            profile(
                LARGE,
                coding=figures("coding", 0.62, latency=4000.0, tps=38.4),
                general=figures("general", 0.9, samples=4, judged=0, unjudged=4, latency=2000.0, tps=40.0),
            ),
        ]
    )
    return found


def scores(scorer, category: str, models=(SMALL, LARGE, UNPROFILED)):
    features = PromptFeatures(text="...", category=category)
    return asyncio.run(scorer.score(features, list(models)))


def test_quality_comes_from_the_prompts_category_with_a_reason_citing_the_profile():
    found = scores(ProfilesScorer(index(), weight=2.0), "coding")
    assert set(found) == {"small-1b", "large-70b"}  # no profile: no opinion
    large, small = found["large-70b"], found["small-1b"]
    assert (large.score, large.weight, large.aspect) == (0.62, 2.0, "quality")
    assert large.reason == "profiled 2026-12-01: coding 0.62 over 4 prompts (4 graded), 38 tok/s"
    assert small.weight == 1.0  # half its answers were graded: half the weight
    assert small.reason == "profiled 2026-12-01: coding 0.25 over 4 prompts (2 graded), 61 tok/s"


def test_a_profile_without_graded_answers_is_for_the_record_only():
    large = scores(ProfilesScorer(index(), weight=2.0), "general")["large-70b"]
    assert large.weight == 0.0 and large.reason.startswith("profiled 2026-12-01: general 0.90 over 4 prompts")


def test_a_category_the_suite_lacks_uses_every_category_together():
    small = scores(ProfilesScorer(index(), weight=2.0), "translation")["small-1b"]
    assert small.score == (0.25 * 4 + 0.8 * 4) / 8
    assert small.reason.startswith("profiled 2026-12-01: all categories 0.53 over 8 prompts (6 graded)")
    assert small.weight == 2.0 * 6 / 8


def test_a_category_whose_every_prompt_failed_falls_back_and_a_failed_profile_says_nothing():
    broken = ProfileIndex()
    broken.replace(
        [
            profile(SMALL, coding=figures("coding", None, errors=4), general=figures("general", 0.5)),
            profile(LARGE, coding=figures("coding", None, errors=4)),
        ]
    )
    found = scores(ProfilesScorer(broken, weight=2.0), "coding")
    assert "all categories 0.50 over 4 prompts" in found["small-1b"].reason
    assert "large-70b" not in found


def test_speed_prefers_live_measurements_then_the_profile_then_the_size():
    speed = SpeedScorer(1.0, target_latency_ms=500.0, ms_per_sqrt_billion=100.0, profiles=index())
    found = scores(speed, "coding")
    assert found["small-1b"].reason == "profiled 2026-12-01: 900 ms for coding prompts"
    assert found["small-1b"].score == 500 / (500 + 900) and found["small-1b"].weight == 1.0
    assert found["large-70b"].score == 500 / (500 + 4000)
    assert found["new-8b"].reason.endswith("(not measured yet)") and found["new-8b"].weight == 0.5
    other = scores(speed, "math")["small-1b"]  # not in the suite: the whole suite's latency
    assert other.reason == "profiled 2026-12-01: 600 ms for its suite"
    outcome = Outcome(decision_id="d", model="small-1b", features=PromptFeatures(text="x"), latency_ms=120.0)
    asyncio.run(speed.learn(outcome))
    assert scores(speed, "coding")["small-1b"].reason == "answers in 120 ms on average"


def test_the_speed_scorer_without_profiles_keeps_its_size_estimate():
    found = scores(SpeedScorer(1.0, 500.0), "coding")
    assert all(c.reason.endswith("(not measured yet)") for c in found.values())


def test_the_index_keeps_a_newer_profile_put_while_it_was_reloading():
    found = index()
    newer = RuntimeProfile(
        backend=SMALL.backend,
        model=SMALL.name,
        suite_version="2027.01+def",
        profiled_at=WHEN + dt.timedelta(hours=1),
        categories={"coding": figures("coding", 0.4)},
    )
    found.put(newer)
    found.replace([profile(SMALL, coding=figures("coding", 0.25))])  # a reload that read the database before
    assert found.get(SMALL).suite_version == "2027.01+def"
    assert found.get(LARGE) is not None  # profiles are history: a reload never forgets a model
    found.put(profile(SMALL, coding=figures("coding", 0.1)))  # older than what is known: ignored
    assert found.get(SMALL).categories["coding"].quality == 0.4


def test_whole_opinions_are_reused_only_while_the_profiles_and_candidates_stay_the_same():
    profiles = index()
    scorer = ProfilesScorer(profiles, weight=1.0)
    first = scores(scorer, "coding")
    assert scores(scorer, "coding") is first  # the same prompt kind, profiles and candidates: the same opinion
    assert scores(scorer, "general") is not first
    profiles.put(
        RuntimeProfile(
            backend=SMALL.backend,
            model=SMALL.name,
            suite_version="2027.01+def",
            profiled_at=WHEN + dt.timedelta(days=1),
            categories={"coding": figures("coding", 0.75)},
        )
    )
    assert scores(scorer, "coding")["small-1b"].score == 0.75  # a new profile: a new opinion
    renamed = ModelInfo(name="small-1b", backend="ollama", parameters=2_000_000_000)  # the catalog's new entry
    again = scores(scorer, "coding", models=(renamed, LARGE))
    assert again is not first and set(again) == {"small-1b", "large-70b"}
    assert scores(scorer, "coding", models=(LARGE,)).keys() == {"large-70b"}
