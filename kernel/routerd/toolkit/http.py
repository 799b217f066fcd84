"""HTTP plumbing shared by backends: sessions, error mapping, stream readers."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec

from routerd.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
)

_decoder = msgspec.json.Decoder()
# The most characters of an upstream's message passed on to clients.
MESSAGE_LIMIT = 300
# A Python traceback's frame line, and the source line under it.
_FRAME = re.compile(r'^\s*File "[^"]*", line \d+')
# File paths: absolute POSIX paths of two parts or more, Windows drive paths, file: URLs.
_PATH = re.compile(r"(?:file://)?(?<![\w.:/-])(?:/[\w.@+~-]+){2,}/?|\b[A-Za-z]:\\[^\s'\"]+")
# Where the first sentence ends: a full stop (question or exclamation mark) before a space and a capital, or a new
# line. "3.5", "gpt-4.1", "x.py" and "e.g. this" do not end it.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])|\n")
# What servers say when a prompt does not fit the model's context window: OpenAI and vLLM ("This model's maximum
# context length is N tokens"), llama-cpp-python's server (the same, code context_length_exceeded; "Requested tokens
# (N) exceed context window of M" from its library), llama-server ("the request exceeds the available context
# size", type exceed_context_size_error), Ollama ("the input length exceeds the context length").
_CONTEXT_CODES = {"context_length_exceeded", "exceed_context_size_error"}
_CONTEXT_TEXT = re.compile(
    r"maximum context length|context[ _]length[ _]exceeded|exceeds? (?:the )?(?:available |model'?s? )?"
    r"context(?: window| size| length)|exceed context window|prompt is too long",
    re.IGNORECASE,
)
# A pydantic validation error (FastAPI servers such as llama-cpp-python's answer one with a 500): the request's fault.
_VALIDATION = re.compile(r"^\d+ validation errors?\b")
# What looks like a secret in an upstream's message: a bearer credential, an OpenAI-style key (sk-...,
# sk-proj-..., and the like), and the value after a word such as api_key, token or password.
_SECRET = re.compile(
    r"\bbearer\s+[^\s,;'\"]+"
    r"|\b(?:sk|pk|rk|ak)-[A-Za-z0-9_-]{8,}"
    r"|\b(?:api[_-]?key|access[_-]?token|token|secret|password|authorization)(\"?\s*[=:]\s*\"?)"
    r"(?:(?:bearer|basic)\s+)?[^\s,;'\"]+",
    re.IGNORECASE,
)
# Request headers that carry a backend's credentials: their values are redacted from its error messages verbatim.
SECRET_HEADERS = ("authorization", "x-api-key", "api-key", "proxy-authorization")
REDACTED = "<redacted>"


def new_session(
    base_url: str, *, headers: dict[str, str] | None = None, connect_timeout: float = 5.0, limit: int = 0
) -> aiohttp.ClientSession:
    """A session for one upstream: the connect timeout here; read timeouts (first token, idle, total) are the
    dispatcher's. The connection pool has no cap of its own by default (`limit` 0): the dispatcher's admission
    control (``dispatch.max_in_flight_per_backend``) bounds what one backend is sent, in the open, where a pool's
    cap would make requests over it wait unseen, the wait counted against their first-token timeout and a
    healthy backend blamed for it. No cookie jar: cookies one upstream answer sets must not ride along on every
    client's later requests."""
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
    if isinstance(exc, OSError) and exc.errno in (23, 24):  # ENFILE, EMFILE (aiohttp's connect errors are OSErrors)
        # the gateway is out of open files, not the backend at fault: no retry, not counted against it
        overloaded = BackendUnavailable(
            "the gateway is overloaded (out of open files); try again later", code="gateway_overloaded", retryable=False
        )
        overloaded.headers = {"Retry-After": "1"}
        return overloaded
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


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` without `secrets` (verbatim, and each one's last part: the key of a ``Bearer <key>`` value) and
    without anything that looks like a credential (`_SECRET`)."""
    for secret in secrets:
        for value in {secret, secret.rsplit(" ", 1)[-1]}:
            if len(value) >= 4:
                text = text.replace(value, REDACTED)
    return _SECRET.sub(_redacted, text)


def _redacted(match: re.Match[str]) -> str:
    separator = match.group(1)
    if separator is None:  # a bearer credential or a key: all of it goes
        word = match.group(0).split(None, 1)[0]
        return f"{word} {REDACTED}" if word.lower() in ("bearer", "basic") else REDACTED
    return match.group(0)[: match.start(1) - match.start(0)] + separator + REDACTED


def public_message(text: str, secrets: tuple[str, ...] = ()) -> str:
    """What of an upstream's error message may reach clients: its first sentence, without a Python traceback
    (the exception's own line is kept when the message is nothing else), without file paths, without secrets
    (`redact`: `secrets` verbatim and whatever looks like a credential), at most `MESSAGE_LIMIT` characters.
    Servers put tracebacks and paths in their messages (llama-cpp-python's server does for any unexpected
    exception); they tell clients nothing and show the server's insides. Some echo the request's headers, the
    operator's key among them."""
    text = redact(text, secrets)
    lines: list[str] = []
    source_line = False  # the line after a frame line is the frame's source code
    for raw in text.replace("\r", "").split("\n"):
        line = raw.strip()
        if _FRAME.match(raw):
            source_line = True
            continue
        if source_line and raw[:1].isspace():
            source_line = False
            continue
        source_line = False
        if line.startswith("Traceback (most recent call last)") or not line:
            continue
        lines.append(line)
    if not lines:
        return ""
    # Text before a traceback says most; a message that is only a traceback says it on its last line.
    before = text.split("Traceback (most recent call last)", 1)[0].strip()
    first = lines[0] if before or len(lines) == 1 else lines[-1]
    # A first line that introduces what follows ("1 validation error:") is read with the next.
    if first.endswith(":") and first is lines[0] and len(lines) > 1:
        first = f"{first} {lines[1]}"
    sentence = _SENTENCE_END.split(first, 1)[0].strip()
    sentence = _PATH.sub("<path>", sentence)
    if len(sentence) > MESSAGE_LIMIT:
        sentence = sentence[: MESSAGE_LIMIT - 3].rstrip() + "..."
    return sentence


def _error_object(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """The upstream's error object (OpenAI's ``{"error": {...}}``, FastAPI's ``{"detail": ...}``, Ollama's
    ``{"error": "..."}``) when it sent one, and its message text, raw."""
    try:
        data = _decoder.decode(body)
    except msgspec.DecodeError:
        return None, body[:4000].decode(errors="replace")
    if isinstance(data, dict):
        error = data.get("error", data.get("detail", data))
        if isinstance(error, dict):
            return error, str(error.get("message", error))
        return None, str(error)
    return None, str(data)


def is_context_length_refusal(error: dict[str, Any] | None, message: str) -> bool:
    """Whether an upstream's error says the prompt does not fit the model's context window."""
    if error is not None and (error.get("code") in _CONTEXT_CODES or error.get("type") in _CONTEXT_CODES):
        return True
    return bool(_CONTEXT_TEXT.search(message))


def sent_secrets(response: aiohttp.ClientResponse) -> tuple[str, ...]:
    """The credentials the request of `response` carried (its `SECRET_HEADERS`)."""
    headers = response.request_info.headers
    return tuple(headers[name] for name in SECRET_HEADERS if headers.get(name))


async def raise_for_status(
    backend: str, model: str, response: aiohttp.ClientResponse, *, secrets: tuple[str, ...] = ()
) -> None:
    """Map an upstream error status to the gateway's errors, with the upstream's message made fit for clients
    (`public_message`; the credentials the request carried, and `secrets`, redacted). A refusal for the context
    window's sake is `ContextLengthExceeded`, whatever the status (dispatch tries a model with a larger window);
    other 4xx are the client's mistake (`InvalidRequest`, not retried and not counted against the backend), and
    so is a 5xx that is a request validation error. 5xx, 429 and 408 let the dispatcher try another model."""
    status = response.status
    if status < 400:
        return
    error, raw = _error_object(await response.read())
    message = public_message(raw, secrets + sent_secrets(response)) or "no message"
    if status not in (401, 403, 404, 408, 429) and is_context_length_refusal(error, raw):
        raise ContextLengthExceeded(f"backend {backend} refused the request: {message}")
    if status == 404:
        raise ModelNotFound(f"backend {backend} does not serve {model}: {message}", code="model_not_found")
    if status in (400, 413, 422) or (status == 500 and _VALIDATION.match(message)):
        param = error.get("param") if error is not None and isinstance(error.get("param"), str) else None
        raise InvalidRequest(f"backend {backend} refused the request: {message}", param=param)
    if status in (401, 403):
        raise BackendError(f"backend {backend} refused our credentials ({status})")
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
