"""The routing engine end to end: several models of different sizes, scorers with reasons,
explanation headers, the audit log, and feedback that changes later routing."""

from __future__ import annotations

import contextlib
import time

import httpx
import openai
import pytest

from routerd.testing import TEST_ADMIN_KEY, build_app
from servers import ReplayState, replay_server, running_gateway

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
CODING = (
    "Write a Python function that merges overlapping intervals. It must run in O(n log n), handle "
    "edge cases such as empty input, and include unit tests. Optimize for memory."
)


@contextlib.contextmanager
def gateway(tmp_path, models: list[str], **config):
    # bigger models answer more slowly, as they do
    state = ReplayState(models=models, delay={m: DELAYS.get(m, 0.0) for m in models})
    with replay_server(state) as url:
        settings = {"plugins": {"openai": {"base_url": url}, **config.pop("plugins", {})}, **config}
        app = build_app(tmp_path, settings)
        with running_gateway(app) as base:
            yield base, openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0), app


def ask(client, text: str, **headers):
    raw = client.chat.completions.with_raw_response.create(
        model="routerd", messages=[{"role": "user", "content": text}], extra_headers=headers or None
    )
    return raw.headers["x-routerd-model"], raw


MODELS = ["tiny-0.5b", "mid-3b", "big-14b", "large-32b"]
DELAYS = {"tiny-0.5b": 0.005, "mid-3b": 0.02, "big-14b": 0.08, "large-32b": 0.15}


def test_greetings_go_small_and_hard_coding_goes_big(tmp_path):
    with gateway(tmp_path, MODELS, plugins={"diversity": {"enabled": False}}) as (_, client, _app):
        assert ask(client, "hi!")[0] == "tiny-0.5b"
        assert ask(client, CODING)[0] == "large-32b"
        assert ask(client, "hi!")[0] == "tiny-0.5b"


def test_headers_and_the_explanation_say_why(tmp_path):
    with gateway(tmp_path, MODELS) as (base, client, _app):
        model, raw = ask(client, CODING)
        decision_id = raw.headers["x-routerd-decision-id"]
        runner_up = raw.headers["x-routerd-runner-up"]
        explained = httpx.get(f"{base}/admin/decisions/{decision_id}", headers=ADMIN).json()
        unknown = httpx.get(f"{base}/admin/decisions/rd-nope", headers=ADMIN)
    assert model == "large-32b" and runner_up == "big-14b"
    assert explained["chosen_model"] == "large-32b"
    assert explained["features"]["category"] == "coding"
    assert explained["features"]["difficulty"] == "hard"
    first = explained["candidates"][0]
    assert first["model"] == "large-32b"
    reasons = {name: c["reason"] for name, c in first["contributions"].items()}
    assert "meets the 8B a hard coding prompt needs" in reasons["size_fit"]
    small = next(c for c in explained["candidates"] if c["model"] == "tiny-0.5b")
    assert "below the 8B" in small["contributions"]["size_fit"]["reason"]
    assert small["contributions"]["size_fit"]["aspect"] == "multiplier"
    assert unknown.status_code == 404


def test_the_quality_preference_header_overrides_the_setting(tmp_path):
    medium = "Tell me about the history of the Roman Empire and its fall, in a few paragraphs please."
    # size-based latency estimates calibrated to this test's replay delays (tens of ms)
    plugins = {"diversity": {"enabled": False}, "speed": {"ms_per_sqrt_billion": 20}}
    with gateway(tmp_path, MODELS, plugins=plugins) as (_, client, _app):
        best = ask(client, medium, **{"X-Routerd-Quality-Preference": "1"})[0]
        cheapest = ask(client, medium, **{"X-Routerd-Quality-Preference": "0"})[0]
        with pytest.raises(openai.BadRequestError):
            ask(client, medium, **{"X-Routerd-Quality-Preference": "lots"})
    assert best == "large-32b"
    assert cheapest == "mid-3b"  # the fastest model big enough (1B) for a medium general prompt


def test_decisions_reach_the_audit_log_in_the_database(tmp_path):
    with gateway(tmp_path, MODELS) as (_base, client, _app):
        _, raw = ask(client, "hi!")
        decision_id = raw.headers["x-routerd-decision-id"]
        # a second replica on the same database knows only what was written
        with running_gateway(build_app(tmp_path, {"plugins": {"openai": {"enabled": False}}})) as other:
            deadline = time.monotonic() + 5
            while (found := httpx.get(f"{other}/admin/decisions/{decision_id}", headers=ADMIN)).status_code == 404:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            stored = found.json()
    assert stored["id"] == decision_id
    assert stored["status"] == "ok"
    assert stored["response_id"] == "chatcmpl-replay"
    assert stored["latency_ms"] > 0


