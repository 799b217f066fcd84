"""The models the gateway serves, for plugins to call (``context.models``).

A plugin that needs a model itself (an LLM judge grading answers, a semantic cache embedding
prompts) calls one by its catalog name: the request goes straight to that model through the
gateway's dispatcher, with its timeouts and circuit breakers, but without routing, without a
routing decision in the audit log, without the signature, and without counting as a client's
request. It is usable once the gateway has started (the first discovery has run), from request
methods and background tasks; before that, and after the gateway stops, calls raise
`routerd.BackendUnavailable`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import msgspec

from routerd.errors import BackendUnavailable, InvalidRequest, ModelNotFound
from routerd.schemas.catalog import ModelInfo
from routerd.schemas.openai import ChatCompletion, ChatCompletionChunk, ChatRequest, EmbeddingResponse

if TYPE_CHECKING:
    from routerd.catalog import Catalog, CatalogEntry
    from routerd.dispatch import Dispatcher


class ServedModels:
    """Call a model the gateway serves by its catalog name (see the module's docstring)."""

    def __init__(self, catalog: Catalog, dispatcher: Dispatcher) -> None:
        self._catalog = catalog
        self._dispatcher = dispatcher
        self.ready = False  # set by the gateway once it has started, cleared when it stops
        self.watchers: list[Callable[[set[str], set[str]], None]] = []

    def names(self) -> list[str]:
        """The catalog names of every model served now."""
        return [entry.id for entry in self._catalog]

    def all(self) -> list[ModelInfo]:
        """What the catalog knows of every model served now (``info.id`` is its catalog name)."""
        return [entry.info for entry in self._catalog]

    def watch(self, callback: Callable[[set[str], set[str]], None]) -> None:
        """Call `callback(appeared, vanished)` (catalog names) after each discovery that changed the catalog.
        It runs on the event loop and must return at once (start a task for slow work)."""
        self.watchers.append(callback)

    async def recorded(self) -> list[ModelInfo]:
        """Every model the gateway's database has recorded (by any replica, served now or not): for plugins that
        keep figures of models before or after they are served."""
        return await self._catalog.recorded()

    def get(self, model: str) -> ModelInfo | None:
        """What the catalog knows of `model` (capabilities, size, context window), or None."""
        entry = self._catalog.get(model)
        return entry.info if entry is not None else None

    def _entry(self, model: str) -> CatalogEntry:
        if not self.ready:
            raise BackendUnavailable("the gateway has not started (or has stopped): no model can be called now")
        entry = self._catalog.get(model)
        if entry is None:
            raise ModelNotFound(f"the gateway serves no model named {model!r}", code="model_not_found")
        return entry

    async def chat(self, model: str, request: ChatRequest) -> ChatCompletion:
        """A whole completion of `request` from `model` (``request.model`` and ``stream`` are
        ignored: the answer is never streamed). Raises the gateway's errors: `ModelNotFound`,
        `BackendUnavailable`, `BackendTimeout` (after ``dispatch.generation_timeout``),
        `BackendError`, `InvalidRequest` (the model refused the request, or cannot chat)."""
        entry = self._entry(model)
        if entry.info.capabilities.chat is False:
            raise InvalidRequest(f"the model {model!r} is not a chat model", code="model_incapable")
        if request.stream:
            request = msgspec.structs.replace(request, stream=False)
        completion, _ = await self._dispatcher.chat([entry], request)
        return completion

    async def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        """The completion of `request` from `model` as it is generated (``request.stream`` is ignored): the
        dispatcher's first-token, idle and total timeouts apply, and errors are raised as for `chat`. Close the
        iterator (``contextlib.aclosing``) to stop the upstream request early."""
        entry = self._entry(model)
        if entry.info.capabilities.chat is False:
            raise InvalidRequest(f"the model {model!r} is not a chat model", code="model_incapable")
        if not request.stream:
            request = msgspec.structs.replace(request, stream=True)
        start = await self._dispatcher.start_stream([entry], request)
        relayed = self._dispatcher.relay(start)
        try:
            yield start.first
            async for chunk in relayed:
                yield chunk
        finally:
            await relayed.aclose()
            close = getattr(start.rest, "aclose", None)  # when the relay never ran, it did not close the stream
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResponse:
        """One embedding per input, in order, from `model`. The backend decides whether the model
        embeds (as for ``POST /v1/embeddings`` naming it): many chat models served by llama.cpp do,
        whatever their name suggests, and a plugin names its embedding model on purpose."""
        entry = self._entry(model)
        result, _ = await self._dispatcher.embed([entry], inputs)
        return result
