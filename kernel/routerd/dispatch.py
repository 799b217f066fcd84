"""Calling backends: ordered fallbacks, timeouts, circuit breakers.

A request goes to the first model of the routing decision; when that model fails before the
first byte reaches the client (connect error, 5xx, timeout, malformed answer), the next is
tried, unless the backend raised a `BackendError` with ``retryable=False`` (no other model would
do better): then the client gets that error at once. Once bytes are on their way, a failure ends
the stream with an explicit error event.

A model whose context window the prompt does not fit (`ContextLengthExceeded`, which backends
raise for their upstream's refusal) is passed over for the next (a larger window may hold it);
when every model tried refused for length, the client gets the 400 ``context_length_exceeded`` of
the largest window. A model the backend no longer serves (`ModelNotFound`: a stale catalog) is
passed over too. Any other client error (`InvalidRequest`: the upstream's 400) goes to the client
at once.

Only backend failures count toward a backend's circuit breaker: errors, 5xx, timeouts, malformed
answers. The client's mistakes (`InvalidRequest`, `ContextLengthExceeded`), `ModelNotFound` and a
`BackendError` with ``retryable=False`` never do, before the first byte or mid-stream.

Timeouts: the backend's own connect timeout; `first_token_timeout` until a streamed answer's
first chunk; `idle_timeout` between chunks; and
`generation_timeout` for the whole generation (and for a whole non-streamed answer).

A backend that fails `breaker_failures` times in a row is taken out of rotation; after
`breaker_cooldown` seconds a probe (its `list_models`) runs in the background, and a success
puts it back. A real request that succeeds also closes the breaker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from routerd.catalog import CatalogEntry
from routerd.config import DispatchSettings
from routerd.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    ContextLengthExceeded,
    GatewayError,
    ModelNotFound,
)
from routerd.schemas.openai import ChatCompletion, ChatCompletionChunk, ChatRequest, EmbeddingResponse

log = logging.getLogger("routerd.dispatch")
T = TypeVar("T")


@dataclass
class Breaker:
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False

    def is_open(self, now: float) -> bool:
        return self.open_until > now


@dataclass
class Attempt:
    model: str
    error: str | None = None
    failed: bool = False  # the backend failed (and it counted toward its breaker), not the request


@dataclass
class StreamStart:
    """A stream that has produced its first chunk: where it comes from, and the rest of it."""

    entry: CatalogEntry
    first: ChatCompletionChunk
    rest: AsyncIterator[ChatCompletionChunk]
    attempts: list[Attempt] = field(default_factory=list)


class Dispatcher:
    def __init__(self, settings: DispatchSettings) -> None:
        self.settings = settings
        self.breakers: dict[str, Breaker] = {}
        self._probes: set[asyncio.Task] = set()

    # -- health ------------------------------------------------------------------------------
    def available(self, backend_name: str) -> bool:
        breaker = self.breakers.get(backend_name)
        return breaker is None or not breaker.is_open(time.monotonic())

    def succeeded(self, backend_name: str) -> None:
        breaker = self.breakers.get(backend_name)
        if breaker is not None and (breaker.failures or breaker.open_until):
            log.info("backend %s is back in rotation", backend_name)
            self.breakers[backend_name] = Breaker()

    def failed(self, backend: Any) -> None:
        breaker = self.breakers.setdefault(backend.name, Breaker())
        breaker.failures += 1
        if breaker.failures >= self.settings.breaker_failures and not breaker.is_open(time.monotonic()):
            breaker.open_until = time.monotonic() + self.settings.breaker_cooldown
            log.warning("backend %s failed %d times: out of rotation", backend.name, breaker.failures)
            if not breaker.probing:
                breaker.probing = True
                task = asyncio.get_running_loop().create_task(self._probe(backend))
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)

    async def _probe(self, backend: Any) -> None:
        """Wait out the cooldown, then ask the backend for its models until it answers."""
        breaker = self.breakers[backend.name]
        try:
            while True:
                await asyncio.sleep(max(0.0, breaker.open_until - time.monotonic()))
                try:
                    async with asyncio.timeout(self.settings.first_token_timeout):
                        await backend.list_models()
                except Exception as exc:
                    log.info("probe: backend %s still failing (%s)", backend.name, type(exc).__name__)
                    breaker.open_until = time.monotonic() + self.settings.breaker_cooldown
                    continue
                self.succeeded(backend.name)
                return
        finally:
            breaker.probing = False

    async def close(self) -> None:
        for task in list(self._probes):
            task.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)

    # -- calls -------------------------------------------------------------------------------
    def _ordered(self, targets: list[CatalogEntry]) -> list[CatalogEntry]:
        """Healthy backends first; open breakers only as a last resort."""
        healthy = [t for t in targets if self.available(t.info.backend)]
        return healthy + [t for t in targets if t not in healthy]

    def _give_up(
        self, attempts: list[Attempt], last: GatewayError | None, too_long: list[tuple[CatalogEntry, GatewayError]]
    ) -> GatewayError:
        if too_long and not any(a.failed for a in attempts):
            # no backend failed: the prompt is too long for every model tried, the largest window's refusal says so
            return max(too_long, key=lambda refusal: refusal[0].info.context_window or 0)[1]
        if last is not None and len(attempts) == 1:
            return last
        tried = "; ".join(f"{a.model}: {_brief(a.error)}" for a in attempts)
        return BackendUnavailable(f"no model could answer ({tried})", code="all_backends_failed")

    async def _in_order(
        self, targets: list[CatalogEntry], call: Callable[[CatalogEntry], Awaitable[T]], seconds: float
    ) -> tuple[T, CatalogEntry, list[Attempt]]:
        """`call` on each target in turn until one succeeds within `seconds`."""
        attempts: list[Attempt] = []
        last: GatewayError | None = None
        too_long: list[tuple[CatalogEntry, GatewayError]] = []
        for entry in self._ordered(targets):
            try:
                async with asyncio.timeout(seconds):
                    result = await call(entry)
            except ContextLengthExceeded as exc:  # the client's prompt, not the backend: a larger window may hold it
                last = exc
                too_long.append((entry, exc))
                attempts.append(Attempt(entry.id, exc.message))
                continue
            except ModelNotFound as exc:  # a stale catalog: the next model, the backend is fine
                last = exc
                attempts.append(Attempt(entry.id, exc.message))
                continue
            except (BackendError, TimeoutError) as exc:
                if isinstance(exc, BackendError) and not exc.retryable:
                    raise  # the backend says no model would do better: the client gets its error as it is
                last = _as_backend_error(entry, exc)
                attempts.append(Attempt(entry.id, last.message, failed=True))
                self.failed(entry.backend)
                continue
            self.succeeded(entry.info.backend)
            return result, entry, attempts
        raise self._give_up(attempts, last, too_long)

    async def chat(self, targets: list[CatalogEntry], request: ChatRequest) -> tuple[ChatCompletion, CatalogEntry]:
        async def call(entry: CatalogEntry) -> ChatCompletion:
            return await entry.backend.chat(entry.info.name, request)

        completion, entry, _ = await self._in_order(targets, call, self.settings.generation_timeout)
        return completion, entry

    async def embed(self, targets: list[CatalogEntry], inputs: list[str]) -> tuple[EmbeddingResponse, CatalogEntry]:
        async def call(entry: CatalogEntry) -> EmbeddingResponse:
            return await entry.backend.embed(entry.info.name, inputs)

        result, entry, _ = await self._in_order(targets, call, self.settings.generation_timeout)
        return result, entry

    async def start_stream(self, targets: list[CatalogEntry], request: ChatRequest) -> StreamStart:
        """Try the targets in order until one yields its first chunk."""

        async def call(entry: CatalogEntry) -> tuple[AsyncIterator[ChatCompletionChunk], ChatCompletionChunk]:
            stream = entry.backend.stream(entry.info.name, request)
            try:
                return stream, await anext(stream)
            except StopAsyncIteration:
                await _close_quietly(stream)
                raise BackendError(f"backend {entry.info.backend} sent an empty stream") from None
            except BaseException:
                await _close_quietly(stream)
                raise

        (stream, first), entry, attempts = await self._in_order(targets, call, self.settings.first_token_timeout)
        return StreamStart(entry, first, stream, attempts)

    async def relay(self, start: StreamStart) -> AsyncIterator[ChatCompletionChunk]:
        """The rest of a started stream, under the idle and total timeouts. Errors propagate as
        `BackendError`/`BackendTimeout`; the caller turns them into an error event."""
        loop = asyncio.get_running_loop()
        total = self.settings.generation_timeout
        watchdog = _Watchdog(loop, self.settings.idle_timeout, loop.time() + total)
        try:
            while True:
                if loop.time() >= watchdog.deadline:
                    raise BackendTimeout(f"generation took longer than {total:g} s")
                watchdog.waiting()
                try:
                    chunk = await anext(start.rest)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not watchdog.expired():
                        raise
                    if watchdog.total_first:  # the total limit was the nearer one for this wait
                        raise BackendTimeout(f"generation took longer than {total:g} s") from None
                    raise BackendTimeout(f"the model was silent for {self.settings.idle_timeout:g} s") from None
                except BackendError as exc:
                    if exc.retryable:  # a backend's failure; one that blames the request does not count
                        self.failed(start.entry.backend)
                    raise
                finally:
                    watchdog.since = None
                yield chunk
        finally:
            watchdog.stop()
            await _close_quietly(start.rest)


class _Watchdog:
    """The idle and total timeouts of a relayed stream, with one timer re-armed lazily.

    Only the waits for the next chunk count (`waiting()` starts one; setting `since` to None
    ends it), as with an `asyncio.timeout` around each wait; but where that costs a timer per
    chunk, this costs two assignments, and its one timer, when it fires before the time is up,
    is set again for the time the current wait would expire. Timing out cancels the task,
    which `expired()` then tells apart from any other cancellation."""

    def __init__(self, loop: asyncio.AbstractEventLoop, idle: float, deadline: float) -> None:
        self.loop = loop
        self.idle = idle
        self.deadline = deadline
        task = asyncio.current_task()
        assert task is not None
        self.task = task
        self.cancelling = task.cancelling()
        self.since: float | None = None  # when the current wait began; None: not waiting
        self.fired = False
        self.total_first = False  # when it fired: the wait ran into the total limit, not the idle one
        self._handle: asyncio.TimerHandle | None = None

    def waiting(self) -> None:
        self.since = self.loop.time()
        if self._handle is None:
            self._handle = self.loop.call_at(min(self.since + self.idle, self.deadline), self._check)

    def _check(self) -> None:
        self._handle = None
        if self.since is None:  # not waiting now: the next wait sets the timer again
            return
        expires = min(self.since + self.idle, self.deadline)
        if self.loop.time() < expires:
            self._handle = self.loop.call_at(expires, self._check)
            return
        self.fired = True
        self.total_first = self.deadline <= self.since + self.idle
        self.task.cancel()

    def expired(self) -> bool:
        """Whether the cancellation being handled is this watchdog's (then it is withdrawn)."""
        return self.fired and self.task.uncancel() <= self.cancelling

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


def _brief(message: str | None, limit: int = 300) -> str:
    """One attempt's error for the combined message: its first line, at most `limit` characters (a backend's
    message is its own to keep clean; this keeps one bad one from flooding the rest)."""
    lines = (message or "").strip().splitlines()
    text = lines[0] if lines else "failed"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_backend_error(entry: CatalogEntry, exc: BaseException) -> GatewayError:
    if isinstance(exc, GatewayError):
        return exc
    return BackendTimeout(f"backend {entry.info.backend} did not answer in time")


async def _close_quietly(stream: AsyncIterator[Any]) -> None:
    """Close an upstream stream (and so its HTTP request), even from a cancelled task."""
    aclose = getattr(stream, "aclose", None)
    if aclose is None or getattr(stream, "ag_frame", True) is None:  # an async generator that has finished
        return
    try:
        await asyncio.shield(asyncio.wait_for(aclose(), timeout=1.0))
    except (Exception, asyncio.CancelledError):
        log.debug("closing an upstream stream failed", exc_info=True)
