"""Dispatch under overload and faults (issue 14), against a running gateway in front of the faulty upstream
(tests/faulty_upstream.py), through the official openai SDK and httpx: admission control per backend (a bounded
queue whose wait never counts against the backend, 503 with Retry-After beyond it, other models with room first),
the deadlines and the client's disconnect for requests waiting for a model, and upstream errors without the
operator's key."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import openai
import pytest

from faulty_upstream import FaultState, faulty_upstream
from routerd.testing import build_app
from servers import running_gateway

KEY = "sk-operator-0123456789abcdefXYZ"
HI = [{"role": "user", "content": "hi"}]


@contextlib.contextmanager
def gateway(tmp_path, first: FaultState, second: FaultState | None = None, api_key: str | None = None, **dispatch):
    """The gateway with the `openai` plugin on `first` and, if given, the `llamacpp` plugin on `second`; yields
    its base URL and the app."""
    with contextlib.ExitStack() as stack:
        plugins: dict = {"openai": {"base_url": stack.enter_context(faulty_upstream(first)), "api_key": api_key}}
        if second is not None:
            plugins["llamacpp"] = {"url": stack.enter_context(faulty_upstream(second)).removesuffix("/v1")}
        app = build_app(tmp_path, {"plugins": plugins, "dispatch": dispatch})
        yield stack.enter_context(running_gateway(app)), app


def client_of(base: str, timeout: float = 30.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=timeout)


async def stream_text(client: openai.AsyncOpenAI, model: str = "routerd") -> str:
    chunks = await client.chat.completions.create(model=model, messages=HI, stream=True)
    return "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])


async def until(condition, seconds: float = 10.0) -> None:
    """Wait for `condition()` (state another thread changes), at most `seconds`."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold in time")


async def outcome(work) -> object:
    try:
        return await work
    except openai.APIStatusError as exc:
        return exc


def assert_overloaded(error: object) -> None:
    assert isinstance(error, openai.APIStatusError), error
    assert error.status_code == 503
    assert error.response.headers["retry-after"] == "2"
    body = error.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == "overloaded"
    assert "capacity" in body["error"]["message"]


# -- overload and admission control ------------------------------------------------------------------------------


def test_queued_streams_all_succeed_and_the_wait_never_counts_against_first_token_or_breaker(tmp_path):
    """Twice as many slow streams as the backend may take: half wait in its queue longer than the first-token
    timeout, and all succeed; the upstream never has more than the limit in flight; the backend stays in
    rotation (the issue's 600 streams failing 503 "did not answer in time" through a silent pool limit)."""
    state = FaultState(first_delay={"faulty-1": 0.3}, stream_seconds={"faulty-1": 1.2})
    settings = dict(max_in_flight_per_backend=3, max_queued_per_backend=3, first_token_timeout=1.0, breaker_failures=1)
    with gateway(tmp_path, state, **settings) as (base, app):

        async def run() -> list:
            async with client_of(base) as client:
                return await asyncio.gather(*(outcome(stream_text(client)) for _ in range(6)))

        started = time.monotonic()
        results = asyncio.run(run())
        elapsed = time.monotonic() - started
        dispatcher = app.state.gateway.dispatcher
        assert dispatcher.available("openai")
        assert dispatcher.gates["openai"].in_flight == 0 and not dispatcher.gates["openai"].waiting
    assert all(isinstance(r, str) and r.startswith("Fine") for r in results), results
    assert state.peak == 3
    assert state.requests["faulty-1"] == 6
    assert elapsed > 2.5  # the second three waited for the first three (1.5 s each), beyond first_token_timeout


def test_beyond_the_queue_the_client_gets_503_with_retry_after_at_once(tmp_path):
    """With the backend's places and queue taken, more requests are answered 503 with Retry-After in the OpenAI
    error shape, without being queued or sent upstream; the queued ones still succeed; the breaker stays closed."""
    state = FaultState(stream_seconds={"faulty-1": 1.5})
    settings = dict(max_in_flight_per_backend=2, max_queued_per_backend=2, breaker_failures=1)
    with gateway(tmp_path, state, **settings) as (base, app):

        async def run() -> tuple[list, list[float]]:
            async with client_of(base) as client:
                return await load(client)

        async def load(client: openai.AsyncOpenAI) -> tuple[list, list[float]]:
            admitted = [asyncio.ensure_future(outcome(stream_text(client))) for _ in range(4)]
            gates = app.state.gateway.dispatcher.gates
            await until(lambda: "openai" in gates and len(gates["openai"].waiting) == 2)
            refused, times = [], []
            for _ in range(3):
                started = time.monotonic()
                refused.append(await outcome(stream_text(client)))
                times.append(time.monotonic() - started)
            json_refused = await outcome(client.chat.completions.create(model="routerd", messages=HI))
            return [*await asyncio.gather(*admitted), *refused, json_refused], times

        results, times = asyncio.run(run())
        assert app.state.gateway.dispatcher.available("openai")
        after = httpx.post(f"{base}/v1/chat/completions", json={"model": "routerd", "messages": HI}, timeout=10)
    assert all(isinstance(r, str) for r in results[:4]), results
    for error in results[4:]:
        assert_overloaded(error)
    assert max(times) < 1.0  # answered at once, not after a wait
    assert state.requests["faulty-1"] == 5  # the four admitted, and the one after: none of the refused
    assert state.peak == 2
    assert after.status_code == 200


