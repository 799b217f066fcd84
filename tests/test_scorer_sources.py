"""The learned and benchmark scorers against a real database (SQLite and PostgreSQL): what they learn from the
rows other parts of the gateway write (feedback, profiling runs, benchmark syncs), read through the services the
gateway gives plugins (the decision log's ratings, the profile store's per-prompt scores, the benchmark store),
that they refresh in the background, and that the request path reads no database and has nothing to do when there
is nothing to say."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec
import pytest
from sqlalchemy import select

import routerd
from routerd.catalog import Catalog
from routerd.config import BenchmarkSettings, DispatchSettings
from routerd.db.database import Database
from routerd.db.models import CatalogModel, FeedbackRow, ModelProfile, RoutingDecisionRow
from routerd.dispatch import Dispatcher
from routerd_benchmarks import Settings as BenchmarkScorerSettings
from routerd_benchmarks.figures import CATEGORY_BENCHMARKS
from routerd_benchmarks.scorer import NO_OPINION as NO_BENCHMARKS
from routerd_benchmarks.scorer import BenchmarkScorer
from routerd_learned import Settings as LearnedSettings
from routerd_learned.scorer import NO_OPINION, LearnedScorer

pytestmark = pytest.mark.anyio

BIG = routerd.ModelInfo(name="big-14b", backend="fake", parameters=14_000_000_000)
TINY = routerd.ModelInfo(name="tiny-0.5b", backend="fake", parameters=500_000_000)
NEW = routerd.ModelInfo(name="newcomer-7b", backend="fake", parameters=7_000_000_000)
CODING = routerd.PromptFeatures(text="Write a Rust function that parses JSON.", category="coding", difficulty="hard")


def learned_settings(**values) -> LearnedSettings:
    return msgspec.convert({"embedder": "none", **values}, LearnedSettings)


def learned_scorer(database: Database, **settings) -> LearnedScorer:
    """The learned scorer as its plugin makes it, on the gateway's decision log and profile store."""
    decisions = routerd.DecisionLog(database, learners={})
    return LearnedScorer(learned_settings(**settings), decisions, routerd.ProfileStore(database))


@pytest.fixture
async def database(database_url):
    db = Database(database_url)
    await db.start()
    yield db
    await db.close()


def profile_details(prompts: list[dict]) -> dict:
    """The shape the profiler stores in ``model_profiles.details`` (docs/profiling.md)."""
    return {"run_id": "run-1", "suite": "builtin", "max_tokens": 256, "judged": 2, "unjudged": 1, "errors": 1,
            "prompts": prompts}  # fmt: skip


async def store_outcomes(database: Database) -> None:
    async with database.session() as session:
        big, tiny = CatalogModel(backend="fake", name="big-14b"), CatalogModel(backend="fake", name="tiny-0.5b")
        session.add_all([big, tiny])
        await session.flush()
        coding = [
            {"id": f"c{i}", "prompt": f"Write a Rust function that parses {what}.", "score": score, "method": "judge",
             "judged": True}
            for i, (what, score) in enumerate([("JSON", 1.0), ("TOML", 0.9), ("YAML", 1.0), ("CSV", 0.8)])
        ]  # fmt: skip
        extra = [
            {"id": "u", "prompt": "Write a haiku.", "score": 0.5, "method": "unjudged", "judged": False},
            {"id": "e", "prompt": "Write a poem.", "score": None, "method": "error", "judged": False, "error": "500"},
        ]
        for model, scale in ((big, 1.0), (tiny, 0.1)):
            rows = [{**p, "score": round(p["score"] * scale, 2)} for p in coding] + extra
            session.add(ModelProfile(model_id=model.id, suite_version="1", category="coding",
                                     details=profile_details(rows)))  # fmt: skip
        session.add(
            RoutingDecisionRow(
                id="rd-1",
                principal="anonymous",
                chosen_model="tiny-0.5b",
                features={"text": "Write a Rust function that parses XML.", "category": "coding"},
                candidates=[],
            )
        )
        await session.flush()
        session.add(FeedbackRow(decision_id="rd-1", response_id="r-1", model="tiny-0.5b", rating=0.0, principal="a"))


async def test_profiles_and_feedback_in_the_database_train_the_learned_scorer(database):
    await store_outcomes(database)
    scorer = learned_scorer(database, min_outcomes=4, confidence_outcomes=1)
    assert await scorer.score(CODING, [BIG, TINY]) is NO_OPINION  # nothing trained yet
    trained = await scorer.trainer.round()
    assert trained is scorer.trained
    assert sorted(trained.models) == ["big-14b", "tiny-0.5b"]
    # four judged prompts each, and the rated decision's prompt for tiny; unjudged and failed ones left out
    assert dict(zip(trained.models, trained.counts_list, strict=True)) == {"big-14b": 4, "tiny-0.5b": 5}
    found = await scorer.score(CODING, [BIG, TINY, NEW])
    assert set(found) == {"big-14b", "tiny-0.5b"}  # no outcome known for the newcomer: no opinion
    assert found["big-14b"].score > 0.8 > 0.2 > found["tiny-0.5b"].score
    assert found["big-14b"].reason == f"predicted {found['big-14b'].score:.2f} from 4 prompts with known outcomes"
    assert found["big-14b"].weight == pytest.approx(2.0 * 4 / 5)


