"""The profiler with the builtin `judge` plugin switched on, end to end: the profiled models and the judge are
separate OpenAI-shaped replay servers. A judge that grades: open answers get its score; a judge that answers
garbage, or is down: profiling completes, those answers are marked unjudged with the reason, nothing crashes."""

from __future__ import annotations

import json
import socket

import pytest

from profiling_helpers import history, wait_profiled
from routerd.testing import build_app
from servers import ReplayState, replay_server, running_gateway
from test_profiling import REPLY, config

VERDICT = json.dumps({"accuracy": 8, "clarity": 6, "instruction_following": 9, "explanation": "mostly right"})


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


def open_prompts(base: str, model: str) -> list[dict]:
    """The per-prompt results of the prompts without an exact expectation (coding, creativity)."""
    categories = history(base, model)["latest"]["categories"]
    return [p for c in ("coding", "creativity") for p in categories[c]["prompts"]]


def profile_with_judge(tmp_path, judge_url: str) -> tuple[dict, list[dict]]:
    models = ReplayState(models=["alpha-7b"], reply=REPLY)
    with replay_server(models) as url:
        settings = config(url)
        settings["plugins"]["judge"] = {
            "enabled": True,
            "base_url": judge_url,
            "model": "judge-model",
            "timeout": 5.0,
            "connect_timeout": 1.0,
        }
        with running_gateway(build_app(tmp_path, settings)) as base:
            found = wait_profiled(base, {"alpha-7b"})
            prompts = open_prompts(base, "alpha-7b")
    [alpha] = found["models"]
    return alpha, prompts


def test_a_judge_that_grades_scores_the_open_answers(tmp_path):
    judge = ReplayState(models=["judge-model"], reply=VERDICT)
    with replay_server(judge) as judge_url:
        alpha, prompts = profile_with_judge(tmp_path, judge_url)
    # weights 0.5 / 0.2 / 0.3 over grades 8, 6, 9 on 1..10, mapped onto 0..1
    expected = pytest.approx((0.5 * 7 + 0.2 * 5 + 0.3 * 8) / 9, abs=1e-4)
    assert [(p["score"], p["judged"]) for p in prompts] == [(expected, True), (expected, True)]
    assert all(p["reason"].startswith("judge-model: accuracy 8, clarity 6, instruction following 9") for p in prompts)
    assert (alpha["judged"], alpha["unjudged"], alpha["errors"]) == (5, 0, 0)
    asked = [r for r in judge.requests if "messages" in r]
    assert len(asked) == 2 and all(r["model"] == "judge-model" for r in asked)
    assert any("def hello()" in m["content"] for m in asked[0]["messages"])  # the reference went to the judge


@pytest.mark.parametrize("broken", ["garbage", "down"])
def test_a_judge_that_answers_garbage_or_is_down_leaves_answers_unjudged(tmp_path, broken):
    if broken == "garbage":
        judge = ReplayState(models=["judge-model"], reply="I think it is fine, 7 out of ten or so.")
        with replay_server(judge) as judge_url:
            alpha, prompts = profile_with_judge(tmp_path, judge_url)
        assert len([r for r in judge.requests if "messages" in r]) == 4  # each verdict asked for twice
        why = "malformed verdict twice"
    else:
        alpha, prompts = profile_with_judge(tmp_path, closed_port_url())
        why = "judge-model failed"
    # the run completed: every category stored, the exact checks scored, the open answers neutral and unjudged
    assert set(alpha["categories"]) == {"math", "reasoning", "coding", "creativity", "general"}
    assert (alpha["judged"], alpha["unjudged"], alpha["errors"]) == (3, 2, 0)
    assert [(p["score"], p["judged"], p["method"]) for p in prompts] == [(0.5, False, "unjudged")] * 2
    assert all(why in " ".join(p.get("notes", [])) for p in prompts), prompts
