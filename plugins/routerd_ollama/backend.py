"""The `Backend` over Ollama's native REST API: ``/api/tags`` and ``/api/show`` for the catalog,
``/api/chat`` (JSON or NDJSON stream), ``/api/embed``, and ``/api/ps`` with ``keep_alive: 0``
to keep the loaded models within a VRAM budget. Ollama has no ``n``: ``n`` > 1 is ``n`` chat requests
(`routerd.toolkit.chat_choices`, `stream_choices`)."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import aiohttp
import msgspec

from routerd import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Embedding,
    EmbeddingResponse,
    GatewayError,
    ModelInfo,
    Usage,
)
from routerd.toolkit import (
    LoadedModel,
    UpstreamSession,
    chat_choices,
    choices_asked,
    ndjson_lines,
    plan_unloads,
    raise_for_status,
    stream_choices,
    transport_error,
)
from routerd_ollama.model_info import describe
from routerd_ollama.schemas import ChatLine, Embed, Running, RunningModel, Show, TagEntry, Tags
from routerd_ollama.translate import StreamTranslator, chat_body, completion_from

T = TypeVar("T")
_JSON = {"Content-Type": "application/json"}


def base_url(url: str) -> str:
    """The server's root: ``http://host:11434`` also when given with ``/api`` or ``/v1``."""
    root = url.rstrip("/")
    for suffix in ("/api", "/v1"):
        root = root.removesuffix(suffix)
    return root


def keep_alive_value(text: str | None) -> str | int | None:
    """``"10m"`` stays a duration; ``"0"`` or ``"-1"`` are sent as numbers (seconds), as Ollama takes them."""
    if text is None or not text.strip():
        return None
    return int(text) if re.fullmatch(r"\s*-?\d+\s*", text) else text.strip()


