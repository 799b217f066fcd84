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


def test_a_server_still_starting_when_its_request_is_cancelled_is_stopped(tmp_path, gemma_path, monkeypatch):
    """A start cancelled half-way (the gateway closing while a request or the watchdog starts a model) leaves
    no llama.cpp process behind."""
    import asyncio

    app = local_app(tmp_path)
    backend = app.state.gateway.plugins.registry.backends["local"]
    spawned = []
    original = asyncio.create_subprocess_exec
    started: asyncio.Event | None = None

    async def recording(*args, **kwargs):
        process = await original(*args, **kwargs)
        spawned.append(process)
        started.set()
        return process

    async def cancel_while_starting() -> None:
        nonlocal started
        started = asyncio.Event()
        starting = asyncio.create_task(backend._ensure("gemma-3-270m"))
        await started.wait()
        await asyncio.sleep(0.3)  # the process runs; the model is not loaded yet
        starting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await starting

    monkeypatch.setattr(asyncio, "create_subprocess_exec", recording)  # records the process, changes nothing
    asyncio.run(cancel_while_starting())
    assert backend.servers == {}
    assert spawned[0].returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(spawned[0].pid, 0)


def test_two_streams_at_once_both_finish(tmp_path, gemma_path):
    """llama_cpp.server cuts a running stream short when another request comes, unless told not to: two
    clients streaming at once (or a profiling run beside a user) each get a whole answer."""
    from concurrent.futures import ThreadPoolExecutor

    app = local_app(tmp_path)
    with running_gateway(app) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        client.chat.completions.create(model="routerd", messages=QUESTION, max_tokens=1)  # started

        def stream(text: str) -> tuple[str, list[str]]:
            content, finishes = [], []
            for chunk in client.chat.completions.create(
                model="routerd", messages=[{"role": "user", "content": text}], max_tokens=12, stream=True
            ):
                for choice in chunk.choices:
                    content.append(choice.delta.content or "")
                    if choice.finish_reason:
                        finishes.append(choice.finish_reason)
            return "".join(content), finishes

        with ThreadPoolExecutor(2) as pool:
            found = list(pool.map(stream, ["Tell me a story about a cat.", "Tell me a story about a dog."]))
    for text, finishes in found:
        assert finishes in (["length"], ["stop"]), (text, finishes)  # an end, not a stream cut short
        assert len(text.replace("\n\nModel: gemma-3-270m", "")) > 0