async def test_feedback_uses_the_whole_prompt_the_scorer_remembered(database):
    await store_outcomes(database)
    scorer = learned_scorer(database, min_outcomes=1, profiles=False)
    long_prompt = "Write a Rust function that parses XML. " + "It must stream the input. " * 20
    await scorer.learn(
        routerd.Outcome(decision_id="rd-1", model="tiny-0.5b", features=CODING.__class__(text=long_prompt))
    )
    trained = await scorer.trainer.round()
    assert trained.prompts == 1 and trained.lexical.vectorizer.idf is not None
    # the audit log keeps 200 characters; the remembered text is the whole prompt
    assert scorer.recent.get("rd-1", "") == long_prompt


async def test_feedback_on_a_second_backends_copy_counts_for_the_models_name(database):
    """A model two backends serve is listed as `tiny-0.5b` and `fake2/tiny-0.5b`; a rating of the second copy is
    stored under its public id, and the learned model, which learns per name, counts it for `tiny-0.5b`."""
    async with database.session() as session:
        candidates = [{"model": "fake2/tiny-0.5b", "backend": "fake2", "name": "tiny-0.5b", "total": 0.5}]
        features = {"text": "Write a Rust function that parses XML.", "category": "coding"}
        session.add(RoutingDecisionRow(id="rd-2", principal="anonymous", chosen_model="fake2/tiny-0.5b",
                                       features=features, candidates=candidates))  # fmt: skip
        await session.flush()
        session.add(FeedbackRow(decision_id="rd-2", response_id="r-2", model="fake2/tiny-0.5b", rating=0.0,
                                principal="a"))  # fmt: skip
    scorer = learned_scorer(database, min_outcomes=1, profiles=False)
    trained = await scorer.trainer.round()
    assert trained.models == ["tiny-0.5b"]
    assert set(await scorer.score(CODING, [TINY])) == {"tiny-0.5b"}


async def test_bad_data_in_the_database_is_left_out_not_fatal(database):
    async with database.session() as session:
        model = CatalogModel(backend="fake", name="big-14b")
        session.add(model)
        await session.flush()
        for details in (
            {},
            {"prompts": "nope"},
            {"prompts": [1, {"prompt": 3, "score": 1}, {"prompt": "p", "score": True}]},
        ):
            session.add(ModelProfile(model_id=model.id, suite_version="1", category="coding", details=details))
    scorer = learned_scorer(database, min_outcomes=1)
    assert await scorer.trainer.round() is None and scorer.trained is None


async def test_retraining_swaps_the_whole_model_when_enough_new_feedback_arrives(database):
    await store_outcomes(database)
    scorer = learned_scorer(database, min_outcomes=4, retrain_after=2, reload_interval=60)
    await scorer.start()
    try:
        await until(lambda: scorer.trained is not None)
        first = scorer.trained
        features = routerd.PromptFeatures(text="Write a Rust function that parses INI.", category="coding")
        for i in range(2):
            async with database.session() as session:
                session.add(RoutingDecisionRow(id=f"rd-n{i}", principal="a", chosen_model="big-14b",
                                               features={"text": features.text}, candidates=[]))  # fmt: skip
                await session.flush()
                session.add(FeedbackRow(decision_id=f"rd-n{i}", response_id=f"n{i}", model="big-14b", rating=0.0,
                                        principal="a"))  # fmt: skip
            await scorer.learn(routerd.Outcome(decision_id=f"rd-n{i}", model="big-14b", features=features, rating=0.0))
        await until(lambda: scorer.trained is not first)
    finally:
        await scorer.close()
    assert first.counts_list[first.column["big-14b"]] == 4
    assert scorer.trained.counts_list[scorer.trained.column["big-14b"]] == 5  # the INI prompt, rated twice


