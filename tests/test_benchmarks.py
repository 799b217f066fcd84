"""Benchmark providers and the benchmark sync.

The two builtin providers are exercised for real over HTTP against a local server replaying the public
sources' payloads (tests/leaderboard_replay.py): paging, retries, timeouts, redirects. The kernel's screening,
matcher and merge are tested on their own; the sync's database writes run on SQLite and on PostgreSQL; the
admin endpoints are called on a started app.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import time
from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import func, select, text

from leaderboard_replay import ARENA_ASSET, ARENA_LATEST, LeaderboardState, leaderboard_row, leaderboard_server
from routerd import BenchmarkRecord
from routerd.config import BenchmarkSettings
from routerd.db.database import Database
from routerd.db.models import BenchmarkRecordRow, SyncStatusRow
from routerd.jobs.benchmark_sync import SYNC_LOCK_ID, BenchmarkSync
from routerd.stores import BENCHMARKS
from routerd.stores.benchmark_screening import allowed_benchmarks, screen
from routerd.testing import FAKE_PLUGIN, TEST_ADMIN_KEY, build_app
from routerd.toolkit import SourceUnavailable
from routerd_benchmarks.matching import ModelMatcher, match_model, parse
from routerd_benchmarks.merge import BenchmarkIndex, merge
from routerd_hf_leaderboard import HFLeaderboard
from routerd_lmsys_arena import ArenaLeaderboard

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
NOW = dt.datetime(2025, 7, 20, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def state() -> LeaderboardState:
    return LeaderboardState()


@pytest.fixture
def replay(state):
    with leaderboard_server(state) as url:
        yield url


def hf(url: str, **options: Any) -> HFLeaderboard:
    options = {"retry_backoff": 0.01, **options}
    dataset = {"dataset": "open-llm-leaderboard/contents", "config": "default", "split": "train"}
    return HFLeaderboard("hf_leaderboard", base_url=url, **dataset, **options)


def arena(url: str, **options: Any) -> ArenaLeaderboard:
    return ArenaLeaderboard("lmsys_arena", url=url + ARENA_LATEST, retry_backoff=0.01, **options)


def figures(records: list[BenchmarkRecord], model: str) -> dict[str, Any]:
    return {r.benchmark: r.value for r in records if r.model == model}


# -- the providers, over HTTP --------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_hf_leaderboard_reads_every_page(replay, state):
    records = await hf(replay).fetch()
    assert state.offsets() == [0, 100, 200]
    assert all(
        "length=100" in r and "dataset=open-llm-leaderboard/contents&config=default&split=train" in r
        for r in state.requests
    )
    assert figures(records, "Qwen/Qwen2.5-7B-Instruct") == {
        "open_llm_average": pytest.approx(35.198, abs=1e-3),
        "ifeval": 75.85,
        "bbh": 34.89,
        "math_lvl_5": 50.0,
        "gpqa": 5.48,
        "musr": 8.45,
        "mmlu_pro": 36.52,
    }
    assert len({r.model for r in records}) == 230  # every row but the flagged one
    assert not figures(records, "cheater/Qwen2.5-7B-Instruct-contaminated")
    assert {r.source for r in records} == {"hf_leaderboard"}


@pytest.mark.anyio
async def test_hf_leaderboard_pages_by_the_configured_size(replay, state):
    records = await hf(replay, page_size=40, max_rows=100).fetch()
    assert state.offsets() == [0, 40, 80]
    assert len({r.model for r in records}) == 100


@pytest.mark.anyio
async def test_hf_leaderboard_retries_a_500_then_succeeds(replay, state):
    state.fail_next = 2
    records = await hf(replay, retries=3).fetch()
    assert state.offsets() == [0, 0, 0, 100, 200]
    assert len({r.model for r in records}) == 230


@pytest.mark.anyio
async def test_hf_leaderboard_retries_a_request_that_times_out(replay, state):
    state.stall_next, state.stall_seconds = 1, 3.0
    started = time.monotonic()
    records = await hf(replay, timeout=0.5, retries=2).fetch()
    assert time.monotonic() - started < 2.5
    assert state.offsets()[:2] == [0, 0]
    assert records


@pytest.mark.anyio
async def test_hf_leaderboard_gives_up_after_its_retries(replay, state):
    state.hf_down = True
    with pytest.raises(SourceUnavailable, match="failed after 3 attempts: answered 503"):
        await hf(replay, retries=2).fetch()
    assert len(state.requests) == 3


@pytest.mark.anyio
async def test_hf_leaderboard_refuses_a_page_that_is_not_one(replay, state):
    state.raw_pages[0] = "not a list"
    with pytest.raises(SourceUnavailable, match="not a datasets-server rows page"):
        await hf(replay).fetch()


@pytest.mark.anyio
async def test_arena_follows_the_release_redirect(replay, state):
    records = await arena(replay).fetch()
    assert state.requests == [ARENA_LATEST, ARENA_ASSET]
    assert {r.model: r.value for r in records}["Meta-Llama-3.1-8B-Instruct"] == 1192.0
    assert {r.benchmark for r in records} == {"arena_elo"} and len(records) == 10


@pytest.mark.anyio
async def test_arena_reads_a_json_table(replay, state):
    state.arena_body = '[{"model": "Gemma-2-9B-it", "arena_score": 1208, "votes": 57197}, {"model": "x", "elo": 1}]'
    records = await arena(replay).fetch()
    assert [(r.model, r.value) for r in records] == [("Gemma-2-9B-it", 1208), ("x", None)]


@pytest.mark.anyio
async def test_arena_without_a_rating_column_fails_naming_the_columns(replay, state):
    state.arena_body = "model,votes\nGemma-2-9B-it,57197\n"
    with pytest.raises(SourceUnavailable, match=r"no rating column \(columns: model, votes\)"):
        await arena(replay).fetch()


@pytest.mark.anyio
async def test_arena_error_is_retried_then_reported(replay, state):
    state.arena_down = True
    with pytest.raises(SourceUnavailable, match="answered 502"):
        await arena(replay, retries=1).fetch()
    assert state.requests.count(ARENA_ASSET) == 2


# -- screening: the whitelist ---------------------------------------------------------------------------------


def test_screening_refuses_field_by_field_and_keeps_the_rest():
    good = BenchmarkRecord("src", "Qwen/Qwen2.5-7B-Instruct", "mmlu_pro", 36.52, NOW)
    items = [
        good,
        {"source": "src", "model": "a/b", "benchmark": "ifeval", "value": 70, "sql": "'; DROP TABLE x; --"},
        BenchmarkRecord("src", "a/b", "bbh", "31.2; DROP TABLE benchmark_records", NOW),
        BenchmarkRecord("src", "a/b", "humaneval", 50.0, NOW),
        BenchmarkRecord("src", "a/b", "gpqa", True, NOW),
        BenchmarkRecord("src", "a/b", "musr", math.nan, NOW),
        BenchmarkRecord("src", "a/b", "math_lvl_5", 250.0, NOW),
        BenchmarkRecord("other", "a/b", "mmlu_pro", 20.0, NOW),
        BenchmarkRecord("src", "x" * 401, "mmlu_pro", 20.0, NOW),
        BenchmarkRecord("src", "bad\x00name", "mmlu_pro", 20.0, NOW),
        BenchmarkRecord("src", 42, "mmlu_pro", 20.0, NOW),
        BenchmarkRecord("src", "a/b", "ifeval", None, NOW),  # a blank figure: skipped, not refused
        BenchmarkRecord("src", "Qwen/Qwen2.5-7B-Instruct", "mmlu_pro", 11.0, NOW),  # a duplicate: first wins
        "not a record",
        BenchmarkRecord("src", "a/b", "arena_elo", 1208, "yesterday"),
        BenchmarkRecord("src", "  c/d  ", "arena_elo", 1208, None),
    ]
    screened = screen("src", items, now=NOW)
    assert screened.records == [good, BenchmarkRecord("src", "c/d", "arena_elo", 1208.0, NOW)]
    assert screened.empty == 1 and screened.duplicates == 1
    refused = [(r.index, r.field) for r in screened.refusals]
    assert refused == [
        (1, "'sql'"),
        (2, "value"),
        (3, "benchmark"),
        (4, "value"),
        (5, "value"),
        (6, "value"),
        (7, "source"),
        (8, "model"),
        (9, "model"),
        (10, "model"),
        (13, "record"),
        (14, "fetched_at"),
    ]
    reasons = {(r.index, r.field): r.reason for r in screened.refusals}
    assert reasons[(1, "'sql'")].startswith("unknown field")
    assert reasons[(2, "value")] == "expected a number, got str '31.2; DROP TABLE benchmark_records'"
    assert reasons[(3, "benchmark")] == "'humaneval' is not a known benchmark"
    assert reasons[(4, "value")] == "expected a number, got bool True"
    assert reasons[(6, "value")] == "250.0 is outside math_lvl_5's range 0..100"
    assert str(screened.refusals[0]) == (
        "record 1 ('a/b'): 'sql': unknown field (a record has only source, model, benchmark, value, fetched_at)"
    )


def test_extra_benchmarks_widen_the_whitelist():
    record = BenchmarkRecord("src", "a/b", "house_sql", 0.71, NOW)
    assert screen("src", [record]).refusals
    assert screen("src", [record], allowed=allowed_benchmarks(["house_sql"])).records == [record]
    assert set(BENCHMARKS) < set(allowed_benchmarks(["house_sql"]))


# -- the matcher ----------------------------------------------------------------------------------------------

PUBLISHED = [
    "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-7B",
    "unsloth/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-72B-Instruct",
    "Qwen/Qwen2.5-Coder-7B-Instruct",
    "Qwen/Qwen2.5-0.5B-Instruct",
    "meta-llama/Llama-3.1-8B-Instruct",
    "meta-llama/Llama-3.1-8B",
    "meta-llama/Llama-3.1-70B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct",
    "meta-llama/Llama-3.2-3B",
    "meta-llama/Meta-Llama-3-8B-Instruct",
    "nvidia/Llama-3.1-Nemotron-70B-Instruct-HF",
    "mlabonne/Meta-Llama-3.1-8B-Instruct-abliterated",
    "google/gemma-2-9b-it",
    "google/gemma-2-9b",
    "google/gemma-3-270m-it",
    "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "mistralai/Mixtral-8x7B-v0.1",
    "mistralai/Mistral-7B-Instruct-v0.1",
    "mistralai/Mistral-7B-Instruct-v0.2",
    "mistralai/Mistral-7B-Instruct-v0.3",
    "microsoft/phi-4",
    "microsoft/Phi-3-mini-4k-instruct",
    "microsoft/Phi-3-mini-128k-instruct",
    "HuggingFaceTB/SmolLM2-1.7B-Instruct",
    "01-ai/Yi-1.5-34B-Chat",
    "01-ai/Yi-34B-Chat",
    "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B",
    "codellama/CodeLlama-7b-Instruct-hf",
    "meta-llama/Llama-2-7b-chat-hf",
    "tiiuae/falcon-7b-instruct",
    "ibm-granite/granite-3.1-8b-instruct",
    "someone/Qwen2.5-14B-Instruct",
    "other/Qwen2.5-14B-Instruct",
]
ARENA = [
    "Meta-Llama-3.1-8B-Instruct",
    "Meta-Llama-3.1-405B-Instruct-bf16",
    "Meta-Llama-3.1-405B-Instruct-fp8",
    "Llama-3.1-Tulu-3-8B",
    "Gemma-2-9B-it",
    "Gemma-3-27B-it",
    "Qwen2.5-72B-Instruct",
    "Mixtral-8x7B-Instruct-v0.1",
    "GPT-4o-2024-05-13",
    "Phi-4",
]

MATCHES = [
    # (local name as a backend lists it, published name it must pair with)
    ("qwen2.5:7b-instruct-q4_K_M", "Qwen/Qwen2.5-7B-Instruct"),
    ("qwen2.5:7b", "Qwen/Qwen2.5-7B-Instruct"),  # Ollama's plain tags are instruction-tuned
    ("qwen2.5:72b-instruct-q8_0", "Qwen/Qwen2.5-72B-Instruct"),
    ("qwen2.5:0.5b", "Qwen/Qwen2.5-0.5B-Instruct"),
    ("qwen2.5-coder:7b", "Qwen/Qwen2.5-Coder-7B-Instruct"),
    ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "Qwen/Qwen2.5-7B-Instruct"),
    ("hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF:Q4_K_M", "Qwen/Qwen2.5-7B-Instruct"),
    ("ollama/qwen2.5:7b", "Qwen/Qwen2.5-7B-Instruct"),  # a catalog id with its backend in front
    ("llama3.1:8b", "meta-llama/Llama-3.1-8B-Instruct"),
    ("llama3.1:8b-instruct-fp16", "meta-llama/Llama-3.1-8B-Instruct"),
    ("llama3.1:8b-text-q4_0", "meta-llama/Llama-3.1-8B"),
    ("llama3.1:70b", "meta-llama/Llama-3.1-70B-Instruct"),
    ("llama3.2:3b", "meta-llama/Llama-3.2-3B-Instruct"),
    ("llama3:8b", "meta-llama/Meta-Llama-3-8B-Instruct"),
    ("Meta-Llama-3.1-8B-Instruct-Q4_K_M", "meta-llama/Llama-3.1-8B-Instruct"),
    ("gemma2:9b", "google/gemma-2-9b-it"),
    ("gemma-2-9b-it-Q6_K_L", "google/gemma-2-9b-it"),
    ("gemma-3-270m-q4_k_m", "google/gemma-3-270m-it"),
    ("gemma3:270m", "google/gemma-3-270m-it"),
    ("mixtral-8x7b-instruct-v0.1", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    ("mixtral:8x7b", "mistralai/Mixtral-8x7B-Instruct-v0.1"),
    ("mistral:7b-instruct-v0.3-q4_K_M", "mistralai/Mistral-7B-Instruct-v0.3"),
    ("Mistral-7B-Instruct-v0.2.Q5_K_M.gguf", "mistralai/Mistral-7B-Instruct-v0.2"),
    ("phi4:14b", "microsoft/phi-4"),
    ("phi4:latest", "microsoft/phi-4"),
    ("phi3:3.8b-mini-4k-instruct-q4_K_M", "microsoft/Phi-3-mini-4k-instruct"),
    ("smollm2:1.7b", "HuggingFaceTB/SmolLM2-1.7B-Instruct"),
    ("yi:34b-chat", "01-ai/Yi-34B-Chat"),
    ("yi:34b", "01-ai/Yi-34B-Chat"),  # Yi 1.0: no version in the name; Yi-1.5 is another model
    ("codellama:7b-instruct", "codellama/CodeLlama-7b-Instruct-hf"),
    ("llama2:7b-chat", "meta-llama/Llama-2-7b-chat-hf"),
    ("falcon:7b-instruct", "tiiuae/falcon-7b-instruct"),
    ("Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"),
]
ARENA_MATCHES = [
    ("llama3.1:8b", "Meta-Llama-3.1-8B-Instruct"),
    ("meta-llama/Llama-3.1-8B-Instruct", "Meta-Llama-3.1-8B-Instruct"),
    ("gemma2:9b-instruct-q4_K_M", "Gemma-2-9B-it"),
    ("qwen2.5:72b", "Qwen2.5-72B-Instruct"),
    ("mixtral:8x7b-instruct-v0.1-q4_0", "Mixtral-8x7B-Instruct-v0.1"),
    ("llama3.1:405b", "Meta-Llama-3.1-405B-Instruct-bf16"),  # two listings of one model: the first
    ("phi4:14b", "Phi-4"),
]
NO_MATCH = [
    # (local name, why it must not pair with anything published)
    ("mistral:7b", "v0.1, v0.2 and v0.3 are all published: the name does not say which"),
    ("llama3.1:latest", "no size, and no parameter count to stand in for it"),
    ("llama3.1:405b", "not published in this list"),
    ("qwen2.5:14b", "only two unofficial uploads, from different organisations"),
    ("qwen2.5:3b", "no 3B Qwen2.5 is published"),
    ("qwen2.5-math:7b", "the math model is not the instruct model"),
    ("deepseek-r1:7b", "a distillation named after two families: needs an alias"),
    ("phi3:3.8b", "mini-4k or mini-128k: the name does not say"),
    ("granite3.1-dense:8b", "the published name has no 'dense'"),
    ("gemma-2-9b-Q4_K_M", "a GGUF name without -it: base and instruct are both published"),
    ("gpt-4o", "no such family published here"),
    ("nomic-embed-text:latest", "an embedding model"),
    ("", "empty"),
    ("7b", "no family word"),
]


@pytest.mark.parametrize(("local", "published"), MATCHES)
def test_matcher_pairs_local_names_with_leaderboard_names(local, published):
    assert ModelMatcher(PUBLISHED).match(local) == published


@pytest.mark.parametrize(("local", "published"), ARENA_MATCHES)
def test_matcher_pairs_local_names_with_arena_names(local, published):
    assert ModelMatcher(ARENA).match(local) == published


@pytest.mark.parametrize(("local", "why"), NO_MATCH)
def test_matcher_says_none_when_unsure(local, why):
    assert ModelMatcher(PUBLISHED).match(local) is None, why


def test_matcher_does_not_take_a_fine_tune_for_its_base_model():
    assert (
        ModelMatcher(["Llama-3.1-Tulu-3-8B", "mlabonne/Meta-Llama-3.1-8B-Instruct-abliterated"]).match("llama3.1:8b")
        is None
    )
    assert ModelMatcher(["Meta-Llama-3.1-8B-Instruct"]).match("llama3.1:8b-text") is None


def test_matcher_uses_the_parameter_count_when_the_name_has_no_size():
    matcher = ModelMatcher(PUBLISHED)
    assert matcher.match("llama3.1:latest", parameters=8_030_261_248) == "meta-llama/Llama-3.1-8B-Instruct"
    assert matcher.match("llama3.1:latest", parameters=70_553_706_496) == "meta-llama/Llama-3.1-70B-Instruct"
    assert matcher.match("llama3.1:latest", parameters=30_000_000_000) is None


def test_matcher_prefers_the_official_organisation():
    assert ModelMatcher(["unsloth/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-7B-Instruct"]).match("qwen2.5:7b") == (
        "Qwen/Qwen2.5-7B-Instruct"
    )
    assert ModelMatcher(["unsloth/Qwen2.5-7B-Instruct"]).match("qwen2.5:7b") == "unsloth/Qwen2.5-7B-Instruct"


def test_aliases_pair_what_the_matcher_cannot_and_serve_every_source():
    aliases = {"deepseek-r1:7b": "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", "house-model": "Qwen/Qwen2.5-72B-Instruct"}
    leaderboard, arena_names = ModelMatcher(PUBLISHED), ModelMatcher(ARENA)
    assert match_model("deepseek-r1:7b", leaderboard, aliases=aliases) == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert match_model("house-model", leaderboard, aliases=aliases) == "Qwen/Qwen2.5-72B-Instruct"
    assert match_model("house-model", arena_names, aliases=aliases) == "Qwen2.5-72B-Instruct"
    assert match_model("deepseek-r1:7b", arena_names, aliases=aliases) is None
    assert match_model("qwen2.5:7b", leaderboard, aliases=aliases) == "Qwen/Qwen2.5-7B-Instruct"


def test_parse_reads_family_version_size_variant_and_revision():
    key = parse("mistral:7b-instruct-v0.3-q4_K_M")
    assert (key.family, key.version, key.size, key.instruct, key.revision) == ("mistral", "", "7b", True, "0.3")
    key = parse("nvidia/Llama-3_1-Nemotron-51B-Instruct")
    assert (key.family, key.version, key.size, key.extras, key.org) == (
        "llama",
        "3.1",
        "51b",
        frozenset({"nemotron"}),
        "nvidia",
    )
    assert parse("gemma-3-270m-q4_k_m").instruct is None
    assert parse("llama3.2:3b-text-q8_0").instruct is False


# -- merging --------------------------------------------------------------------------------------------------


def test_merge_takes_the_first_non_null_value_and_keeps_its_source():
    records = [
        BenchmarkRecord("lmsys_arena", "Meta-Llama-3.1-8B-Instruct", "arena_elo", 1192.0, NOW),
        BenchmarkRecord("hf_leaderboard", "meta-llama/Llama-3.1-8B-Instruct", "ifeval", None, NOW),
        BenchmarkRecord("hf_leaderboard", "meta-llama/Llama-3.1-8B-Instruct", "mmlu_pro", 31.09, NOW),
        BenchmarkRecord("house", "llama3.1:8b", "ifeval", 51.0, NOW),
        BenchmarkRecord("house", "llama3.1:8b", "mmlu_pro", 33.0, NOW),
    ]
    merged = merge(records, order=["hf_leaderboard", "lmsys_arena"])
    assert {name: (f.value, f.source) for name, f in merged.items()} == {
        "arena_elo": (1192.0, "lmsys_arena"),
        "ifeval": (51.0, "house"),  # the leaderboard left it blank
        "mmlu_pro": (31.09, "hf_leaderboard"),  # both have it: the preferred source wins
    }
    assert merged["mmlu_pro"].source_model == "meta-llama/Llama-3.1-8B-Instruct"
    assert merge(records, order=["house"])["mmlu_pro"].value == 33.0


def test_index_merges_the_sources_for_a_local_model():
    records = [
        BenchmarkRecord("hf_leaderboard", "meta-llama/Llama-3.1-8B-Instruct", "mmlu_pro", 31.09, NOW),
        BenchmarkRecord("hf_leaderboard", "meta-llama/Llama-3.1-8B", "mmlu_pro", 24.95, NOW),
        BenchmarkRecord("lmsys_arena", "Meta-Llama-3.1-8B-Instruct", "arena_elo", 1192.0, NOW),
    ]
    index = BenchmarkIndex(records, order=["lmsys_arena", "hf_leaderboard"])
    found = index.lookup("llama3.1:8b-instruct-q4_K_M")
    assert found.matches == {
        "lmsys_arena": "Meta-Llama-3.1-8B-Instruct",
        "hf_leaderboard": "meta-llama/Llama-3.1-8B-Instruct",
    }
    assert {name: (f.value, f.source) for name, f in found.benchmarks.items()} == {
        "arena_elo": (1192.0, "lmsys_arena"),
        "mmlu_pro": (31.09, "hf_leaderboard"),
    }
    assert index.lookup("phi4:14b").benchmarks == {}


# -- the sync, on SQLite and PostgreSQL ---------------------------------------------------------------------


class Poisoned:
    """A provider whose records are a mix of good ones and hostile ones."""

    name = "poisoned"

    async def fetch(self) -> list[Any]:
        return [
            BenchmarkRecord("poisoned", "x'); DROP TABLE benchmark_records; --", "mmlu_pro", 12.5, None),
            {"source": "poisoned", "model": "a/b", "benchmark": "bbh", "value": 30.0, "id": 1, "value = 0 --": 1},
            {"source": "poisoned", "model": "a/b", "benchmark": "gpqa", "value": 7.5},
            BenchmarkRecord("hf_leaderboard", "a/b", "ifeval", 99.0, None),  # another source's name
        ]


class Failing:
    name = "failing"

    async def fetch(self) -> list[BenchmarkRecord]:
        raise SourceUnavailable("https://example.invalid/rows failed after 4 attempts: ClientConnectorError")


class Hanging:
    name = "hanging"

    async def fetch(self) -> list[BenchmarkRecord]:
        await asyncio.sleep(30)
        return []


async def started(url: str) -> Database:
    database = Database(url)
    await database.start()
    return database


async def stored(database: Database, source: str | None = None) -> dict[tuple[str, str], float]:
    async with database.session() as session:
        query = select(BenchmarkRecordRow)
        if source is not None:
            query = query.where(BenchmarkRecordRow.source == source)
        rows = (await session.execute(query)).scalars().all()
    return {(r.model, r.benchmark): r.value for r in rows}


def settings(**values: Any) -> BenchmarkSettings:
    return BenchmarkSettings(**values)


@pytest.mark.anyio
async def test_sync_stores_the_replayed_leaderboards(database_url, replay, state):
    database = await started(database_url)
    try:
        providers = {"hf_leaderboard": hf(replay), "lmsys_arena": arena(replay)}
        job = BenchmarkSync(providers, database, settings())
        wait = await job.run_due()
        assert 86000 < wait <= 86400
        hf_rows, arena_rows = await stored(database, "hf_leaderboard"), await stored(database, "lmsys_arena")
        assert len(hf_rows) == 230 * 7
        assert hf_rows[("Qwen/Qwen2.5-7B-Instruct", "mmlu_pro")] == 36.52
        assert arena_rows[("Meta-Llama-3.1-8B-Instruct", "arena_elo")] == 1192.0
        report = {s["source"]: s for s in await job.statuses()}
        assert report["hf_leaderboard"]["ok"] is True and report["hf_leaderboard"]["records"] == 230 * 7
        assert report["lmsys_arena"]["ok"] is True and report["lmsys_arena"]["records"] == 10
        assert report["hf_leaderboard"]["error"] is None and not report["hf_leaderboard"]["running"]

        # Not due again: nothing is fetched.
        requests = len(state.requests)
        await job.run_due()
        assert len(state.requests) == requests

        # A forced sync replaces each source's publication in one transaction: updated, added, removed.
        async with database.session() as session:
            before = await session.scalar(
                select(BenchmarkRecordRow.id)
                .where(BenchmarkRecordRow.model == "Qwen/Qwen2.5-7B-Instruct")
                .where(BenchmarkRecordRow.benchmark == "mmlu_pro")
            )
        state.rows = [r for r in state.rows if r["fullname"] != "google/gemma-2-9b-it"]
        state.rows[0] = {**state.rows[0], "MMLU-PRO": 40.0}
        state.arena_body += "200,180,Qwen2.5-7B-Instruct,1150,+5/-5,8000,Alibaba,Apache 2.0,,https://x\n"
        await job.run_due(force=True)
        hf_rows, arena_rows = await stored(database, "hf_leaderboard"), await stored(database, "lmsys_arena")
        assert hf_rows[("Qwen/Qwen2.5-7B-Instruct", "mmlu_pro")] == 40.0
        assert ("google/gemma-2-9b-it", "ifeval") not in hf_rows and len(hf_rows) == 229 * 7
        assert arena_rows[("Qwen2.5-7B-Instruct", "arena_elo")] == 1150.0
        async with database.session() as session:
            after = await session.scalar(
                select(BenchmarkRecordRow.id)
                .where(BenchmarkRecordRow.model == "Qwen/Qwen2.5-7B-Instruct")
                .where(BenchmarkRecordRow.benchmark == "mmlu_pro")
            )
        assert after == before  # upserted in place
    finally:
        await database.close()


@pytest.mark.anyio
async def test_poisoned_payload_is_refused_field_by_field(database_url, replay, state):
    """A leaderboard page with wrong types and extra keys: the bad fields are refused with their reasons, the
    good fields of the same rows are stored, and nothing of the payload becomes SQL."""
    poisoned = leaderboard_row(
        "evil/Poison-7B-Instruct", "bfloat16", "chat", 7.0, "Qwen2ForCausalLM", (75.0, 31.2, 10.0, 5.0, 8.0, 30.5)
    )
    poisoned.update(
        {
            "IFEval": "75.1; DROP TABLE benchmark_records",
            "MATH Lvl 5": {"$gt": 0},
            "GPQA": True,
            "MUSR": 1000.0,
            "Average ⬆️": None,
            "source": "lmsys_arena",
            "benchmark": "arena_elo",
            "value); DELETE FROM sync_status; --": 1,
        }
    )
    injected = leaderboard_row(
        "x'); DROP TABLE benchmark_records; --", "bfloat16", "chat", 7.0, "X", (1.0, 2.0, 3.0, 4.0, 5.0, 6.0)
    )
    nameless = {**leaderboard_row("", "bfloat16", "chat", 7.0, "X", (1.0, 2.0, 3.0, 4.0, 5.0, 6.0))}
    nameless["fullname"] = ["not", "a", "name"]
    published = [*state.rows[:3], poisoned, injected, nameless]
    entries = [{"row_idx": i, "row": row, "truncated_cells": []} for i, row in enumerate(published)]
    state.raw_pages[0] = [*entries, "not an object"]
    state.rows = [*published, {}]  # num_rows_total: 7
    database = await started(database_url)
    try:
        job = BenchmarkSync({"hf_leaderboard": hf(replay), "poisoned": Poisoned()}, database, settings())
        await job.run_due()
        rows = await stored(database, "hf_leaderboard")
        assert {b: v for (m, b), v in rows.items() if m == "evil/Poison-7B-Instruct"} == {"bbh": 31.2, "mmlu_pro": 30.5}
        assert rows[("x'); DROP TABLE benchmark_records; --", "musr")] == 5.0  # a name like any other
        assert len(rows) == 3 * 7 + 2 + 7
        report = {s["source"]: s for s in await job.statuses()}
        error = report["hf_leaderboard"]["error"]
        assert report["hf_leaderboard"]["ok"] is True and report["hf_leaderboard"]["records"] == len(rows)
        assert error.splitlines()[0] == "refused 11 field(s); stored 30"
        poison = "('evil/Poison-7B-Instruct'): value:"
        assert f"record 22 {poison} expected a number, got str '75.1; DROP TABLE benchmark_records'" in error
        assert f"record 24 {poison} expected a number, got dict {{'$gt': 0}}" in error
        assert f"record 25 {poison} expected a number, got bool True" in error
        assert f"record 26 {poison} 1000.0 is outside musr's range 0..100" in error
        assert "record 35: model: expected a string, got list" in error
        assert await stored(database, "lmsys_arena") == {}  # the row's "source" key was never read

        assert await stored(database, "poisoned") == {
            ("x'); DROP TABLE benchmark_records; --", "mmlu_pro"): 12.5,
            ("a/b", "gpqa"): 7.5,
        }
        error = report["poisoned"]["error"]
        assert "record 1 ('a/b'): 'id': unknown field" in error
        assert "record 1 ('a/b'): 'value = 0 --': unknown field" in error
        assert "record 3 ('a/b'): source: 'hf_leaderboard' is not this provider" in error
        async with database.session() as session:
            assert await session.scalar(select(func.count()).select_from(SyncStatusRow)) == 2
    finally:
        await database.close()


@pytest.mark.anyio
async def test_one_failing_source_never_blocks_the_others(database_url, replay, state):
    state.hf_down = True
    database = await started(database_url)
    try:
        providers = {"hf_leaderboard": hf(replay, retries=1), "failing": Failing(), "lmsys_arena": arena(replay)}
        job = BenchmarkSync(providers, database, settings(retry_interval=120))
        wait = await job.run_due()
        assert 100 < wait <= 120  # the failed sources are tried again after retry_interval
        report = {s["source"]: s for s in await job.statuses()}
        assert report["lmsys_arena"]["ok"] is True and report["lmsys_arena"]["records"] == 10
        assert report["hf_leaderboard"]["ok"] is False and report["hf_leaderboard"]["records"] == 0
        assert "failed after 2 attempts: answered 503" in report["hf_leaderboard"]["error"]
        assert report["failing"]["error"].startswith("SourceUnavailable: https://example.invalid/rows failed")
        assert len(await stored(database, "lmsys_arena")) == 10
    finally:
        await database.close()


@pytest.mark.anyio
async def test_a_source_that_hangs_fails_after_fetch_timeout(database_url, replay):
    database = await started(database_url)
    try:
        job = BenchmarkSync({"hanging": Hanging(), "lmsys_arena": arena(replay)}, database, settings(fetch_timeout=0.5))
        started_at = time.monotonic()
        await job.run_due()
        assert time.monotonic() - started_at < 5
        report = {s["source"]: s for s in await job.statuses()}
        assert report["hanging"]["error"] == "fetch took longer than 0.5 s"
        assert report["lmsys_arena"]["ok"] is True
    finally:
        await database.close()


@pytest.mark.anyio
async def test_a_source_with_nothing_acceptable_keeps_its_records(database_url, replay, state):
    database = await started(database_url)
    try:
        job = BenchmarkSync({"lmsys_arena": arena(replay)}, database, settings())
        await job.run_due()
        state.arena_body = "model,arena_score\nGemma-2-9B-it,high\nPhi-4,\n"
        await job.run_due(force=True)
        (report,) = await job.statuses()
        assert report["ok"] is False
        assert report["error"].splitlines()[:2] == [
            "NothingAcceptable: no acceptable record (1 refused)",
            "refused 1 field(s); stored 0",
        ]
        assert len(await stored(database, "lmsys_arena")) == 10
    finally:
        await database.close()


@pytest.mark.anyio
async def test_only_the_selected_sources_are_synced(database_url, replay, state, caplog):
    database = await started(database_url)
    try:
        providers = {"hf_leaderboard": hf(replay), "lmsys_arena": arena(replay)}
        job = BenchmarkSync(providers, database, settings(sources=["lmsys_arena", "openllm_v1"]))
        await job.start()
        assert "benchmarks.sources names openllm_v1: no such provider registered" in caplog.text
        deadline = time.monotonic() + 10
        while not await stored(database, "lmsys_arena"):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        await job.close()
        assert not any(r.startswith("/rows") for r in state.requests)
        report = {s["source"]: s for s in await job.statuses()}
        assert report["openllm_v1"]["registered"] is False and report["openllm_v1"]["ok"] is None
        assert [s for s in report if report[s]["selected"]] == ["lmsys_arena"]
    finally:
        await database.close()


@pytest.mark.anyio
async def test_one_replica_syncs_at_a_time_on_postgresql(postgres_url, replay, state):
    database = await started(postgres_url)
    try:
        job = BenchmarkSync({"lmsys_arena": arena(replay)}, database, settings())
        async with database.engine.connect() as other_replica:
            await other_replica.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SYNC_LOCK_ID})
            await other_replica.commit()
            assert await job.run_due() == 300.0
            assert state.requests == []
            assert [s["started_at"] for s in await job.statuses()] == [None]
            await other_replica.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SYNC_LOCK_ID})
            await other_replica.commit()
        await job.run_due()
        assert len(await stored(database, "lmsys_arena")) == 10
        async with database.engine.connect() as conn:  # the job released its lock
            assert (await conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": SYNC_LOCK_ID})).scalar()
    finally:
        await database.close()


# -- the gateway and its admin endpoints ------------------------------------------------------------------------

CATALOG = [
    {"name": "qwen2.5:7b-instruct-q4_K_M", "parameters": 7_615_616_512},
    {"name": "llama3.1:latest", "parameters": 8_030_261_248},
    {"name": "gemma2:9b"},
    {"name": "house-model"},
]


def app_config(url: str, **benchmarks: Any) -> dict[str, Any]:
    return {
        "plugins": {
            "hf_leaderboard": {"base_url": url, "retry_backoff": 0.01, "retries": 1},
            "lmsys_arena": {"url": url + ARENA_LATEST, "retry_backoff": 0.01, "retries": 1},
            "fake": {"models": CATALOG},
        },
        "benchmarks": benchmarks,
    }


def wait_for_syncs(client: TestClient, count: int = 2) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + 20
    while True:
        response = client.get("/admin/benchmarks/status", headers=ADMIN)
        assert response.status_code == 200, response.text
        report = {s["source"]: s for s in response.json()["sources"]}
        if sum(1 for s in report.values() if s["finished_at"] and not s["running"]) >= count:
            return report
        assert time.monotonic() < deadline, report
        time.sleep(0.05)


def test_sync_starts_with_the_gateway_without_delaying_readiness(tmp_path, replay, state):
    state.stall_next, state.stall_seconds = 1, 1.5  # the first leaderboard page takes a while
    app = build_app(tmp_path, app_config(replay), [FAKE_PLUGIN])
    with TestClient(app) as client:
        deadline = time.monotonic() + 1.0
        while True:  # the gateway is up while the first page is still on its way
            response = client.get("/admin/benchmarks/status", headers=ADMIN)
            early = {s["source"]: s for s in response.json()["sources"]}
            if early["hf_leaderboard"]["running"]:
                break
            assert time.monotonic() < deadline, early
            time.sleep(0.02)
        assert early["hf_leaderboard"]["finished_at"] is None
        assert client.get("/readyz").status_code == 200
        report = wait_for_syncs(client)
    assert report["hf_leaderboard"]["ok"] is True and report["hf_leaderboard"]["records"] == 230 * 7
    assert report["hf_leaderboard"]["stored"] == 230 * 7
    assert report["lmsys_arena"]["ok"] is True and report["lmsys_arena"]["records"] == 10
    next_sync = dt.datetime.fromisoformat(report["lmsys_arena"]["next_sync_at"])
    finished = dt.datetime.fromisoformat(report["lmsys_arena"]["finished_at"])
    assert next_sync - finished == dt.timedelta(days=1)


def test_status_endpoint_shows_a_failing_source_beside_a_working_one(tmp_path, replay, state):
    state.hf_down = True
    app = build_app(tmp_path, app_config(replay), [FAKE_PLUGIN])
    with TestClient(app) as client:
        assert client.get("/admin/benchmarks/status").status_code == 401
        report = wait_for_syncs(client)
    assert report["hf_leaderboard"]["ok"] is False
    assert "answered 503" in report["hf_leaderboard"]["error"]
    assert report["lmsys_arena"]["ok"] is True and report["lmsys_arena"]["stored"] == 10


def test_benchmarks_endpoint_merges_the_sources_per_catalog_model(tmp_path, replay):
    config = app_config(
        replay, aliases={"house-model": "Qwen/Qwen2.5-72B-Instruct"}, sources=["lmsys_arena", "hf_leaderboard"]
    )
    app = build_app(tmp_path, config, [FAKE_PLUGIN])
    with TestClient(app) as client:
        wait_for_syncs(client)
        assert client.get("/admin/benchmarks").status_code == 401
        body = client.get("/admin/benchmarks", headers=ADMIN).json()
        one = client.get("/admin/benchmarks", params={"model": "mixtral:8x7b"}, headers=ADMIN).json()
    assert body["sources"] == ["lmsys_arena", "hf_leaderboard"]
    models = {m["model"]: m for m in body["models"]}
    assert set(models) == {c["name"] for c in CATALOG}
    qwen = models["qwen2.5:7b-instruct-q4_K_M"]
    assert qwen["matches"] == {"lmsys_arena": None, "hf_leaderboard": "Qwen/Qwen2.5-7B-Instruct"}
    assert qwen["benchmarks"]["mmlu_pro"]["value"] == 36.52
    assert qwen["benchmarks"]["mmlu_pro"]["source"] == "hf_leaderboard"
    llama = models["llama3.1:latest"]  # no size in the name: the catalog's parameter count decides
    assert llama["matches"] == {
        "lmsys_arena": "Meta-Llama-3.1-8B-Instruct",
        "hf_leaderboard": "meta-llama/Llama-3.1-8B-Instruct",
    }
    assert llama["benchmarks"]["arena_elo"] == {
        "value": 1192.0,
        "source": "lmsys_arena",
        "source_model": "Meta-Llama-3.1-8B-Instruct",
        "fetched_at": llama["benchmarks"]["arena_elo"]["fetched_at"],
    }
    assert llama["benchmarks"]["ifeval"]["source"] == "hf_leaderboard"
    gemma = models["gemma2:9b"]
    assert gemma["matches"] == {"lmsys_arena": "Gemma-2-9B-it", "hf_leaderboard": "google/gemma-2-9b-it"}
    house = models["house-model"]
    assert house["matches"] == {"lmsys_arena": "Qwen2.5-72B-Instruct", "hf_leaderboard": "Qwen/Qwen2.5-72B-Instruct"}
    assert house["benchmarks"]["arena_elo"]["value"] == 1272.0
    assert one["models"][0]["matches"] == {
        "lmsys_arena": "Mixtral-8x7B-Instruct-v0.1",
        "hf_leaderboard": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    }
