"""Background profiling gives way to client requests (``context.traffic``, ``profiling.yield_to_requests``): in a
running gateway, against an OpenAI-shaped upstream whose answers the test holds open, a client request pre-empts
the prompt the profiler is waiting on (its stream is closed), no profiling request reaches the upstream while a
client request is in flight (a stream until its last chunk), a round waits for the requests in flight before its
first request, and the pre-empted prompt is asked again and recorded as any other. Then `routerd.Traffic` itself:
only its own cancellation becomes `Preempted`, and `quiet` waits for the last request to end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import openai
import pytest
from aiohttp import web

from profiling_helpers import SHORT_SUITE, history, profiles, wait_for, wait_profiled
from routerd import Preempted, Traffic
from routerd.testing import build_app
from servers import aiohttp_in_thread, chunk, running_gateway

PROFILED = "profiled-7b"
USER = "user-1b"  # the model clients ask for; profiling.skip keeps the profiler away from it
REPLY = "The answer is 5. Paris, of course."
FIRST_PROMPT = "What is 2 + 3? Answer with a number."  # the short suite's first prompt (math-sum)
QUIET = 0.3  # profiling.quiet_seconds in these tests


@dataclass
class Upstream:
    """What the upstream serves and saw: `events` are (event, model, last message, time.monotonic()), the event
    ``start`` when a request arrives, ``end`` when its answer is sent, ``disconnect`` when its client went away
    first. The first profiling prompt (not the warm-up) is held open while `hold_profiling` is set (`held` tells
    when), until `release_profiling` or a disconnect; client requests wait for `release_user`."""

    models: list[str] = field(default_factory=lambda: [PROFILED, USER])
    events: list[tuple[str, str, str, float]] = field(default_factory=list)
    hold_profiling: bool = True
    held: threading.Event = field(default_factory=threading.Event)
    release_profiling: threading.Event = field(default_factory=threading.Event)
    release_user: threading.Event = field(default_factory=threading.Event)

    def seen(self, event: str, model: str, text: str | None = None) -> list[float]:
        """When `event` happened to requests for `model` (with last message `text`)."""
        return [at for e, m, t, at in self.events if e == event and m == model and (text is None or t == text)]


async def released(event: threading.Event) -> None:
    """Wait until the test's thread sets `event`."""
    while not event.is_set():  # noqa: ASYNC110  (a threading.Event: an asyncio one cannot be set from there)
        await asyncio.sleep(0.02)


async def hold(response: web.StreamResponse, until: threading.Event) -> None:
    """Keep a stream open (an SSE comment every 20 ms, which also finds out when the client has gone)."""
    while not until.is_set():
        await response.write(b": holding\n\n")
        await asyncio.sleep(0.02)


def upstream_app(state: Upstream) -> web.Application:
    async def models(_: web.Request) -> web.Response:
        card = {"object": "model", "created": 1_700_000_000, "owned_by": "upstream"}
        return web.json_response({"object": "list", "data": [{"id": m, **card} for m in state.models]})

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model, text = body["model"], str(body["messages"][-1]["content"])
        state.events.append(("start", model, text, time.monotonic()))
        reply = "Hello user." if model == USER else REPLY
        try:
            if not body.get("stream"):
                if model == USER:
                    await released(state.release_user)
                message = {"role": "assistant", "content": reply}
                answer = web.json_response(
                    {
                        "id": "chatcmpl-upstream",
                        "object": "chat.completion",
                        "created": 1_700_000_000,
                        "model": model,
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
                    }
                )
                state.events.append(("end", model, text, time.monotonic()))
                return answer
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(chunk(model, {"role": "assistant", "content": ""}))
            if model == USER:
                await hold(response, state.release_user)
            elif state.hold_profiling and text == FIRST_PROMPT:
                state.hold_profiling = False
                state.held.set()
                await hold(response, state.release_profiling)
            for i, word in enumerate(reply.split(" ")):
                await response.write(chunk(model, {"content": word if i == 0 else " " + word}))
            await response.write(chunk(model, {}, finish="stop"))
            await response.write(b"data: [DONE]\n\n")
            state.events.append(("end", model, text, time.monotonic()))
            return response
        except (ConnectionResetError, asyncio.CancelledError):
            state.events.append(("disconnect", model, text, time.monotonic()))
            raise

    async def embeddings(request: web.Request) -> web.Response:
        body = await request.json()
        state.events.append(("start", body["model"], "embeddings", time.monotonic()))
        await released(state.release_user)
        data = [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}]
        state.events.append(("end", body["model"], "embeddings", time.monotonic()))
        usage = {"prompt_tokens": 1, "total_tokens": 1}
        return web.json_response({"object": "list", "data": data, "model": body["model"], "usage": usage})

    app = web.Application()
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/embeddings", embeddings)
    return app


