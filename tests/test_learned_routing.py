"""Routing with the learned and benchmark scorers on, as a new user meets it: models of different sizes behind an
OpenAI-compatible server, a data file of known outcomes (four models with different strengths per kind of
prompt), and public benchmark figures replayed as the two sources publish them."""

from __future__ import annotations

import contextlib
import re
import time

import httpx
import openai
import pytest

import routing_data
from leaderboard_replay import ARENA_LATEST, LeaderboardState, leaderboard_server
from routerd.testing import TEST_ADMIN_KEY, build_app
from servers import ReplayState, replay_server, running_gateway

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
# the data file's model names -> the catalog's
NAMES = {
    "tiny": "gemma-3-270m-it",
    "small": "llama-3.2-3b-instruct",
    "medium": "qwen2.5-7b-instruct",
    "large": "qwen2.5-72b-instruct",
}
MIXTRAL = "mixtral-8x7b-instruct-v0.1"  # in the catalog and on the leaderboards, not in the data file
DELAYS = {NAMES["tiny"]: 0.005, NAMES["small"]: 0.02, NAMES["medium"]: 0.04, MIXTRAL: 0.08, NAMES["large"]: 0.15}
CODING = (
    "Write a Python function that merges overlapping intervals. It must handle edge cases, run in O(n log n) "
    "and include unit tests."
)
MATH = "Solve for x: 17x + 4 = 55. Then compute the integral of 3x^2 from 0 to 17. Prove it rigorously."


def scorer(app, name: str):
    return app.state.gateway.plugins.registry.scorers[name]


def wait_for(condition, what: str, seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def both_sources(benchmarks) -> bool:
    """Both syncs are in the benchmark scorer's tables (they finish in either order)."""
    found = benchmarks.tables.get("coding", {}).get(NAMES["large"])
    return found is not None and "hf_leaderboard" in found.reason and "lmsys_arena" in found.reason


@contextlib.contextmanager
def gateway(tmp_path, learned=None, **plugins):
    data = routing_data.write(tmp_path / "outcomes.jsonl", 400)
    models = [*NAMES.values(), MIXTRAL]
    state = ReplayState(models=models, delay=DELAYS)
    with replay_server(state) as url, leaderboard_server(LeaderboardState()) as board:
        config = {
            "plugins": {
                "openai": {"base_url": url},
                "hf_leaderboard": {"base_url": board, "retry_backoff": 0.01, "retries": 1},
                "lmsys_arena": {"url": board + ARENA_LATEST, "retry_backoff": 0.01, "retries": 1},
                "benchmarks": {"refresh_interval": 0.2},
                "learned": {"data": [str(data)], "model_names": NAMES, "embedder": "none", **(learned or {})},
                "diversity": {"enabled": False},
                # size-based latency estimates calibrated to the replay delays (tens of ms)
                "speed": {"ms_per_sqrt_billion": 20},
                **plugins,
            }
        }
        app = build_app(tmp_path, config)
        with running_gateway(app) as base:
            wait_for(lambda: scorer(app, "learned").trained is not None, "the learned model")
            wait_for(lambda: both_sources(scorer(app, "benchmarks")), "the benchmarks of both sources")
            yield base, openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0), app


def ask(client, text: str):
    raw = client.chat.completions.with_raw_response.create(
        model="routerd", messages=[{"role": "user", "content": text}]
    )
    return raw.headers["x-routerd-model"], raw


def test_hard_prompts_go_to_large_capable_models_and_greetings_to_small_fast_ones(tmp_path):
    with gateway(tmp_path) as (base, client, _app):
        greeting = ask(client, "hi!")[0]
        coding, raw = ask(client, CODING)
        maths = ask(client, MATH)[0]
        explained = httpx.get(f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN).json()
        runner_up = raw.headers["x-routerd-runner-up"]
    assert greeting == NAMES["tiny"]
    assert coding == NAMES["large"] and maths == NAMES["large"]
    assert runner_up == MIXTRAL  # the other model big enough for a hard coding prompt
    assert explained["features"]["category"] == "coding" and explained["features"]["difficulty"] == "hard"
    first = {c["model"]: c for c in explained["candidates"] if "contributions" in c}
    large = first[NAMES["large"]]["contributions"]
    assert re.fullmatch(r"predicted 0\.\d\d from 1\d\d prompts with known outcomes", large["learned"]["reason"])
    assert large["learned"]["score"] > first[NAMES["medium"]]["contributions"]["learned"]["score"] + 0.2
    assert large["benchmarks"]["reason"].startswith("coding: BBH 61.87 (#1), MMLU-Pro 51.4 (#1) of 230 models")
    assert "of 230 models on hf_leaderboard (as Qwen/Qwen2.5-72B-Instruct)" in large["benchmarks"]["reason"]
    assert "Arena rating 1272 (#5) of 10 models" in large["benchmarks"]["reason"]
    assert "on lmsys_arena (as Qwen2.5-72B-Instruct)" in large["benchmarks"]["reason"]
    assert "learned" not in first[MIXTRAL]["contributions"]  # no outcomes known for it: no opinion
    tiny = first[NAMES["tiny"]]["contributions"]
    assert tiny["size_fit"]["aspect"] == "multiplier"  # 0.27B for a hard coding prompt


