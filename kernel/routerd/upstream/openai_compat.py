"""A complete `Backend` for any server that speaks the OpenAI API (OpenAI itself, vLLM, llama.cpp's
server, llama-swap, LM Studio, ...). Plugins configure it: base URL, key, model prefix.

Every stream asks the server for its token counts (``stream_options.include_usage``), whether or not
the client did, so that the audit log and costs have the server's figures rather than an estimate;
the relay passes the usage chunk on only to clients that asked for it. A server that refuses the
field (a 400 naming ``stream_options``, as older Azure OpenAI API versions answer) is asked again
without it, and never with it again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import msgspec
from aiohttp.payload import BytesPayload
from yarl import URL

from routerd.errors import BackendError
from routerd.schemas.catalog import Capabilities, ModelInfo
from routerd.schemas.openai import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatRequest,
    Embedding,
    EmbeddingResponse,
    StreamOptions,
    Usage,
)
from routerd.upstream.http import UpstreamSession, raise_for_status, sse_events, transport_error

_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_completion_decoder = msgspec.json.Decoder(ChatCompletion)
_any_decoder = msgspec.json.Decoder()
_WITH_USAGE = StreamOptions(include_usage=True)
log = logging.getLogger("routerd.upstream")


class _RawEmbedding(msgspec.Struct):
    index: int
    embedding: list[Any]  # floats, or per-token lists of floats (llama.cpp without pooling)


class _RawEmbeddingResponse(msgspec.Struct):
    data: list[_RawEmbedding]
    usage: Usage | None = None


def mean_pool(vectors: list[list[float]]) -> list[float]:
    """One vector from per-token vectors (llama.cpp servers without pooling return those)."""
    count = len(vectors)
    return [sum(column) / count for column in zip(*vectors, strict=True)]


def _context_window(entry: dict[str, Any]) -> int | None:
    for key in ("context_length", "max_model_len", "context_window", "max_context_length"):
        if isinstance(entry.get(key), int):
            return entry[key]
    meta = entry.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("n_ctx_train"), int):
        return meta["n_ctx_train"]
    return None


def _capabilities(entry: dict[str, Any], tools: bool | None) -> Capabilities:
    """What a ``GET /models`` entry says the model can do: ``architecture.input_modalities``
    (OpenRouter, and llama-server since 2025) tells vision; OpenRouter's ``supported_parameters``
    tells tools; otherwise `tools` (the backend's setting) or unknown, for the name to decide."""
    vision = None
    architecture = entry.get("architecture")
    if isinstance(architecture, dict) and isinstance(architecture.get("input_modalities"), list):
        vision = "image" in architecture["input_modalities"]
    supported = entry.get("supported_parameters")
    if isinstance(supported, list):
        tools = "tools" in supported
    return Capabilities(vision=vision, tools=tools)


def _stream_error(backend: str, payload: bytes) -> BackendError:
    """The error an upstream reported inside its stream, or a malformed-chunk error."""
    try:
        data = _any_decoder.decode(payload)
    except msgspec.DecodeError:
        data = None
    if isinstance(data, dict) and "error" in data:
        error = data["error"]
        message = error.get("message", error) if isinstance(error, dict) else error
        return BackendError(f"backend {backend} failed mid-stream: {str(message)[:300]}")
    return BackendError(f"backend {backend} sent a malformed stream chunk")


class OpenAICompatibleBackend(UpstreamSession):
    """`Backend` over an OpenAI-compatible HTTP API.

    Model names are the upstream's ids behind `model_prefix` (``openai/gpt-4o``), so several
    such backends can share a catalog. `list_models` reports what the server's ``GET /models``
    says (context window, vision, tools) and leaves the rest unknown for the catalog to fill in
    from the name; `describe(info, entry)` may add what a particular server's entry says.
    `tools` states whether the server's models call tools (None: the name decides).
    """

    def __init__(
        self,
        name: str,
        base_url: str,
        *,
        api_key: str | None = None,
        model_prefix: str = "",
        connect_timeout: float = 5.0,
        tools: bool | None = None,
        describe: Callable[[ModelInfo, dict[str, Any]], ModelInfo] | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.model_prefix = model_prefix
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._connect_timeout = connect_timeout
        self._tools = tools
        self._describe = describe
        self._session: aiohttp.ClientSession | None = None
        # Absolute URLs built once (not joined to the session's base URL on every request).
        self._chat_url = URL(f"{self.base_url}/chat/completions")
        self.stream_usage = True  # ask for usage in every stream, until the server refuses the field

    # -- Backend -----------------------------------------------------------------------------
    async def list_models(self) -> list[ModelInfo]:
        try:
            async with self.session.get("models") as response:
                await raise_for_status(self.name, "models", response)
                body = _any_decoder.decode(await response.read())
            entries = body["data"] if isinstance(body, dict) else body
            models = []
            for entry in entries:
                ident = str(entry["id"])
                info = ModelInfo(
                    name=self.model_prefix + ident,
                    backend=self.name,
                    context_window=_context_window(entry),
                    capabilities=_capabilities(entry, self._tools),
                )
                models.append(self._describe(info, entry) if self._describe else info)
            return models
        except Exception as exc:
            raise transport_error(self.name, exc) from exc

    def _body(self, model: str, request: ChatRequest, stream: bool) -> BytesPayload:
        changes: dict[str, Any] = {"model": self.upstream_model(model), "stream": stream}
        if stream:
            changes["stream_options"] = _WITH_USAGE if self.stream_usage else msgspec.UNSET
        upstream = msgspec.structs.replace(request, **changes)
        return BytesPayload(msgspec.json.encode(upstream), content_type="application/json")

    async def chat(self, model: str, request: ChatRequest) -> ChatCompletion:
        try:
            async with self.session.post(self._chat_url, data=self._body(model, request, False)) as response:
                await raise_for_status(self.name, model, response)
                completion = _completion_decoder.decode(await response.read())
        except Exception as exc:
            raise transport_error(self.name, exc) from exc
        return msgspec.structs.replace(completion, model=model)

    async def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        try:
            while True:
                asked_usage = self.stream_usage
                async with self.session.post(self._chat_url, data=self._body(model, request, True)) as response:
                    # (read() keeps the body, so raise_for_status can read it again)
                    if asked_usage and response.status == 400 and b"stream_options" in await response.read():
                        self.stream_usage = False
                        log.info("backend %s refuses stream_options: its streams' usage will be estimated", self.name)
                        continue
                    await raise_for_status(self.name, model, response)
                    async for payload in sse_events(response):
                        try:
                            chunk = _chunk_decoder.decode(payload)
                        except msgspec.ValidationError:
                            raise _stream_error(self.name, payload) from None
                        chunk.model = model
                        yield chunk
                    return
        except GeneratorExit:
            raise
        except Exception as exc:
            raise transport_error(self.name, exc) from exc

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResponse:
        body = {"model": self.upstream_model(model), "input": inputs}
        try:
            async with self.session.post("embeddings", json=body) as response:
                await raise_for_status(self.name, model, response)
                raw = msgspec.json.decode(await response.read(), type=_RawEmbeddingResponse)
        except Exception as exc:
            raise transport_error(self.name, exc) from exc
        data = []
        for item in sorted(raw.data, key=lambda d: d.index):
            vector = item.embedding
            if vector and isinstance(vector[0], list):
                vector = mean_pool(vector)  # type: ignore[arg-type]
            data.append(Embedding(index=item.index, embedding=vector))  # type: ignore[arg-type]
        tokens = raw.usage or Usage(prompt_tokens=sum(len(t.split()) for t in inputs))
        tokens.total_tokens = tokens.total_tokens or tokens.prompt_tokens
        return EmbeddingResponse(data=data, model=model, usage=tokens)

    async def unload(self, model: str) -> None:
        """OpenAI-compatible servers manage their own memory."""