class OllamaBackend(UpstreamSession):
    """Models are Ollama's names behind `model_prefix`. With `vram_budget` (bytes) or
    `max_loaded` set, `make_room` unloads the least recently used models before a model that
    is not loaded yet is used, never `pinned` (a catalog name)."""

    def __init__(
        self,
        name: str,
        url: str,
        *,
        keep_alive: str | None = None,
        vram_budget: int | None = None,
        max_loaded: int | None = None,
        model_prefix: str = "",
        pinned: str | None = None,
        connect_timeout: float = 5.0,
        ps_ttl: float = 1.0,
        log: logging.Logger | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url(url)
        self.keep_alive = keep_alive_value(keep_alive)
        self.vram_budget = vram_budget
        self.max_loaded = max_loaded
        self.model_prefix = model_prefix
        self.pinned = pinned.removeprefix(f"{name}/") if pinned else None
        self.ps_ttl = ps_ttl
        self.log = log or logging.getLogger(f"routerd.plugin.{name}")
        self._connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None
        self._shown: dict[str, Show] = {}  # by digest: a model is shown once
        self._sizes: dict[str, int] = {}  # Ollama name -> bytes of its files
        self._last_used: dict[str, float] = {}  # Ollama name -> time.monotonic()
        self._running: tuple[float, list[RunningModel]] | None = None  # /api/ps, briefly cached
        self._room = asyncio.Lock()

    async def _call(self, method: str, path: str, subject: str, body: Any, kind: type[T]) -> T:
        """One JSON request; every failure becomes a gateway error naming `subject`."""
        data = None if body is None else msgspec.json.encode(body)
        try:
            async with self.session.request(method, path, data=data, headers=_JSON if data else None) as response:
                await raise_for_status(self.name, subject, response)
                return msgspec.json.decode(await response.read(), type=kind)
        except GatewayError:  # ModelNotFound, InvalidRequest: transport_error would hide them
            raise
        except Exception as exc:
            raise transport_error(self.name, exc) from exc

    def _touch(self, model: str) -> None:
        self._last_used[self.upstream_model(model)] = time.monotonic()

    # -- catalog -----------------------------------------------------------------------------
    async def _show(self, key: str, tag: TagEntry) -> Show | None:
        if key in self._shown:
            return self._shown[key]
        try:
            show = await self._call("POST", "api/show", tag.name, {"model": tag.name}, Show)
        except (BackendUnavailable, BackendTimeout):
            raise
        except GatewayError as exc:
            self.log.warning("Ollama model %s: /api/show failed (%s); described by its name", tag.name, exc)
            return None
        self._shown[key] = show
        return show

    async def list_models(self) -> list[ModelInfo]:
        tags = await self._call("GET", "api/tags", "models", None, Tags)
        by_digest: dict[str, TagEntry] = {}
        for tag in tags.models:  # names of one model (``llama3.2:latest``, ``llama3.2:3b``) share a digest
            by_digest.setdefault(tag.digest or tag.name, tag)
        shown = await asyncio.gather(*(self._show(key, tag) for key, tag in by_digest.items()))
        shows = dict(zip(by_digest, shown, strict=True))
        self._shown = {key: show for key, show in self._shown.items() if key in by_digest}
        self._sizes = {tag.name: tag.size for tag in tags.models if tag.size}
        return [describe(self.model_prefix + t.name, self.name, t, shows[t.digest or t.name]) for t in tags.models]

    # -- memory ------------------------------------------------------------------------------
    async def _loaded(self) -> list[RunningModel]:
        """``GET /api/ps``, at most once every `ps_ttl` seconds."""
        now = time.monotonic()
        if self._running is not None and now - self._running[0] < self.ps_ttl:
            return self._running[1]
        running = await self._call("GET", "api/ps", "running models", None, Running)
        self._running = (now, running.models)
        return running.models

    async def _size_of(self, upstream: str) -> int:
        if upstream not in self._sizes:
            tags = await self._call("GET", "api/tags", "models", None, Tags)
            self._sizes = {tag.name: tag.size for tag in tags.models if tag.size}
        return self._sizes.get(upstream, 0)

    async def make_room(self, model: str) -> None:
        """Before `model` is used: when Ollama has not loaded it, unload least recently used
        models until it fits `vram_budget` and `max_loaded` (never the pinned one). A failure
        here is logged, and the request goes on: Ollama itself may still manage."""
        if self.vram_budget is None and self.max_loaded is None:
            return
        upstream = self.upstream_model(model)
        async with self._room:
            try:
                running = await self._loaded()
                if any(upstream in (m.name, m.model) for m in running):
                    return
                needed = await self._size_of(upstream)
                loaded = [
                    LoadedModel(self.model_prefix + m.name, m.size_vram, self._last_used.get(m.name, 0.0))
                    for m in running
                ]
                victims = plan_unloads(
                    loaded,
                    budget_bytes=self.vram_budget,
                    needed_bytes=needed,
                    pinned=self.pinned,
                    max_loaded=self.max_loaded,
                )
                for victim in victims:
                    self.log.info("unloading Ollama model %s to make room for %s", victim, model)
                    await self.unload(victim)
            except GatewayError as exc:
                self.log.warning("could not make room for %s on %s: %s", model, self.name, exc)
                return
            if self._running is not None:  # count it as loaded until /api/ps is asked again
                self._running[1].append(RunningModel(upstream, upstream, needed, needed))

    async def unload(self, model: str) -> None:
        upstream = self.upstream_model(model)
        await self._call("POST", "api/generate", model, {"model": upstream, "keep_alive": 0}, dict)
        self._last_used.pop(upstream, None)
        if self._running is not None:
            self._running[1][:] = [m for m in self._running[1] if upstream not in (m.name, m.model)]

    # -- Backend -----------------------------------------------------------------------------
    async def chat(self, model: str, request: ChatRequest) -> ChatCompletion:
        if choices_asked(request) > 1:
            return await chat_choices(lambda one: self._chat(model, one), request)
        return await self._chat(model, request)

    async def _chat(self, model: str, request: ChatRequest) -> ChatCompletion:
        body = chat_body(self.upstream_model(model), request, stream=False, keep_alive=self.keep_alive)
        await self.make_room(model)
        self._touch(model)
        try:
            answer = await self._call("POST", "api/chat", model, body, ChatLine)
        finally:
            self._touch(model)
        return completion_from(answer, model)

    def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        if choices_asked(request) > 1:
            return stream_choices(lambda one: self._stream(model, one), request)
        return self._stream(model, request)

    async def _stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        body = chat_body(self.upstream_model(model), request, stream=True, keep_alive=self.keep_alive)
        await self.make_room(model)
        self._touch(model)
        translator = StreamTranslator(model)
        try:
            async with self.session.post("api/chat", data=msgspec.json.encode(body), headers=_JSON) as response:
                await raise_for_status(self.name, model, response)
                async for raw in ndjson_lines(response):
                    for chunk in translator.feed(msgspec.convert(raw, ChatLine)):
                        yield chunk
                    self._touch(model)
                    if translator.finished:
                        return
            raise BackendError(f"backend {self.name} ended the stream before it was done")
        except GatewayError:
            raise
        except Exception as exc:
            raise transport_error(self.name, exc) from exc
        finally:
            self._touch(model)

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResponse:
        body: dict[str, Any] = {"model": self.upstream_model(model), "input": inputs}
        if self.keep_alive is not None:
            body["keep_alive"] = self.keep_alive
        await self.make_room(model)
        self._touch(model)
        try:
            answer = await self._call("POST", "api/embed", model, body, Embed)
        finally:
            self._touch(model)
        if len(answer.embeddings) != len(inputs):
            raise BackendError(f"backend {self.name} sent {len(answer.embeddings)} embeddings for {len(inputs)} inputs")
        tokens = answer.prompt_eval_count
        return EmbeddingResponse(
            data=[Embedding(index=i, embedding=vector) for i, vector in enumerate(answer.embeddings)],
            model=model,
            usage=Usage(prompt_tokens=tokens, total_tokens=tokens),
        )
