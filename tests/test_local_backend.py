"""The `local` plugin runs real llama.cpp servers for GGUF files: started on first use, stopped
when idle, restarted after a crash, unloaded least recently used first, stopped with the gateway."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import openai
import pytest

from routerd.testing import build_app
from servers import running_gateway

QUESTION = [{"role": "user", "content": "Say hi."}]


def local_app(tmp_path: Path, **settings):
    return build_app(tmp_path / "data", {"plugins": {"local": {"enabled": True, **settings}}})


def wait_until(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture
def second_model(tmp_path, gemma_path) -> Path:
    """A folder with another GGUF model (the same weights under another name)."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "tiny-270m-copy.gguf").symlink_to(gemma_path)
    return folder


def test_started_on_first_use_and_stopped_with_the_gateway(tmp_path, gemma_path):
    app = local_app(tmp_path)
    backend = app.state.gateway.plugins.registry.backends["local"]
    with running_gateway(app) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list()] == ["routerd", "gemma-3-270m"]
        assert backend.servers == {}  # nothing runs before the first request
        answer = client.chat.completions.create(model="routerd", messages=QUESTION, max_tokens=5)
        assert answer.model == "gemma-3-270m"
        process = backend.servers["gemma-3-270m"].process
        assert process.returncode is None
        vectors = client.embeddings.create(model="routerd", input=["one", "two"])
        assert len(vectors.data) == 2 and len(vectors.data[0].embedding) == 640
    assert process.returncode is not None  # stopped with the gateway
    with pytest.raises(ProcessLookupError):
        os.kill(process.pid, 0)


def test_idle_server_is_stopped(tmp_path, gemma_path):
    app = local_app(tmp_path, idle_timeout=1.0)
    backend = app.state.gateway.plugins.registry.backends["local"]
    with running_gateway(app) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        client.chat.completions.create(model="gemma-3-270m", messages=QUESTION, max_tokens=3)
        process = backend.servers["gemma-3-270m"].process
        wait_until(lambda: "gemma-3-270m" not in backend.servers and process.returncode is not None)


def test_crashed_server_is_restarted(tmp_path, gemma_path):
    app = local_app(tmp_path, idle_timeout=600.0)
    backend = app.state.gateway.plugins.registry.backends["local"]
    with running_gateway(app) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        client.chat.completions.create(model="gemma-3-270m", messages=QUESTION, max_tokens=3)
        crashed = backend.servers["gemma-3-270m"].process
        os.kill(crashed.pid, signal.SIGKILL)
        wait_until(lambda: (s := backend.servers.get("gemma-3-270m")) is not None and s.process is not crashed)
        answer = client.chat.completions.create(model="gemma-3-270m", messages=QUESTION, max_tokens=3)
        assert answer.choices[0].message.content


def test_least_recently_used_model_is_unloaded_to_make_room(tmp_path, second_model):
    app = local_app(tmp_path, models_dir=str(second_model), max_loaded=1)
    backend = app.state.gateway.plugins.registry.backends["local"]
    with running_gateway(app) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        client.chat.completions.create(model="gemma-3-270m", messages=QUESTION, max_tokens=3)
        client.chat.completions.create(model="tiny-270m-copy", messages=QUESTION, max_tokens=3)
        assert list(backend.servers) == ["tiny-270m-copy"]


def test_the_pinned_model_is_never_unloaded(tmp_path, second_model):
    app = build_app(
        tmp_path / "data",
        {
            "routing": {"pinned_model": "gemma-3-270m"},
            "plugins": {"local": {"enabled": True, "models_dir": str(second_model), "max_loaded": 1}},
        },
    )
    backend = app.state.gateway.plugins.registry.backends["local"]
    with running_gateway(app) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        client.chat.completions.create(model="gemma-3-270m", messages=QUESTION, max_tokens=3)
        client.chat.completions.create(model="tiny-270m-copy", messages=QUESTION, max_tokens=3)
        assert sorted(backend.servers) == ["gemma-3-270m", "tiny-270m-copy"]