@contextlib.contextmanager
def upstream_server(state: Upstream) -> Iterator[str]:
    with aiohttp_in_thread(upstream_app(state)) as base:
        yield f"{base}/v1"


def config(url: str, **profiling) -> dict:
    return {
        "plugins": {"openai": {"base_url": url}},
        "profiling": {
            "enabled": True,
            "suite": str(SHORT_SUITE),
            "max_tokens": 16,
            "skip": [USER],
            "quiet_seconds": QUIET,
            **profiling,
        },
    }


def no_profiling_between(state: Upstream, started: float, ended: float) -> None:
    overlapping = [e for e in state.events if e[1] == PROFILED and e[0] == "start" and started <= e[3] <= ended]
    assert overlapping == [], "the profiler sent requests while a client request was in flight"


@pytest.mark.parametrize("kind", ["chat stream", "embeddings"])
def test_a_client_request_pre_empts_the_prompt_in_flight_which_is_asked_again_after(tmp_path, caplog, kind):
    caplog.set_level(logging.INFO, logger="routerd.plugin.profiling")
    state = Upstream()
    with upstream_server(state) as url:
        app = build_app(tmp_path, config(url))
        with running_gateway(app) as base:
            assert state.held.wait(30), "the profiler never sent its first prompt"
            client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
            vectors: list = []
            answered = threading.Thread(
                target=lambda: vectors.append(client.embeddings.create(model=USER, input="hi")), daemon=True
            )
            if kind == "chat stream":
                stream = client.chat.completions.create(
                    model=USER, messages=[{"role": "user", "content": "hi"}], stream=True
                )
                first = next(stream)  # the answer has begun: the request is in flight until its last chunk
                assert first.choices[0].delta.role == "assistant"
            else:
                answered.start()
            # the profiler's prompt is abandoned at once: its stream to the upstream is closed
            wait_for(lambda: state.seen("disconnect", PROFILED, FIRST_PROMPT), timeout=10, step=0.02)
            paused = wait_for(lambda: (running := profiles(base)["running"]) and running["paused"] and running)
            time.sleep(QUIET * 4)  # a profiler that did not count the open request would have gone on by now
            state.release_user.set()
            if kind == "chat stream":
                rest = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
                assert rest.startswith("Hello user.")
            else:
                answered.join(10)
                assert vectors and vectors[0].data[0].embedding == pytest.approx([0.1, 0.2, 0.3])
            found = wait_profiled(base, {PROFILED}, timeout=30)
            latest = history(base, PROFILED)["latest"]
            traffic = app.state.gateway.traffic
    [user_start], [user_end] = state.seen("start", USER), state.seen("end", USER)
    no_profiling_between(state, user_start, user_end)
    assert paused["preempted"] == 1 and paused["prompt"] == "math-sum"
    # the pre-empted prompt was asked again once the client's request had ended, and answered
    attempts = state.seen("start", PROFILED, FIRST_PROMPT)
    assert len(attempts) == 2 and attempts[1] > user_end
    assert state.seen("end", PROFILED, FIRST_PROMPT)[0] > attempts[1]
    # it counts as neither a failure nor a timeout, and its timings are the second attempt's alone
    [model] = found["models"]
    assert model["errors"] == 0 and model["categories"]["math"]["quality"] == 1.0
    [prompt] = latest["categories"]["math"]["prompts"]
    assert (prompt["method"], prompt["score"], prompt["error"]) == ("exact", 1.0, None)
    assert prompt["latency_ms"] / 1000 < attempts[1] - attempts[0]
    assert (traffic.served, traffic.preemptions, traffic.in_flight) == (1, 1, 0)
    assert "math-sum pre-empted by a client request" in caplog.text