def test_a_wait_past_queue_timeout_is_a_503_with_retry_after_not_a_backend_failure(tmp_path):
    state = FaultState(stream_seconds={"faulty-1": 3.0})
    settings = dict(max_in_flight_per_backend=1, max_queued_per_backend=5, queue_timeout=0.5, breaker_failures=1)
    with gateway(tmp_path, state, **settings) as (base, app):

        async def run() -> tuple[object, object, float]:
            async with client_of(base) as client:
                return await load(client)

        async def load(client: openai.AsyncOpenAI) -> tuple[object, object, float]:
            first = asyncio.ensure_future(outcome(stream_text(client)))
            await until(lambda: state.in_flight == 1)
            started = time.monotonic()
            second = await outcome(client.chat.completions.create(model="routerd", messages=HI))
            waited = time.monotonic() - started
            return await first, second, waited

        first, second, waited = asyncio.run(run())
        assert app.state.gateway.dispatcher.available("openai")
        assert app.state.gateway.dispatcher.breakers.get("openai") is None
    assert isinstance(first, str)
    assert_overloaded(second)
    assert 0.4 < waited < 2.0
    assert state.requests["faulty-1"] == 1


def test_a_model_whose_backend_has_room_is_tried_before_one_that_would_queue(tmp_path):
    """While one backend is full, routed requests go to the other ranked model (its backend has room) at once,
    whichever model routing ranks first, rather than into the full backend's queue."""
    one, two = FaultState(models=["faulty-a"], stream_seconds={"faulty-a": 3.0}), FaultState(models=["faulty-b"])
    settings = dict(max_in_flight_per_backend=1, max_queued_per_backend=4)
    with gateway(tmp_path, one, two, **settings) as (base, _):

        async def run() -> tuple[str, list[httpx.Response], list[float]]:
            async with client_of(base) as client:
                return await load(client)

        async def load(client: openai.AsyncOpenAI) -> tuple[str, list[httpx.Response], list[float]]:
            holding = asyncio.ensure_future(stream_text(client, "faulty-a"))  # takes faulty-a's place
            await until(lambda: one.in_flight == 1)
            routed, times = [], []
            async with httpx.AsyncClient(timeout=10) as http:
                for _ in range(6):  # routing ranks either model first, in turn
                    started = time.monotonic()
                    body = {"model": "routerd", "messages": HI}
                    routed.append(await http.post(f"{base}/v1/chat/completions", json=body))
                    times.append(time.monotonic() - started)
            return await holding, routed, times

        held, routed, times = asyncio.run(run())
    assert held.startswith("Fine")
    assert [r.status_code for r in routed] == [200] * 6
    assert {r.headers["x-routerd-model"] for r in routed} == {"faulty-b"}
    assert "faulty-b" in {r.headers["x-routerd-runner-up"] for r in routed}  # routing ranked faulty-a first
    assert max(times) < 1.0  # none waited for faulty-a's stream to end
    assert one.requests["faulty-a"] == 1 and one.peak == 1


# -- deadlines and disconnects ------------------------------------------------------------------------------------


def test_a_json_client_that_leaves_cancels_the_upstream_call_and_no_fallback_follows(tmp_path):
    """Both models slow to answer: the client gives up after 0.5 s; the upstream call is closed within a second,
    and the other model is never called for the client that is gone (the issue: it was, 20 s later)."""
    one = FaultState(models=["faulty-a"], first_delay={"faulty-a": 20.0})
    two = FaultState(models=["faulty-b"], first_delay={"faulty-b": 20.0})
    with gateway(tmp_path, one, two) as (base, app):
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base}/v1/chat/completions", json={"model": "routerd", "messages": HI}, timeout=0.5)
        left = time.monotonic()
        deadline = left + 5
        while not (one.left or two.left) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(1.5)  # time for a fallback call, if one were made
        gates = app.state.gateway.dispatcher.gates
        assert all(gate.in_flight == 0 for gate in gates.values())
    assert one.requests["faulty-a"] + two.requests["faulty-b"] == 1  # no fallback for a client that is gone
    closed = one.left.get("faulty-a", []) + two.left.get("faulty-b", [])
    assert closed, "the upstream call was not closed"
    assert closed[0] - left < 1.0  # closed within a second of the client leaving


