"""LLM dispatcher mode (routing.mode = "llm"): a small model the gateway serves picks among the best-ranked
candidates; when it fails, is slow or answers nonsense, the scorer ranking decides, and the explanation says which
happened. The dispatcher model is an OpenAI-shaped replay server (a valid choice, garbage, slow, failing), then the
real llama.cpp server running the bundled Gemma 3 270M."""

from __future__ import annotations

import contextlib
import time

import httpx
import openai
import pytest

from routerd.errors import ConfigError
from routerd.routing.llm_dispatcher import parse_choice
from routerd.testing import TEST_ADMIN_KEY, build_app
from servers import ReplayState, replay_server, running_gateway

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
CANDIDATES = ["tiny-0.5b", "mid-3b", "big-14b", "large-32b"]
CODING = (
    "Write a Python function that merges overlapping intervals. It must run in O(n log n), handle "
    "edge cases such as empty input, and include unit tests. Optimize for memory."
)


@contextlib.contextmanager
def gateway(tmp_path, *, dispatcher_url: str, dispatcher_model: str, timeout: float = 1.0):
    with replay_server(ReplayState(models=CANDIDATES)) as url:
        config = {
            "routing": {"mode": "llm", "dispatcher_model": dispatcher_model, "dispatcher_timeout": timeout},
            "plugins": {
                "openai": {"base_url": url},
                "llamacpp": {"url": dispatcher_url},
                "diversity": {"enabled": False},
            },
        }
        app = build_app(tmp_path, config)
        with running_gateway(app) as base:
            yield base, openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)


@contextlib.contextmanager
def replayed_dispatcher(tmp_path, reply: str = "big-14b", *, behaviour: str = "ok", delay: float = 0.0):
    state = ReplayState(
        models=["router-1b"], reply=reply, behaviour={"router-1b": behaviour}, delay={"router-1b": delay}
    )
    with replay_server(state) as url, gateway(tmp_path, dispatcher_url=url, dispatcher_model="router-1b") as running:
        yield (*running, state)


def ask(client, text: str = CODING, **extra):
    raw = client.chat.completions.with_raw_response.create(
        model="routerd", messages=[{"role": "user", "content": text}], **extra
    )
    return raw.headers["x-routerd-model"], raw


def explanation(base: str, raw) -> dict:
    return httpx.get(f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN).json()


def test_a_valid_choice_decides_and_the_explanation_says_so(tmp_path):
    with replayed_dispatcher(tmp_path, reply="big-14b") as (base, client, state):
        model, raw = ask(client)
        explained = explanation(base, raw)
        streamed = client.chat.completions.create(
            model="routerd", messages=[{"role": "user", "content": CODING}], stream=True
        )
        streamed_model = next(iter(streamed)).model
    assert model == "big-14b"  # the scorers alone pick large-32b
    assert raw.headers["x-routerd-dispatcher"] == "chosen by router-1b"
    assert raw.headers["x-routerd-runner-up"] == "large-32b"
    assert explained["dispatcher"]["outcome"] == "chosen" and explained["dispatcher"]["choice"] == "big-14b"
    assert explained["dispatcher"]["model"] == "router-1b" and explained["dispatcher"]["answer"] == "big-14b"
    assert streamed_model == "big-14b"
    asked = state.requests[0]
    prompt = asked["messages"][0]["content"]
    assert asked["max_tokens"] == 24 and asked["temperature"] == 0
    assert "Request (hard coding):" in prompt and "merges overlapping intervals" in prompt
    assert "1. large-32b: 32.0B parameters; quality " in prompt  # the ranking, best first, with summaries
    assert "answers in" in prompt or "expected (not measured yet)" in prompt  # the speed scorer's reason


def test_garbage_leaves_the_decision_to_the_scorer_ranking(tmp_path):
    with replayed_dispatcher(tmp_path, reply="I like turtles, and also big and large models.") as (base, client, _):
        model, raw = ask(client)
        explained = explanation(base, raw)
    assert model == "large-32b"
    assert raw.headers["x-routerd-dispatcher"] == "invalid (router-1b): scorer ranking"
    assert explained["dispatcher"]["outcome"] == "invalid"
    assert explained["dispatcher"]["answer"].startswith("I like turtles")
    assert explained["dispatcher"]["choice"] is None


def test_a_slow_dispatcher_times_out_and_the_ranking_decides(tmp_path):
    with replayed_dispatcher(tmp_path, delay=3.0) as (base, client, _):
        started = time.monotonic()
        model, raw = ask(client)
        elapsed = time.monotonic() - started
        explained = explanation(base, raw)
    assert model == "large-32b"
    assert raw.headers["x-routerd-dispatcher"] == "timeout (router-1b): scorer ranking"
    # the 1 s timeout (the event loop may fire it a clock tick early: 999.6 ms was seen), not the 3 s answer
    assert explained["dispatcher"]["outcome"] == "timeout" and 990 <= explained["dispatcher"]["ms"] < 2500
    assert elapsed < 2.5  # the dispatcher_timeout of 1 s, not the model's 3 s


def test_a_failing_dispatcher_leaves_the_decision_to_the_ranking(tmp_path):
    with replayed_dispatcher(tmp_path, behaviour="error500") as (base, client, _):
        model, raw = ask(client)
        explained = explanation(base, raw)
    assert model == "large-32b"
    assert explained["dispatcher"]["outcome"] == "failed" and "500" in explained["dispatcher"]["detail"]


def test_the_real_gemma_270m_as_dispatcher_always_ends_with_a_valid_model(tmp_path, llama_server):
    with gateway(tmp_path, dispatcher_url=llama_server, dispatcher_model="gemma-3-270m", timeout=30) as running:
        base, client = running
        outcomes = []
        for text in (CODING, "hi!", "What is the capital of France? Answer in one word."):
            model, raw = ask(client, text, max_tokens=8)
            explained = explanation(base, raw)
            assert model in [*CANDIDATES, "gemma-3-270m"]
            assert model == explained["chosen_model"]
            verdict = explained["dispatcher"]
            assert verdict["model"] == "gemma-3-270m"
            assert verdict["outcome"] in ("chosen", "invalid")
            assert (verdict["outcome"] == "chosen") == (verdict["choice"] is not None)
            if verdict["outcome"] == "chosen":
                assert model == verdict["choice"]
            else:
                assert model == explained["candidates"][0]["model"]  # the scorer ranking's best
            outcomes.append(verdict["outcome"])
    print("gemma-3-270m as dispatcher:", outcomes)


@pytest.mark.parametrize(
    ("answer", "choice"),
    [
        ("big-14b", "big-14b"),
        ("  `Big-14B`.\n", "big-14b"),
        ("Model: large-32b", "large-32b"),
        ("2", "mid-3b"),
        ("I would pick **large-32b** for this.", "large-32b"),
        ("big-14b or large-32b", None),  # two names: no choice
        ("a model with 14 billion parameters", None),
        ("", None),
        ("7", None),
    ],
)
def test_parse_choice(answer, choice):
    assert parse_choice(answer, ["tiny-0.5b", "mid-3b", "big-14b", "large-32b"]) == choice


def test_parse_choice_prefers_the_longest_name_that_appears():
    assert parse_choice("qwen2.5-7b-instruct", ["qwen2.5-7b", "qwen2.5-7b-instruct"]) == "qwen2.5-7b-instruct"


def test_llm_mode_without_a_dispatcher_model_stops_start_up(tmp_path):
    with pytest.raises(ConfigError, match=r"routing\.dispatcher_model"):
        build_app(tmp_path, {"routing": {"mode": "llm"}})
