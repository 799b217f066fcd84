"""HTTP plumbing shared by backends: sessions, error mapping, stream readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from routerd.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
)

_decoder = msgspec.json.Decoder()


def new_session(
    base_url: str, *, headers: dict[str, str] | None = None, connect_timeout: float = 5.0, limit: int = 256
) -> aiohttp.ClientSession:
    """A session for one upstream: a bounded connection pool, the connect timeout here; read
    timeouts (first token, idle, total) are the dispatcher's. No cookie jar: cookies one
    upstream answer sets must not ride along on every client's later requests."""
    return aiohttp.ClientSession(
        base_url=base_url.rstrip("/") + "/",
        headers=headers,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, connect=connect_timeout),
        connector=aiohttp.TCPConnector(limit=limit, ttl_dns_cache=300),
        json_serialize=lambda obj: msgspec.json.encode(obj).decode(),
        auto_decompress=True,
    )


def transport_error(backend: str, exc: BaseException) -> GatewayError:
    """A gateway error for an exception raised while talking to `backend` (the gateway errors
    `raise_for_status` raised pass through unchanged)."""
    if isinstance(exc, GatewayError):
        return exc
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return BackendTimeout(f"backend {backend} timed out")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return BackendUnavailable(f"backend {backend} is unreachable")
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ServerDisconnectedError):
        return BackendUnavailable(f"backend {backend} closed the connection")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return BackendUnavailable(f"backend {backend} failed: {type(exc).__name__}")
    if isinstance(exc, msgspec.DecodeError | msgspec.ValidationError | ValueError | KeyError | TypeError):
        return BackendError(f"backend {backend} sent a malformed response")
    return BackendError(f"backend {backend} failed: {type(exc).__name__}")


def _upstream_message(body: bytes) -> str:
    try:
        data = _decoder.decode(body)
    except msgspec.DecodeError:
        return body[:200].decode(errors="replace").strip()
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data))
        if isinstance(error, dict):
            return str(error.get("message", error))[:500]
        return str(error)[:500]
    return str(data)[:200]


async def raise_for_status(backend: str, model: str, response: aiohttp.ClientResponse) -> None:
    """Map an upstream error status to the gateway's errors. 5xx, 429 and 408 let the dispatcher
    try another model; a 400 is the client's mistake and is not retried."""
    status = response.status
    if status < 400:
        return
    message = _upstream_message(await response.read())
    if status == 404:
        raise ModelNotFound(f"backend {backend} does not serve {model}: {message}", code="model_not_found")
    if status in (400, 413, 422):
        raise InvalidRequest(f"backend {backend} refused the request: {message}")
    if status in (401, 403):
        error = BackendError(f"backend {backend} refused our credentials ({status})")
        raise error
    if status in (408, 429) or status >= 500:
        raise BackendUnavailable(f"backend {backend} answered {status}: {message}")
    raise BackendError(f"backend {backend} answered {status}: {message}")


# The longest line of an event stream we accept (a line longer than this is a malformed stream).
MAX_SSE_LINE = 1024 * 1024


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The ``data:`` payloads of a server-sent-events stream, until ``[DONE]`` or its end.

    It reads whatever has arrived and splits it into lines itself: one wait per network read,
    not one per line, which is most of the cost of relaying a fast stream."""
    data: list[bytes] = []
    rest = b""
    async for block in response.content.iter_any():
        lines = (rest + block).split(b"\n") if rest else block.split(b"\n")
        rest = lines.pop()  # an unfinished line, completed by the next read
        if len(rest) > MAX_SSE_LINE:
            raise ValueError("an event stream line is too long")
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:
                if data:
                    payload = b"\n".join(data)
                    data = []
                    if payload.strip() == b"[DONE]":
                        return
                    yield payload
                continue
            if line.startswith(b"data:"):
                data.append(line[5:].lstrip(b" "))
    line = rest.rstrip(b"\r")
    if line.startswith(b"data:"):
        data.append(line[5:].lstrip(b" "))
    if data and b"\n".join(data).strip() != b"[DONE]":
        yield b"\n".join(data)


async def ndjson_lines(response: aiohttp.ClientResponse) -> AsyncIterator[Any]:
    """Decoded objects of a newline-delimited JSON stream (Ollama's)."""
    async for raw in response.content:
        line = raw.strip()
        if line:
            yield _decoder.decode(line)


class UpstreamSession:
    """The HTTP session of one backend: opened by ``start()``, closed by ``close()``. Subclasses
    set `name`, `base_url`, `model_prefix` and `_connect_timeout` (and may set `_headers`)."""

    name: str
    base_url: str
    model_prefix: str = ""
    _connect_timeout: float = 5.0
    _headers: dict[str, str] | None = None
    _session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = new_session(self.base_url, headers=self._headers, connect_timeout=self._connect_timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise BackendError(f"backend {self.name} is not started")
        return self._session

    def upstream_model(self, model: str) -> str:
        """The upstream's own name for one of this backend's models."""
        return model.removeprefix(self.model_prefix)
