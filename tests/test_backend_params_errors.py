"""Upstream errors reach clients in the OpenAI shape with the right status, never with a backend's traceback, file
paths or a huge body: a context-window refusal is a 400 ``context_length_exceeded``, another client error a 400,
and neither counts against the backend. The upstreams are replay servers answering as the real servers do
(tests/servers.py, ``UPSTREAM_ERRORS``; tests/ollama_replay.py)."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from ollama_replay import OllamaReplay
from routerd.testing import build_app
from routerd.toolkit import public_message
from servers import ReplayState, replay_server, running_gateway

BODY = {"model": "replay-7b", "messages": [{"role": "user", "content": "hi"}]}
LEAKS = ("Traceback", 'File "', "/usr/lib", "/opt/venv", "site-packages", ".py", "/var/log")


@contextlib.contextmanager
def gateway(tmp_path, state: ReplayState, plugin: str = "openai"):
    """The gateway on the replay server, one failure taking a backend out of rotation; yields its base URL."""
    with replay_server(state) as url:
        settings = {"base_url": url} if plugin == "openai" else {"url": url.removesuffix("/v1")}
        config = {"plugins": {plugin: settings}, "dispatch": {"breaker_failures": 1}}
        with running_gateway(build_app(tmp_path, config)) as base:
            yield base


def error_of(response: httpx.Response) -> dict:
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) >= {"message", "type", "param", "code"}
    assert not any(leak in body["error"]["message"] for leak in LEAKS), body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize(
    ("plugin", "behaviour", "says"),
    [
        ("openai", "context_length", "maximum context length is 8192 tokens"),
        ("llamacpp", "llama_server_context", "exceeds the available context size (8192 tokens)"),
    ],
)
def test_a_context_window_refusal_is_a_400_context_length_exceeded_not_held_against_the_backend(
    tmp_path, plugin, behaviour, says
):
    state = ReplayState(models=["replay-7b"], behaviour={"replay-7b": behaviour})
    with gateway(tmp_path, state, plugin) as base:
        refusals = [httpx.post(f"{base}/v1/chat/completions", json=BODY) for _ in range(2)]
        streamed = httpx.post(f"{base}/v1/chat/completions", json={**BODY, "stream": True})
        state.behaviour.clear()
        after = httpx.post(f"{base}/v1/chat/completions", json=BODY)
    for refused in [*refusals, streamed]:
        assert refused.status_code == 400, refused.text
        error = error_of(refused)
        assert (error["type"], error["code"], error["param"]) == (
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        )
        assert says in error["message"]
    assert after.status_code == 200  # never out of rotation (one failure would have been enough)
    assert len(state.requests) == 4


def test_a_servers_validation_error_is_the_clients_400_without_its_traceback(tmp_path):
    """llama-cpp-python's server answers a request it cannot read with a 500 whose message ends in a traceback's
    frame (a file path): the client gets a 400 with the first part of it, and the backend stays in rotation."""
    state = ReplayState(models=["replay-7b"], behaviour={"replay-7b": "llama_cpp_python_validation"})
    with gateway(tmp_path, state, "llamacpp") as base:
        first = httpx.post(f"{base}/v1/chat/completions", json=BODY)
        second = httpx.post(f"{base}/v1/chat/completions", json=BODY)
    for refused in (first, second):
        assert refused.status_code == 400
        error = error_of(refused)
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith("backend llamacpp refused the request: 1 validation error:")
        assert "Input should be 'text' or 'json_object'" in error["message"]
    assert len(state.requests) == 2  # the second was sent too: a client error does not open the breaker


def test_a_servers_traceback_never_reaches_the_client(tmp_path):
    state = ReplayState(models=["replay-7b"], behaviour={"replay-7b": "traceback"})
    with gateway(tmp_path, state) as base:
        failed = httpx.post(f"{base}/v1/chat/completions", json=BODY)
    assert failed.status_code >= 500
    message = error_of(failed)["message"]
    assert "RuntimeError: llama_decode returned -3 (see <path>)" in message  # the exception's own line is kept


def test_a_huge_error_body_is_cut_to_its_first_part(tmp_path):
    state = ReplayState(models=["replay-7b"], behaviour={"replay-7b": "huge_error"})
    with gateway(tmp_path, state) as base:
        failed = httpx.post(f"{base}/v1/chat/completions", json=BODY)
    message = error_of(failed)["message"]
    assert "Bad gateway xxx" in message and len(message) < 600


def test_ollamas_errors_lose_their_file_paths(tmp_path):
    ollama = OllamaReplay()
    ollama.failures["/api/chat"] = (
        500,
        b'{"error":"llama runner process has terminated: error loading model: open /usr/share/ollama/.ollama/models/'
        b'blobs/sha256-1234: no such file or directory"}',
    )
    ollama.start()
    try:
        with running_gateway(build_app(tmp_path, {"plugins": {"ollama": {"url": ollama.url}}})) as base:
            failed = httpx.post(f"{base}/v1/chat/completions", json={**BODY, "model": "llama3.2:latest"})
    finally:
        ollama.stop()
    message = error_of(failed)["message"]
    assert "llama runner process has terminated" in message and "<path>" in message
    assert "/usr/share/ollama" not in message


@pytest.mark.parametrize(
    ("raw", "public"),
    [
        (
            "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens. Please reduce.",
            "This model's maximum context length is 4096 tokens.",
        ),
        ("Unsupported parameter: 'reasoning_effort' is not supported with gpt-4.1.", None),
        (
            "Traceback (most recent call last):\n  File \"/srv/app.py\", line 3, in f\n    g()\nKeyError: 'x'",
            "KeyError: 'x'",
        ),
        ("could not load C:\\Users\\me\\model.gguf", "could not load <path>"),
        ("", ""),
    ],
)
def test_public_message_keeps_the_first_sentence_and_drops_the_rest(raw, public):
    assert public_message(raw) == (raw if public is None else public)