def test_a_round_waits_for_the_requests_in_flight_before_its_first_request(tmp_path):
    state = Upstream(models=[USER], hold_profiling=False)
    with upstream_server(state) as url:
        settings = {**config(url), "backends": {"discovery_interval": 0.2}}
        app = build_app(tmp_path, settings)
        with running_gateway(app) as base:
            answers: list[httpx.Response] = []
            hello = {"model": USER, "messages": [{"role": "user", "content": "hi"}]}
            asking = threading.Thread(
                target=lambda: answers.append(httpx.post(f"{base}/v1/chat/completions", json=hello, timeout=30))
            )
            asking.start()
            wait_for(lambda: state.seen("start", USER))
            state.models.append(PROFILED)  # discovery finds a new model: a round begins, and waits
            running = wait_for(lambda: profiles(base)["running"], timeout=10, step=0.02)
            time.sleep(QUIET * 4)
            assert state.seen("start", PROFILED) == []  # not even the warm-up
            state.release_user.set()
            asking.join(10)
            wait_profiled(base, {PROFILED}, timeout=30)
    assert running["paused"] is True and running["model"] == PROFILED
    assert answers[0].status_code == 200 and answers[0].json()["choices"][0]["message"]["content"].startswith("Hello")
    [user_end] = state.seen("end", USER)
    assert min(state.seen("start", PROFILED)) > user_end


def test_with_yield_to_requests_off_profiling_runs_beside_client_requests(tmp_path):
    state = Upstream()
    state.release_user.set()  # client requests are answered at once
    with upstream_server(state) as url:
        app = build_app(tmp_path, config(url, yield_to_requests=False))
        with running_gateway(app) as base:
            assert state.held.wait(30)
            hello = {"model": USER, "messages": [{"role": "user", "content": "hi"}]}
            answer = httpx.post(f"{base}/v1/chat/completions", json=hello, timeout=30)
            held_on = not state.seen("disconnect", PROFILED)  # the profiler's prompt went on beside it
            state.release_profiling.set()
            found = wait_profiled(base, {PROFILED}, timeout=30)
            traffic = app.state.gateway.traffic
    assert answer.status_code == 200 and held_on
    assert len(state.seen("start", PROFILED, FIRST_PROMPT)) == 1 and found["models"][0]["errors"] == 0
    assert traffic.served == 1 and traffic.preemptions == 0


# -- routerd.Traffic -----------------------------------------------------------------------------------------


def test_only_a_client_request_turns_into_preempted_and_other_cancellations_pass() -> None:
    async def scenario() -> list[str]:
        traffic = Traffic()
        seen: list[str] = []
        entered = asyncio.Event()

        async def work() -> None:
            try:
                async with traffic.yielding():
                    entered.set()
                    await asyncio.sleep(30)
            except Preempted:
                seen.append("preempted")
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        pre_empted = asyncio.create_task(work())
        await entered.wait()
        traffic.request_started()
        await pre_empted  # ends with Preempted, not a cancelled task
        seen.append(f"cancelling={pre_empted.cancelling()}")
        try:  # a block entered while a client request is in flight is not run at all
            async with traffic.yielding():
                seen.append("ran while busy")
        except Preempted:
            seen.append("refused while busy")
        traffic.request_ended()

        entered.clear()
        stopped = asyncio.create_task(work())
        await entered.wait()
        stopped.cancel()  # the gateway stopping: that cancellation is not a pre-emption
        with contextlib.suppress(asyncio.CancelledError):
            await stopped
        seen.append(f"stopped cancelled={stopped.cancelled()}")
        return seen

    assert asyncio.run(scenario()) == [
        "preempted",
        "cancelling=0",
        "refused while busy",
        "cancelled",
        "stopped cancelled=True",
    ]


def test_quiet_returns_only_after_the_last_request_has_ended_and_the_quiet_spell() -> None:
    async def scenario() -> tuple[list[str], float]:
        traffic = Traffic()
        order: list[str] = []
        await traffic.quiet(60)  # no request yet: at once
        order.append("quiet before any request")
        traffic.request_started()
        traffic.request_started()

        async def waiting() -> None:
            await traffic.quiet(0.05)
            order.append(f"quiet (in flight: {traffic.in_flight})")

        waiter = asyncio.create_task(waiting())
        await asyncio.sleep(0.1)
        order.append("first ended")
        traffic.request_ended()
        await asyncio.sleep(0.1)
        order.append("second ended")
        traffic.request_ended()
        ended = time.monotonic()
        await waiter
        return order, time.monotonic() - ended

    order, after = asyncio.run(scenario())
    assert order == ["quiet before any request", "first ended", "second ended", "quiet (in flight: 0)"]
    assert after >= 0.045  # the quiet spell is counted from the end of the last request
