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
`generation_timeout` for the whole generation (and for a whole non-streamed answer). Across the
models a request falls back to, `request_timeout` (at most `generation_timeout`) bounds the time
until its answer (a stream's first chunk): no model is tried after it; an attempt it cuts short
does not count against the backend.

Admission control (docs/hardening.md, "Overload and admission control"): each backend is sent at
most `max_in_flight_per_backend` requests at once (a stream holds its place until it ends); up to
`max_queued_per_backend` more wait, each at most `queue_timeout`, in arrival order. Models whose
backend has room are tried before those whose backend would make the request wait. A model whose
queue is full, or whose wait ran out, is passed over, never counted as the backend's failure, and
the time waited never counts against its first-token or generation timeouts; when no model had
room, the client gets `Overloaded`: a 503 with ``Retry-After``. The check is a counter compare;
a future is made only for a request that waits.

A backend that fails `breaker_failures` times in a row is taken out of rotation; after
`breaker_cooldown` seconds a probe (its `list_models`) runs in the background, and a success
puts it back. A real request that succeeds also closes the breaker.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
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
    Overloaded,
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
    busy: bool = False  # the backend had no room (its queue full, or the wait ran out): not tried


class Gate:
    """Admission to one backend: how many requests it has in flight, and the requests waiting for a place (each a
    future, resolved when a place is handed to it)."""

    __slots__ = ("in_flight", "waiting")

    def __init__(self) -> None:
        self.in_flight = 0
        self.waiting: deque[asyncio.Future[None]] = deque()


@dataclass
class StreamStart:
    """A stream that has produced its first chunk: where it comes from, and the rest of it."""

    entry: CatalogEntry
    first: ChatCompletionChunk
    rest: AsyncIterator[ChatCompletionChunk]
    attempts: list[Attempt] = field(default_factory=list)


class HeldStream:
    """A started upstream stream that holds its place at the backend (`Dispatcher.admit`) until it is exhausted
    or closed (`aclose`, which the relay's end calls, and any caller that stops early must)."""

    __slots__ = ("_release", "closed", "stream")

    def __init__(self, stream: AsyncIterator[ChatCompletionChunk], release: Callable[[], None]) -> None:
        self.stream = stream
        self._release: Callable[[], None] | None = release
        self.closed = False

    def __aiter__(self) -> HeldStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        try:
            return await anext(self.stream)
        except StopAsyncIteration:
            self.released()
            raise

    def released(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    async def aclose(self) -> None:
        """Give the place back and close the upstream stream (once; later calls cost nothing)."""
        self.released()
        if not self.closed:
            self.closed = True
            await _close_quietly(self.stream)


class Dispatcher:
    def __init__(self, settings: DispatchSettings) -> None:
        self.settings = settings
        self.breakers: dict[str, Breaker] = {}
        self.gates: dict[str, Gate] = {}
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

    # -- admission ---------------------------------------------------------------------------
    def has_room(self, backend_name: str) -> bool:
        """Whether a request for the backend would be sent at once (no wait in its queue)."""
        gate = self.gates.get(backend_name)
        return gate is None or (gate.in_flight < self.settings.max_in_flight_per_backend and not gate.waiting)

    async def admit(self, backend_name: str, deadline: float) -> bool:
        """Take a place for a request to the backend: at once when it has room, else after waiting in its queue
        until `queue_timeout` or the loop time `deadline`. False: the queue is full, or the wait ran out. A
        True must be followed by one `release`."""
        gate = self.gates.get(backend_name)
        if gate is None:
            gate = self.gates[backend_name] = Gate()
        if gate.in_flight < self.settings.max_in_flight_per_backend and not gate.waiting:
            gate.in_flight += 1
            return True
        if len(gate.waiting) >= self.settings.max_queued_per_backend:
            return False
        loop = asyncio.get_running_loop()
        place = loop.create_future()
        gate.waiting.append(place)
        try:
            async with asyncio.timeout_at(min(loop.time() + self.settings.queue_timeout, deadline)):
                await place
        except TimeoutError:
            return place.done() and not place.cancelled()  # handed a place as the wait ran out: it is ours
        except asyncio.CancelledError:
            if place.done() and not place.cancelled():
                self.release(backend_name)
            raise
        finally:
            if not place.done() or place.cancelled():
                try:
                    gate.waiting.remove(place)
                except ValueError:
                    pass
        return True

    def release(self, backend_name: str) -> None:
        """Give a place back: to the first request waiting for one, if any."""
        gate = self.gates[backend_name]
        while gate.waiting:
            place = gate.waiting.popleft()
            if not place.done():
                place.set_result(None)  # the place goes to it; in_flight stays as it is
                return
        gate.in_flight -= 1

    # -- calls -------------------------------------------------------------------------------
    def _ordered(self, targets: list[CatalogEntry]) -> list[CatalogEntry]:
        """Healthy backends with room first, then healthy ones that would make the request wait; open breakers
        only as a last resort."""
        if len(targets) == 1:
            return targets
        healthy = [t for t in targets if self.available(t.info.backend)]
        roomy = [t for t in healthy if self.has_room(t.info.backend)]
        if len(roomy) < len(healthy):
            healthy = roomy + [t for t in healthy if t not in roomy]
        return healthy + [t for t in targets if t not in healthy]

    def _request_seconds(self) -> float:
        return min(self.settings.request_timeout, self.settings.generation_timeout)

    def deadline(self) -> float:
        """The loop time by which a request starting now must have its answer (`request_timeout`)."""
        return asyncio.get_running_loop().time() + self._request_seconds()

    def _give_up(
        self, attempts: list[Attempt], last: GatewayError | None, too_long: list[tuple[CatalogEntry, GatewayError]]
    ) -> GatewayError:
        if too_long and not any(a.failed for a in attempts):
            # no backend failed: the prompt is too long for every model tried, the largest window's refusal says so
            return max(too_long, key=lambda refusal: refusal[0].info.context_window or 0)[1]
        if attempts and all(a.busy for a in attempts):
            names = ", ".join(a.model for a in attempts)
            return Overloaded(
                f"the gateway is at capacity for {names}; retry later", retry_after=self.settings.retry_after
            )
        if last is not None and len(attempts) == 1:
            return last
        tried = "; ".join(f"{a.model}: {_brief(a.error)}" for a in attempts)
        error = BackendUnavailable(f"no model could answer ({tried})", code="all_backends_failed")
        if any(a.busy for a in attempts):  # some had no room: a retry may find it
            error.headers = {"Retry-After": str(self.settings.retry_after)}
        return error

    async def _in_order(
        self,
        targets: list[CatalogEntry],
        call: Callable[[CatalogEntry], Awaitable[T]],
        seconds: float,
        *,
        hold: bool = False,
    ) -> tuple[T, CatalogEntry, list[Attempt]]:
        """`call` on each target in turn, once admitted to its backend, until one succeeds within `seconds` and
        `request_timeout`. With `hold`, the place of the one that succeeded is kept: the caller releases it."""
        loop = asyncio.get_running_loop()
        deadline = self.deadline()
        attempts: list[Attempt] = []
        last: GatewayError | None = None
        too_long: list[tuple[CatalogEntry, GatewayError]] = []
        for entry in self._ordered(targets):
            backend = entry.info.backend
            if not await self.admit(backend, deadline):
                attempts.append(Attempt(entry.id, f"backend {backend} is busy", busy=True))
                continue
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                async with asyncio.timeout(min(seconds, left)):
                    result = await call(entry)
            except ContextLengthExceeded as exc:  # the client's prompt, not the backend: a larger window may hold it
                self.release(backend)
                last = exc
                too_long.append((entry, exc))
                attempts.append(Attempt(entry.id, exc.message))
                continue
            except ModelNotFound as exc:  # a stale catalog: the next model, the backend is fine
                self.release(backend)
                last = exc
                attempts.append(Attempt(entry.id, exc.message))
                continue
            except (BackendError, TimeoutError) as exc:
                self.release(backend)
                if isinstance(exc, BackendError) and not exc.retryable:
                    raise  # the backend says no model would do better: the client gets its error as it is
                if isinstance(exc, TimeoutError) and left < seconds:
                    # the request's time ran out, not this attempt's: the backend is not blamed, no model follows
                    attempts.append(Attempt(entry.id, f"backend {backend} did not answer in time"))
                    tried = "; ".join(f"{a.model}: {_brief(a.error)}" for a in attempts)
                    raise BackendTimeout(
                        f"no answer within the request's {self._request_seconds():g} s ({tried})",
                        code="request_timeout",
                    ) from None
                last = _as_backend_error(entry, exc)
                attempts.append(Attempt(entry.id, last.message, failed=True))
                self.failed(entry.backend)
                continue
            except BaseException:
                self.release(backend)
                raise
            if not hold:
                self.release(backend)
            self.succeeded(backend)
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
        """Try the targets in order until one yields its first chunk. The stream holds its place at the backend
        until it ends or is closed (`HeldStream`): a caller that does not relay it must close ``rest``."""

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

        (stream, first), entry, attempts = await self._in_order(
            targets, call, self.settings.first_token_timeout, hold=True
        )
        backend = entry.info.backend
        return StreamStart(entry, first, HeldStream(stream, lambda: self.release(backend)), attempts)

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
    if isinstance(stream, HeldStream):  # it shields the close of the stream it holds itself
        await stream.aclose()
        return
    aclose = getattr(stream, "aclose", None)
    if aclose is None or getattr(stream, "ag_frame", True) is None:  # an async generator that has finished
        return
    try:
        await asyncio.shield(asyncio.wait_for(aclose(), timeout=1.0))
    except (Exception, asyncio.CancelledError):
        log.debug("closing an upstream stream failed", exc_info=True)
