"""A complete `Backend` for any server that speaks the OpenAI API (OpenAI itself, vLLM, llama.cpp's
server, llama-swap, LM Studio, ...). Plugins configure it: base URL, key, model prefix.

Every stream asks the server for its token counts (``stream_options.include_usage``), whether or not
the client did, so that the audit log and costs have the server's figures rather than an estimate;
the relay passes the usage chunk on only to clients that asked for it.

Optional fields (`OPTIONAL_FIELDS`: ``stream_options`` and the newer standard parameters such as
``reasoning_effort``) are what some servers or models refuse: older Azure OpenAI API versions
answer 400 "Unrecognized request argument supplied: stream_options", OpenAI answers 400
"Unsupported parameter: 'reasoning_effort' is not supported with this model" for a model that does
not reason. Routing may pick such a model, so a 400 that names optional fields the request carried
is answered by asking again without them; the model is then never sent them again (until restart).

Servers that differ from OpenAI's API in other ways say so with a `Dialect` (`routerd.toolkit.dialect`): the
request is rewritten for them (``max_completion_tokens`` as ``max_tokens``, a JSON schema as llama.cpp takes it,
...), and where they answer one choice, ``n`` > 1 is several requests (`routerd.toolkit.choices`).
`default_max_tokens` caps the answer of a request that sets no limit of its own.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import msgspec
from aiohttp.payload import BytesPayload
from yarl import URL

from routerd.errors import BackendError, ContextLengthExceeded
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
from routerd.toolkit.choices import chat_choices, stream_choices
from routerd.toolkit.dialect import OPENAI, Dialect, adapt, choices_asked
from routerd.toolkit.http import (
    UpstreamSession,
    is_context_length_refusal,
    public_message,
    raise_for_status,
    sse_events,
    transport_error,
)

_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)
_completion_decoder = msgspec.json.Decoder(ChatCompletion)
_any_decoder = msgspec.json.Decoder()
_WITH_USAGE = StreamOptions(include_usage=True)
# Request fields a server or a model may refuse, which the answer can do without.
OPTIONAL_FIELDS = (
    "stream_options",
    "reasoning_effort",
    "verbosity",
    "service_tier",
    "store",
    "metadata",
    "prompt_cache_key",
    "safety_identifier",
    "prediction",
    "web_search_options",
)
_FIELD_NAMES = {name: re.compile(rf"(?<![A-Za-z0-9_]){name}(?![A-Za-z0-9_])") for name in OPTIONAL_FIELDS}
log = logging.getLogger("routerd.toolkit")


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


def _named_fields(body: bytes, sent: list[str]) -> frozenset[str]:
    """The fields of `sent` an error answer names: its ``param`` (OpenAI's errors have one), else any of them
    its message mentions as a word."""
    try:
        data = _any_decoder.decode(body)
    except msgspec.DecodeError:
        data = None
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        if error.get("param") in sent:
            return frozenset([error["param"]])
        text = str(error.get("message", ""))
    else:
        text = body[:2000].decode(errors="replace")
    return frozenset(name for name in sent if _FIELD_NAMES[name].search(text))


def _stream_error(backend: str, payload: bytes, secrets: tuple[str, ...] = ()) -> BackendError | ContextLengthExceeded:
    """The error an upstream reported inside its stream (its `secrets` redacted), or a malformed-chunk error."""
    try:
        data = _any_decoder.decode(payload)
    except msgspec.DecodeError:
        data = None
    if isinstance(data, dict) and "error" in data:
        error = data["error"]
        message = str(error.get("message", error) if isinstance(error, dict) else error)
        if is_context_length_refusal(error if isinstance(error, dict) else None, message):
            return ContextLengthExceeded(f"backend {backend} refused the request: {public_message(message, secrets)}")
        text = public_message(message, secrets) or "no message"
        return BackendError(f"backend {backend} failed mid-stream: {text}")
    return BackendError(f"backend {backend} sent a malformed stream chunk")


class OpenAICompatibleBackend(UpstreamSession):
    """`Backend` over an OpenAI-compatible HTTP API.

    Model names are the upstream's ids behind `model_prefix` (``openai/gpt-4o``), so several
    such backends can share a catalog. `list_models` reports what the server's ``GET /models``
    says (context window, vision, tools) and leaves the rest unknown for the catalog to fill in
    from the name; `describe(info, entry)` may add what a particular server's entry says.
    `tools` states whether the server's models call tools (None: the name decides). `dialect` says how the
    server differs from OpenAI's API (`OPENAI`: not at all); `default_max_tokens` is the most answer tokens of a
    request that sets neither ``max_tokens`` nor ``max_completion_tokens`` (None: the server's default).
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
        dialect: Dialect = OPENAI,
        default_max_tokens: int | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        self.model_prefix = model_prefix
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._secrets = (api_key,) if api_key else ()  # redacted from the upstream's error messages
        self._connect_timeout = connect_timeout
        self._tools = tools
        self._describe = describe
        self.dialect = dialect
        self.default_max_tokens = default_max_tokens
        self._rewrites = dialect != OPENAI or default_max_tokens is not None  # else requests go as they come
        self._session: aiohttp.ClientSession | None = None
        # Absolute URLs built once (not joined to the session's base URL on every request).
        self._chat_url = URL(f"{self.base_url}/chat/completions")
        self.refused: dict[str, frozenset[str]] = {}  # model -> the optional fields it refused

    # -- Backend -----------------------------------------------------------------------------
    async def list_models(self) -> list[ModelInfo]:
        try:
            async with self.session.get("models") as response:
                await raise_for_status(self.name, "models", response, secrets=self._secrets)
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

    def _body(self, model: str, request: ChatRequest, stream: bool) -> tuple[BytesPayload, ChatRequest]:
        """The upstream request's body, and the request it encodes."""
        refused = self.refused.get(model, frozenset())
        changes: dict[str, Any] = {"model": self.upstream_model(model), "stream": stream}
        if stream:
            changes["stream_options"] = msgspec.UNSET if "stream_options" in refused else _WITH_USAGE
        for name in refused:
            changes.setdefault(name, msgspec.UNSET)
        upstream = msgspec.structs.replace(request, **changes)
        return BytesPayload(msgspec.json.encode(upstream), content_type="application/json"), upstream

    async def _refuses(self, model: str, response: aiohttp.ClientResponse, upstream: ChatRequest) -> bool:
        """Whether `response` is a 400 that names optional fields `upstream` carried; if so, they are left out
        of this model's requests from now on. (read() keeps the body: raise_for_status can read it again.)"""
        if response.status != 400:
            return False
        sent = [name for name in OPTIONAL_FIELDS if getattr(upstream, name) is not msgspec.UNSET]
        if not sent:
            return False
        named = _named_fields(await response.read(), sent)
        if not named:
            return False
        self.refused[model] = self.refused.get(model, frozenset()) | named
        log.info("backend %s: %s refuses %s; asked again without", self.name, model, ", ".join(sorted(named)))
        return True

    @contextlib.asynccontextmanager
    async def _answer(self, model: str, request: ChatRequest, stream: bool) -> AsyncIterator[aiohttp.ClientResponse]:
        """The upstream's response to the chat request, once it is not an error; asked again without the
        optional fields a 400 names (`_refuses`)."""
        while True:
            body, upstream = self._body(model, request, stream)
            async with self.session.post(self._chat_url, data=body) as response:
                if await self._refuses(model, response, upstream):
                    continue
                await raise_for_status(self.name, model, response, secrets=self._secrets)
                yield response
                return

    def adapted(self, request: ChatRequest) -> ChatRequest:
        """The request as this backend's server takes it (its `dialect`, the default answer limit)."""
        if not self._rewrites:
            return request
        return adapt(request, self.dialect, default_max_tokens=self.default_max_tokens)

    async def chat(self, model: str, request: ChatRequest) -> ChatCompletion:
        if self.dialect.one_choice and choices_asked(request) > 1:
            return await chat_choices(lambda one: self._chat(model, one), request)
        return await self._chat(model, request)

    async def _chat(self, model: str, request: ChatRequest) -> ChatCompletion:
        request = self.adapted(request)
        try:
            async with self._answer(model, request, False) as response:
                completion = _completion_decoder.decode(await response.read())
        except Exception as exc:
            raise transport_error(self.name, exc) from exc
        return msgspec.structs.replace(completion, model=model)

    def stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        if self.dialect.one_choice and choices_asked(request) > 1:
            return stream_choices(lambda one: self._stream(model, one), request)
        return self._stream(model, request)

    async def _stream(self, model: str, request: ChatRequest) -> AsyncIterator[ChatCompletionChunk]:
        request = self.adapted(request)  # in the generator: a refusal is raised where the stream is read
        try:
            async with self._answer(model, request, True) as response:
                async for payload in sse_events(response):
                    try:
                        chunk = _chunk_decoder.decode(payload)
                    except msgspec.ValidationError:
                        raise _stream_error(self.name, payload, self._secrets) from None
                    chunk.model = model
                    yield chunk
        except GeneratorExit:
            raise
        except Exception as exc:
            raise transport_error(self.name, exc) from exc

    async def embed(self, model: str, inputs: list[str]) -> EmbeddingResponse:
        body = {"model": self.upstream_model(model), "input": inputs}
        try:
            async with self.session.post("embeddings", json=body) as response:
                await raise_for_status(self.name, model, response, secrets=self._secrets)
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