async def test_new_outcomes_in_the_database_retrain_it_at_the_next_look(database):
    """Another replica's rating and a profiling run stored elsewhere reach the scorer through the database only: a
    look every `reload_interval` (the ratings' count, the profile store's marker) finds them and retrains; a look
    that finds nothing new trains nothing."""
    await store_outcomes(database)
    scorer = learned_scorer(database, min_outcomes=4, reload_interval=0.05)
    await scorer.start()
    try:
        await until(lambda: scorer.trained is not None)
        first, rounds = scorer.trained, scorer.trainer.rounds
        await asyncio.sleep(0.3)  # several looks, nothing new
        assert scorer.trained is first and scorer.trainer.rounds == rounds
        async with database.session() as session:
            session.add(RoutingDecisionRow(id="rd-other", principal="a", chosen_model="big-14b",
                                           features={"text": "Write a Rust function that parses INI."},
                                           candidates=[]))  # fmt: skip
            await session.flush()
            session.add(FeedbackRow(decision_id="rd-other", response_id="o", model="big-14b", rating=0.0,
                                    principal="a"))  # fmt: skip
        await until(lambda: scorer.trained is not first)
        rated = scorer.trained
        async with database.session() as session:
            big = (await session.execute(select(CatalogModel).where(CatalogModel.name == "big-14b"))).scalar_one()
            prompt = {"id": "n", "prompt": "Write a Rust function that parses HCL.", "score": 1.0, "judged": True}
            session.add(ModelProfile(model_id=big.id, suite_version="1", category="coding",
                                     details=profile_details([prompt])))  # fmt: skip
        await until(lambda: scorer.trained is not rated)
    finally:
        await scorer.close()
    big = first.column["big-14b"]
    assert first.counts_list[big] == 4
    assert rated.counts_list[rated.column["big-14b"]] == 5  # the other replica's rating
    assert scorer.trained.counts_list[scorer.trained.column["big-14b"]] == 6  # and the new run's judged prompt


async def until(condition, seconds: float = 30.0) -> None:
    """Wait for a background task's effect (polled: the scorers signal nothing to tests)."""
    async with asyncio.timeout(seconds):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def benchmark_record(model: str, benchmark: str, value: float, source: str = "hf_leaderboard"):
    return routerd.BenchmarkRecord(source, model, benchmark, value, dt.datetime.now(dt.UTC))


def benchmark_scorer(database: Database, refresh_interval: float) -> BenchmarkScorer:
    """The benchmark scorer as its plugin makes it, on the gateway's benchmark store and served models."""
    settings = msgspec.convert({"refresh_interval": refresh_interval}, BenchmarkScorerSettings)
    models = routerd.ServedModels(Catalog({}, database), Dispatcher(DispatchSettings()))
    store = routerd.BenchmarkStore(database)
    return BenchmarkScorer(settings, store, models, BenchmarkSettings(), CATEGORY_BENCHMARKS)


async def test_benchmark_scorer_builds_its_tables_after_a_sync_and_reads_no_database_per_request(database):
    scorer = benchmark_scorer(database, 0.05)
    await scorer.start()
    repository = routerd.BenchmarkStore(database)
    try:
        await asyncio.sleep(0.2)
        assert await scorer.score(CODING, [BIG, TINY]) is NO_BENCHMARKS  # nothing stored: nothing to say
        records = [benchmark_record(f"filler/model-{i}-7B", "bbh", 10.0 + i) for i in range(8)]
        records += [benchmark_record("acme/big-14B", "bbh", 60.0), benchmark_record("acme/tiny-0.5B", "bbh", 5.0)]
        await repository.sync_started("hf_leaderboard", dt.datetime.now(dt.UTC))
        await repository.replace_source("hf_leaderboard", records)
        await repository.sync_finished("hf_leaderboard", at=dt.datetime.now(dt.UTC), ok=True, records=10, error=None)
        async with asyncio.timeout(10):
            while "big-14b" not in scorer.tables.get("coding", {}):
                await scorer.score(CODING, [BIG, TINY])  # names the candidates: looked up in the background
                await asyncio.sleep(0.02)
        await database.close()  # from here on, a database read would fail
        found = await scorer.score(CODING, [BIG, TINY])
        simple = await scorer.score(routerd.PromptFeatures(text="hi", difficulty="simple"), [BIG, TINY])
    finally:
        await scorer.close()
    assert found["big-14b"].score > found["tiny-0.5b"].score
    assert found["big-14b"].reason == "coding: BBH 60 (#1) of 10 models on hf_leaderboard (as acme/big-14B)"
    assert found["big-14b"].weight == pytest.approx(1.0 * (0.5 + 0.5 / 3))  # one of coding's three benchmarks
    assert simple is NO_BENCHMARKS


async def test_benchmark_scorer_looks_up_a_new_catalog_model_in_the_background(database):
    repository = routerd.BenchmarkStore(database)
    records = [
        benchmark_record("acme/big-14B", "math_lvl_5", 40.0),
        benchmark_record("acme/newcomer-7B", "math_lvl_5", 20.0),
    ]
    await repository.replace_source("hf_leaderboard", records)
    scorer = benchmark_scorer(database, 30)
    await scorer.start()
    maths = routerd.PromptFeatures(text="Solve x + 1 = 2.", category="math", difficulty="medium")
    try:
        await until(lambda: scorer.index is not None)
        first = await scorer.score(maths, [NEW])  # never seen: no opinion now, looked up at once in the background
        await until(lambda: "newcomer-7b" in scorer.tables.get("math", {}))
        later = await scorer.score(maths, [NEW])
    finally:
        await scorer.close()
    assert "newcomer-7b" not in first
    assert later["newcomer-7b"].reason.startswith("math: MATH lvl 5 20 (#2) of 2 models on hf_leaderboard")