def test_a_stream_client_that_leaves_before_the_first_token_cancels_the_upstream_call(tmp_path):
    state = FaultState(first_delay={"faulty-1": 20.0})
    with gateway(tmp_path, state) as (base, app):
        body = {"model": "routerd", "messages": HI, "stream": True}
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{base}/v1/chat/completions", json=body, timeout=0.5)
        left = time.monotonic()
        deadline = left + 5
        while not state.left.get("faulty-1") and time.monotonic() < deadline:
            time.sleep(0.02)
        gate = app.state.gateway.dispatcher.gates["openai"]
        deadline = time.monotonic() + 5
        while gate.in_flight and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gate.in_flight == 0  # its place at the backend was given back
    assert state.left.get("faulty-1") and state.left["faulty-1"][0] - left < 1.0


def test_request_timeout_bounds_a_json_request_across_fallbacks(tmp_path):
    """Two models that accept and never answer: the client gets a 504 after `request_timeout`, not after
    models x `generation_timeout`; the backends are not blamed for the request's own deadline."""
    one = FaultState(models=["faulty-a"], hang={"faulty-a"})
    two = FaultState(models=["faulty-b"], hang={"faulty-b"})
    settings = dict(request_timeout=1.5, generation_timeout=60, breaker_failures=1)
    with gateway(tmp_path, one, two, **settings) as (base, app):
        started = time.monotonic()
        response = httpx.post(f"{base}/v1/chat/completions", json={"model": "routerd", "messages": HI}, timeout=30)
        elapsed = time.monotonic() - started
        dispatcher = app.state.gateway.dispatcher
        assert dispatcher.available("openai") and dispatcher.available("llamacpp")
    assert 1.3 < elapsed < 5.0
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "request_timeout"
    assert "1.5 s" in error["message"]


def test_with_stream_json_requests_a_json_request_falls_back_after_first_token_timeout(tmp_path):
    """`dispatch.stream_json_requests`: a JSON request is asked upstream as a stream, so a model that does not
    start answering within `first_token_timeout` is left for the next one, and the client gets the assembled
    completion (text, finish reason, usage) as JSON."""
    one = FaultState(models=["faulty-a"], first_delay={"faulty-a": 20.0})
    two = FaultState(models=["faulty-b"], stream_seconds={"faulty-b": 0.25})
    settings = dict(stream_json_requests=True, first_token_timeout=1.0)
    with gateway(tmp_path, one, two, **settings) as (base, _):
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=30)
        answers, times = [], []
        for _ in range(2):  # routing ranks either model first, in turn
            started = time.monotonic()
            answers.append(client.chat.completions.with_raw_response.create(model="routerd", messages=HI))
            times.append(time.monotonic() - started)
    assert max(times) < 3.0  # not generation_timeout (300 s)
    for raw in answers:
        assert raw.headers["x-routerd-model"] == "faulty-b"
        assert raw.headers["content-type"].startswith("application/json")
        completion = raw.parse()
        assert completion.object == "chat.completion"
        assert completion.choices[0].message.content.startswith("Fine..")
        assert completion.choices[0].finish_reason == "stop"
        assert completion.usage.total_tokens > 0
    assert one.requests["faulty-a"] >= 1 and len(one.left.get("faulty-a", [])) == one.requests["faulty-a"]


# -- upstream errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 400, 401])
def test_an_upstream_error_that_echoes_the_authorization_header_reaches_the_client_without_the_key(tmp_path, status):
    state = FaultState(echo_auth={"faulty-1": status})
    with gateway(tmp_path, state, api_key=KEY) as (base, _):
        for stream in (False, True):
            body = {"model": "routerd", "messages": HI, "stream": stream}
            response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=10)
            assert response.status_code >= 400
            text = response.text
            assert KEY not in text and KEY[3:] not in text and "Bearer sk" not in text
            assert "0123456789abcdef" not in text
            message = response.json()["error"]["message"]
            assert message.startswith("backend openai")
            if status != 401:  # the credentials' refusal is summarised by the gateway; the others say what failed
                assert "Invalid credentials" in message and "<redacted>" in message


def test_an_error_event_inside_a_stream_that_echoes_the_key_reaches_the_client_without_it(tmp_path):
    state = FaultState(echo_auth_in_stream={"faulty-1"})
    with gateway(tmp_path, state, api_key=KEY) as (base, _):
        body = {"model": "routerd", "messages": HI, "stream": True}
        response = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=10)
    assert response.status_code == 200  # the first chunk was on its way: the error comes as an event
    assert '"error"' in response.text and "Invalid credentials" in response.text
    assert KEY not in response.text and "0123456789abcdef" not in response.text
    assert "<redacted>" in response.text
