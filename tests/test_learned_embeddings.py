"""The learned scorer's neighbour model with real embeddings: from a model a backend serves (the bundled Gemma 3
270M behind a real llama.cpp server, ``routing.embed_model``) and from the local all-MiniLM-L6-v2 (the extra
``embeddings``). Requests never wait long for an embedding: the lexical model answers first, and the neighbours
join once the prompt's embedding is at hand."""

from __future__ import annotations

import contextlib
import time

import httpx
import openai
import pytest

import routing_data
from routerd.testing import TEST_ADMIN_KEY, build_app
from servers import ReplayState, replay_server, running_gateway

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
NAMES = {"tiny": "tiny-0.5b", "small": "small-3b", "medium": "medium-8b", "large": "large-32b"}
PROMPT = (
    "Write a Go function that implements an LRU cache. It must handle edge cases, run in O(n log n) and include "
    "unit tests."
)


@contextlib.contextmanager
def gateway(tmp_path, **config):
    data = routing_data.write(tmp_path / "outcomes.jsonl", 80)
    with replay_server(ReplayState(models=list(NAMES.values()))) as url:
        plugins = config.pop("plugins", {})
        learned = {"data": [str(data)], "model_names": NAMES, **plugins.pop("learned", {})}
        settings = {"plugins": {"openai": {"base_url": url}, "learned": learned, **plugins}, **config}
        app = build_app(tmp_path, settings)
        with running_gateway(app) as base:
            yield base, app


def learned_reasons(base: str, client) -> tuple[str, dict[str, str]]:
    raw = client.chat.completions.with_raw_response.create(
        model="routerd", messages=[{"role": "user", "content": PROMPT}]
    )
    explained = httpx.get(f"{base}/admin/decisions/{raw.headers['x-routerd-decision-id']}", headers=ADMIN).json()
    reasons = {
        c["model"]: c["contributions"]["learned"]["reason"]
        for c in explained["candidates"]
        if "learned" in c.get("contributions", {})
    }
    return raw.headers["x-routerd-model"], reasons


def neighbours_join(base: str, app, seconds: float = 120.0) -> tuple[list[dict[str, str]], str]:
    learned = app.state.gateway.plugins.registry.scorers["learned"]
    deadline = time.monotonic() + seconds
    while learned.trained is None or learned.trained.neighbours is None:
        assert time.monotonic() < deadline, "the neighbour index was not built"
        time.sleep(0.1)
    client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
    seen, model = [], None
    while time.monotonic() < deadline:
        model, reasons = learned_reasons(base, client)
        seen.append(reasons)
        if "similar prompts" in reasons.get(NAMES["large"], ""):
            return seen, model
        time.sleep(0.2)  # the background embedding of this prompt finishes
    raise AssertionError(f"the neighbours never joined: {seen[-1]}")


def test_neighbours_over_embeddings_from_the_real_gemma_270m_behind_llama_cpp(tmp_path, llama_server):
    config = {
        "routing": {"embed_model": "gemma-3-270m"},
        "plugins": {"llamacpp": {"url": llama_server}, "diversity": {"enabled": False}},
    }
    with gateway(tmp_path, **config) as (base, app):
        learned = app.state.gateway.plugins.registry.scorers["learned"]
        assert learned.embedder is app.state.gateway.embedder  # "auto" took the gateway's embedder
        seen, model = neighbours_join(base, app)
        vectors = learned.trainer.store.vectors
    assert "similar prompts" not in seen[0].get(NAMES["large"], "")  # the first request did not wait for it
    assert model == NAMES["large"]
    assert len(vectors) == learned.trained.prompts  # every training prompt embedded once, kept in the store
    assert next(iter(vectors.values())).shape == (640,)  # Gemma 3 270M's embedding width
    assert (tmp_path / "plugins" / "learned" / "embeddings-gateway_gemma-3-270m.npz").exists()


def test_neighbours_over_the_local_minilm(tmp_path, embeddings_extra):
    with gateway(tmp_path, plugins={"learned": {"embedder": "local"}, "diversity": {"enabled": False}}) as (base, app):
        seen, model = neighbours_join(base, app, seconds=300)
        learned = app.state.gateway.plugins.registry.scorers["learned"]
        dimension = next(iter(learned.trainer.store.vectors.values())).shape
    assert model == NAMES["large"]
    assert dimension == (384,)
    reason = seen[-1][NAMES["large"]]
    assert reason.startswith("predicted 0.") and "similar prompts" in reason and "prompts with known outcomes" in reason


def test_an_embedding_ready_within_the_wait_serves_the_first_request(tmp_path):
    """The fake backend embeds at once (hashed bytes, not meaning): well within the 15 ms a request waits for a
    backend-served embedding, so the neighbours join the very first decision."""
    from routerd.testing import FAKE_PLUGIN

    data = routing_data.write(tmp_path / "outcomes.jsonl", 40)
    models = [{"name": n, "parameters": p} for n, p in (("tiny-0.5b", 500_000_000), ("large-32b", 32_000_000_000))]
    config = {
        "routing": {"embed_model": "fake-embed"},
        "plugins": {
            "fake": {"models": [*models, {"name": "fake-embed", "embeddings": True}]},
            "learned": {"data": [str(data)], "model_names": {"tiny": "tiny-0.5b", "large": "large-32b"}},
        },
    }
    app = build_app(tmp_path, config, [FAKE_PLUGIN])
    with running_gateway(app) as base:
        learned = app.state.gateway.plugins.registry.scorers["learned"]
        deadline = time.monotonic() + 60
        while learned.trained is None or learned.trained.neighbours is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0)
        _, reasons = learned_reasons(base, client)
    assert learned.embeddings.wait == pytest.approx(0.015)
    assert "similar prompts" in reasons["large-32b"]