def test_negative_feedback_moves_later_prompts_of_that_kind_elsewhere(tmp_path):
    config = {"plugins": {"diversity": {"enabled": False}}}
    with gateway(tmp_path, MODELS, **config) as (base, client, _app):
        first, raw = ask(client, CODING)
        assert first == "large-32b"
        for _ in range(6):
            model, raw = ask(client, CODING)
            if model != "large-32b":
                break
            response = httpx.post(
                f"{base}/v1/feedback",
                json={"decision_id": raw.headers["x-routerd-decision-id"], "rating": -1, "comment": "wrong"},
            )
            assert response.status_code == 201, response.text
            assert response.json()["model"] == "large-32b"
        after = ask(client, CODING)[0]
        greeting = ask(client, "hi!")[0]
        bad = httpx.post(f"{base}/v1/feedback", json={"response_id": "nope", "rating": 1})
        invalid = httpx.post(f"{base}/v1/feedback", json={"decision_id": "x", "rating": 5})
    assert after == "big-14b"  # the next capable model
    assert greeting == "tiny-0.5b"  # feedback about coding says nothing about greetings
    assert bad.status_code == 404
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "rating"


def test_diversity_spreads_close_calls(tmp_path):
    medium = "Explain how a hash map handles collisions."
    with gateway(tmp_path, ["twin-a-7b", "twin-b-7b"]) as (_, client, _app):
        picks = set()
        for _ in range(12):
            picks.add(ask(client, medium)[0])
            time.sleep(0.02)
    assert picks == {"twin-a-7b", "twin-b-7b"}


def test_two_backends_serving_a_model_of_the_same_name_are_scored_apart(tmp_path):
    """A team runs the same model on two boxes: the catalog lists it twice (its name, and `backend/name` for the
    second backend), and the scorers that learn from outcomes (speed, diversity) keep each copy's own figures
    rather than mixing them."""
    fast = ReplayState(models=["same-8b"])
    slow = ReplayState(models=["same-8b"], delay={"same-8b": 0.3})
    with replay_server(fast) as fast_url, replay_server(slow) as slow_url:
        plugins = {"openai": {"base_url": fast_url}, "llamacpp": {"url": slow_url.removesuffix("/v1")}}
        with running_gateway(build_app(tmp_path, {"plugins": plugins})) as base:
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            listed = httpx.get(f"{base}/admin/models", headers=ADMIN).json()["models"]
            by_backend = {m["backend"]: m["id"] for m in listed if m["name"] == "same-8b"}
            fast_id, slow_id = by_backend["openai"], by_backend["llamacpp"]
            for model, times in ((fast_id, 3), (slow_id, 1)):
                for _ in range(times):
                    client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])
            deadline = time.monotonic() + 10
            while True:
                _, raw = ask(client, "hi")
                explained = httpx.get(
                    f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN
                ).json()
                reasons = {
                    c["model"]: {name: c["contributions"][name]["reason"] for name in ("speed", "diversity")}
                    for c in explained["candidates"]
                    if "contributions" in c
                }
                measured = all("on average" in r["speed"] for r in reasons.values())
                if (measured and len(reasons) == 2) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
    assert {fast_id, slow_id} == {"same-8b", f"{'openai' if fast_id != 'same-8b' else 'llamacpp'}/same-8b"}
    assert set(reasons) == {fast_id, slow_id}
    fast_ms = int(reasons[fast_id]["speed"].split()[2])
    slow_ms = int(reasons[slow_id]["speed"].split()[2])
    assert fast_ms < 150 and slow_ms >= 250, reasons
    efficiency = {c["model"]: c["efficiency"] for c in explained["candidates"] if "efficiency" in c}
    assert efficiency[fast_id] > efficiency[slow_id]  # (which one wins also depends on diversity's spreading)
    # the audit log names the second copy's model, for what learns per name (the learned scorer's feedback)
    named = {c["model"]: c.get("name") for c in explained["candidates"] if "contributions" in c}
    assert sorted(named.values(), key=str) == [None, "same-8b"] and named["same-8b"] is None
    # picks are counted per copy: the fast one has three or more of the recent decisions, the slow one one
    assert reasons[slow_id]["diversity"] != reasons[fast_id]["diversity"], reasons