def test_the_benchmark_scorer_has_no_opinion_on_simple_prompts_and_cites_maths_figures(tmp_path):
    with gateway(tmp_path) as (base, client, _app):
        _, greeting = ask(client, "hello")
        _, maths = ask(client, MATH)
        said = {
            name: httpx.get(f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN).json()
            for name, raw in (("greeting", greeting), ("maths", maths))
        }
    greeting_contributions = [c["contributions"] for c in said["greeting"]["candidates"] if "contributions" in c]
    assert all("benchmarks" not in c for c in greeting_contributions)
    maths_reasons = {
        c["model"]: c["contributions"]["benchmarks"]["reason"]
        for c in said["maths"]["candidates"]
        if "benchmarks" in c.get("contributions", {})
    }
    assert maths_reasons[NAMES["large"]].startswith("math: MATH lvl 5 59.82 (#1), GPQA 16.67 (#")


def test_negative_feedback_moves_later_prompts_of_that_kind_elsewhere(tmp_path):
    with gateway(tmp_path, learned={"retrain_after": 3}) as (base, client, app):
        learned = scorer(app, "learned")
        before = learned.trained
        assert ask(client, CODING)[0] == NAMES["large"]
        moved = None
        for _ in range(8):
            model, raw = ask(client, CODING)
            if model != NAMES["large"]:
                moved = model
                break
            decision = raw.headers["x-routerd-decision-id"]
            response = httpx.post(f"{base}/v1/feedback", json={"decision_id": decision, "rating": -1})
            assert response.status_code == 201, response.text
        wait_for(lambda: learned.trained is not before, "a retrained model")
        after = ask(client, CODING)[0]
        greeting = ask(client, "hi!")[0]
    assert moved == MIXTRAL and after == MIXTRAL
    assert greeting == NAMES["tiny"]  # feedback on coding answers says nothing about greetings


def test_the_learned_scorer_alone_learns_from_feedback_and_retrains(tmp_path):
    # no data file, no feedback scorer: what moves routing is the learned model trained on the ratings alone
    learned_settings = {"data": [], "min_outcomes": 4, "retrain_after": 2, "confidence_outcomes": 2}
    twins = ["twin-a-7b", "twin-b-7b"]  # alike in every way the other scorers see
    state = ReplayState(models=twins)
    with replay_server(state) as url:
        config = {
            "plugins": {
                "openai": {"base_url": url},
                "learned": {**learned_settings, "embedder": "none"},
                "feedback": {"enabled": False},
                "diversity": {"enabled": False},
                "speed": {"enabled": False},  # a measured model against one not yet measured: quality decides
            }
        }
        app = build_app(tmp_path, config)
        with running_gateway(app) as base:
            learned = scorer(app, "learned")
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            prompt = "Explain how a hash map handles collisions, with an example."
            first, _ = ask(client, prompt)
            other = twins[1] if first == twins[0] else twins[0]
            assert learned.trained is None  # nothing known: no opinion
            for rating, text in ((-1, prompt), (-1, prompt + " Be brief."), (-1, "Explain hash map collisions."),
                                 (-1, "How do hash maps resolve collisions?")):  # fmt: skip
                model, raw = ask(client, text)
                assert model == first
                decision = raw.headers["x-routerd-decision-id"]
                assert httpx.post(f"{base}/v1/feedback", json={"decision_id": decision, "rating": rating}).is_success
            wait_for(lambda: learned.trained is not None, "a model trained on the feedback")
            after, raw = ask(client, prompt)
            explained = httpx.get(
                f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN
            ).json()
    assert learned.trained.models == [first]
    assert after == other
    reasons = {c["model"]: c["contributions"] for c in explained["candidates"] if "contributions" in c}
    assert reasons[first]["learned"]["reason"] == (
        f"predicted {reasons[first]['learned']['score']:.2f} from 4 prompts with known outcomes"
    )
    assert reasons[first]["learned"]["score"] < 0.2
    assert "learned" not in reasons[other]


def test_one_learned_object_predicts_and_learns_and_judges_nothing(tmp_path, caplog):
    """The plugin registers its scorer as a scorer and as a learner (the same object, so what it learns is what it
    predicts from); it is no judge, and the kernel has nothing to adopt (no compatibility warning)."""
    app = build_app(tmp_path, {"plugins": {"learned": {"embedder": "none"}}})
    registry = app.state.gateway.plugins.registry
    learned = registry.scorers["learned"]
    assert registry.learners["learned"] is learned
    assert "learned" not in registry.judges and not hasattr(learned, "judge")
    assert registry.commands["eval"].name == "eval" and "routing" in registry.commands["eval"].commands
    assert "'learned'" not in caplog.text


@pytest.mark.parametrize("missing", ["data", "embedder"])
def test_bad_learned_settings_stop_start_up_naming_the_key(tmp_path, missing):
    from routerd.errors import ConfigError

    settings = {"data": [str(tmp_path / "nope.jsonl")]} if missing == "data" else {"embedder": "gateway"}
    with pytest.raises(ConfigError) as caught:
        build_app(tmp_path, {"plugins": {"learned": settings}})
    key = "plugins.learned.data.0" if missing == "data" else "plugins.learned.embedder"
    assert key in str(caught.value)
