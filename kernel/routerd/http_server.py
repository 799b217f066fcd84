"""The HTTP server `routerd serve` runs: uvicorn with httptools, one socket write per response.

uvicorn's httptools protocol writes a response's status line and headers as soon as the app
sends ``http.response.start``, and the body in a second write. On a keep-alive connection each
write is a system call and a TCP segment of its own, and on loopback or a fast LAN the sender
pays for delivering each one: for a small JSON answer, the second write costs about as much as
the rest of uvicorn's work. `CoalescingTransport` holds what is written during one step of the
event loop and sends it in one write when the step ends, so the head and body of an answer go out
together; a stream's later events still leave as soon as each is written (the step that writes
them ends at once). `HttpToolsCoalescingProtocol` is uvicorn's protocol over that transport.

httptools sets no limits of its own and uvicorn no deadline but the keep-alive one, so
`HttpToolsGuardedProtocol` adds nginx's: the size of a request head, of one header and their
number (431), a deadline for the head (408) and for a body that stops or crawls; `DeadlineWatch`
checks the deadlines of every connection once per tick, so a request pays only a few integer
operations for them. `uvicorn_options` is how `routerd serve` (and the tests' served gateway)
configures uvicorn from ``[server]``: also the connection limit and the shutdown deadline.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from routerd.config import ServerSettings

try:
    import httptools
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard], a dependency
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

log = logging.getLogger("routerd.http_server")


class CoalescingTransport:
    """An asyncio transport whose writes made in one event-loop step leave in one write.

    Everything else is the wrapped transport's; ``close()`` sends what is held first, ``abort()``
    drops it, and the write buffer size counts it, so flow control sees every byte."""

    __slots__ = ("_held", "_loop", "_scheduled", "transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self.transport = transport
        self._loop = loop
        self._held: list[bytes] = []
        self._scheduled = False

    def write(self, data: bytes) -> None:
        if not data:
            return
        self._held.append(data)
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self.flush)

    def writelines(self, lines: Any) -> None:
        for data in lines:
            self.write(data)

    def flush(self) -> None:
        """Send what is held, in one write."""
        self._scheduled = False
        if not self._held:
            return
        data = self._held[0] if len(self._held) == 1 else b"".join(self._held)
        self._held.clear()
        if not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        self.flush()
        self.transport.close()

    def abort(self) -> None:
        self._held.clear()
        self.transport.abort()

    def get_write_buffer_size(self) -> int:
        return self.transport.get_write_buffer_size() + sum(len(data) for data in self._held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.transport, name)


class Refused(Exception):
    """A request refused while its head is parsed: the status and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


# A connection's phase, for its deadlines: its request head, its request body, anything else
# (the app answering, idle between requests: uvicorn's keep-alive timer).
HEAD, BODY, OTHER = 0, 1, 2


class DeadlineWatch:
    """Cuts the connections of one server that are past a deadline: one task, waking every `tick`
    seconds while the server has connections (started again by the next connection)."""

    def __init__(self, header_timeout: float, body_timeout: float, body_min_rate: int) -> None:
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.body_min_rate = body_min_rate
        self.tick = min(1.0, header_timeout / 4, body_timeout / 4)
        self._task: asyncio.Task[None] | None = None

    def watch(self, protocol: Any) -> None:
        if self._task is None or self._task.done():
            self._task = protocol.loop.create_task(self._run(protocol.loop, protocol.connections))

    async def _run(self, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
        while connections:
            await asyncio.sleep(self.tick)
            now = loop.time()
            for connection in list(connections):
                check = getattr(connection, "check_deadlines", None)
                if check is not None:
                    check(now)


if HttpToolsProtocol is not None:

    class HttpToolsCoalescingProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, writing through a `CoalescingTransport`."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

    class HttpToolsGuardedProtocol(HttpToolsCoalescingProtocol):
        """The coalescing protocol with limits on request heads and deadlines for heads and bodies.

        `http_protocol` makes a subclass per server with its limits and its `DeadlineWatch`. The size
        of a head is counted per read while the head is incomplete (a read is at most 256 KB, so no
        more is ever held) and, header by header, as the parser finds them (a whole head in one read
        is counted there); the size and number of headers per header; the deadlines are the watch's."""

        max_header_bytes: ClassVar[int] = 32 * 1024
        max_header_line_bytes: ClassVar[int] = 8 * 1024
        max_headers: ClassVar[int] = 100
        shutdown_timeout: ClassVar[float | None] = None
        deadlines: ClassVar[DeadlineWatch]

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.phase = HEAD
            self.phase_since = self.loop.time()
            self.in_head = True  # bytes read count against the head
            self.head_bytes = 0
            self.ends = 0  # heads and messages complete on this connection
            self.body_bytes = 0
            self.body_seen = 0  # body bytes at the watch's last look
            self.body_moved = self.phase_since
            self.deadlines.watch(self)

        def data_received(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            ends = self.ends
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserCallbackError as exc:
                if isinstance(exc.__context__, Refused):
                    self.refuse(exc.__context__.status, exc.__context__.message)
                else:
                    self.refuse(400, "Invalid HTTP request received.")
                return
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()
                return
            except httptools.HttpParserError:
                self.refuse(400, "Invalid HTTP request received.")
                return
            if self.in_head and self.ends == ends:  # all of this read is head (else the next read counts)
                self.head_bytes += len(data)
                if self.head_bytes > self.max_header_bytes:
                    self.refuse(431, "Request header fields too large.")

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self.header_bytes = 0  # the parsed headers' size: a head that arrived in one read is counted here
            if self.phase != HEAD:
                self.phase = HEAD
                self.phase_since = self.loop.time()

        def on_header(self, name: bytes, value: bytes) -> None:
            if len(name) + len(value) > self.max_header_line_bytes:
                raise Refused(431, "Request header field too large.")
            if len(self.headers) >= self.max_headers:
                raise Refused(431, "Too many request header fields.")
            self.header_bytes += len(name) + len(value) + 4  # ": " and CRLF
            if self.header_bytes > self.max_header_bytes:
                raise Refused(431, "Request header fields too large.")
            name = name.lower()
            value = value.rstrip(b" \t")  # as uvicorn's on_header
            if name == b"expect" and value.lower() == b"100-continue":
                self.expect_100_continue = True
            self.headers.append((name, value))

        def on_headers_complete(self) -> None:
            self.in_head = False
            self.ends += 1
            self.phase = BODY
            self.phase_since = self.body_moved = self.loop.time()
            self.body_bytes = self.body_seen = 0
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            self.body_bytes += len(body)
            super().on_body(body)

        def on_message_complete(self) -> None:
            self.phase = OTHER
            self.in_head = True
            self.ends += 1
            self.head_bytes = 0
            super().on_message_complete()

        def shutdown(self) -> None:
            """uvicorn's graceful shutdown begins: a request still in progress a second before the shutdown
            deadline is disconnected, so that the app ends it as it ends any request whose client left (uvicorn
            would cancel its task at the deadline, logging a traceback per request)."""
            super().shutdown()
            if self.shutdown_timeout is not None and self.cycle is not None and not self.cycle.response_complete:
                self.loop.call_later(max(0.0, self.shutdown_timeout - 1.0), self.transport.close)

        def check_deadlines(self, now: float) -> None:
            """Called by the watch: cut this connection when its head or body is late."""
            if self.transport.is_closing():
                return
            deadlines = self.deadlines
            if self.phase == HEAD:
                if now - self.phase_since > deadlines.header_timeout:
                    self.refuse(408, "Request header timeout.")
            elif self.phase == BODY:
                cycle = self.cycle
                waiting = self.flow.read_paused or (cycle is not None and cycle.waiting_for_100_continue)
                if self.body_bytes != self.body_seen or waiting:  # moved, or the app has not asked for more yet
                    self.body_seen = self.body_bytes
                    self.body_moved = now
                    if waiting:  # the rate counts from when the app reads again
                        self.phase_since = now
                elif now - self.body_moved > deadlines.body_timeout:
                    self.refuse(408, "Request body timeout.")
                    return
                elapsed = now - self.phase_since
                if (
                    deadlines.body_min_rate
                    and elapsed > deadlines.body_timeout
                    and not waiting
                    and self.body_bytes < deadlines.body_min_rate * elapsed
                ):
                    self.refuse(408, "Request body too slow.")

        def refuse(self, status: int, message: str) -> None:
            """Answer `status` with `message` unless a response is under way, and close the connection."""
            log.debug("%s from %s: %s", status, self.client, message)
            cycle = self.cycle
            # In a head, `cycle` is the previous request's: answer unless that one's response is still going.
            if cycle is None or cycle.response_complete or (self.phase == BODY and not cycle.response_started):
                body = message.encode("ascii")
                head = [STATUS_LINE[status]]
                for name, value in self.server_state.default_headers:
                    head.extend([name, b": ", value, b"\r\n"])
                head.append(
                    b"content-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\nconnection: close\r\n\r\n"
                    % len(body)
                )
                self.transport.write(b"".join(head) + body)
            if cycle is not None and not cycle.response_complete:
                # as uvicorn's connection_lost: the app reads a disconnect, and what it sends goes nowhere
                cycle.disconnected = True
                cycle.message_event.set()
            self.transport.close()

else:  # pragma: no cover
    HttpToolsCoalescingProtocol = None  # type: ignore[assignment,misc]
    HttpToolsGuardedProtocol = None  # type: ignore[assignment,misc]


def http_protocol(server: ServerSettings | None = None) -> type | str:
    """uvicorn's ``http`` setting: the guarded protocol with `server`'s limits (defaults: ``[server]``'s), or
    "auto" without httptools."""
    if HttpToolsGuardedProtocol is None:  # pragma: no cover
        return "auto"
    if server is None:
        from routerd.config import ServerSettings

        server = ServerSettings()
    return type(
        "HttpToolsGuardedProtocol",
        (HttpToolsGuardedProtocol,),
        {
            "max_header_bytes": server.max_header_bytes,
            "max_header_line_bytes": server.max_header_line_bytes,
            "max_headers": server.max_headers,
            "shutdown_timeout": server.shutdown_timeout,
            "deadlines": DeadlineWatch(server.header_timeout, server.body_timeout, server.body_min_rate),
        },
    )


def uvicorn_options(server: ServerSettings) -> dict[str, Any]:
    """The uvicorn settings that `server` sets: the protocol and its limits, the keep-alive timeout, the
    connection limit (uvicorn answers 503 once its open connections or running requests reach
    ``limit_concurrency``, the connection asking included, hence the 1 more) and the shutdown deadline."""
    return {
        "http": http_protocol(server),
        "timeout_keep_alive": server.keepalive_timeout,
        "limit_concurrency": server.max_connections + 1,
        "timeout_graceful_shutdown": server.shutdown_timeout,
    }


def raise_open_file_limit(max_connections: int) -> int:
    """Raise the soft limit on open files to the hard one (a client connection and an upstream one per
    request, and running out makes healthy requests fail); warn when it is still short of
    `max_connections`. Returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:  # macOS: the kernel caps the soft limit below "unlimited"
        hard = max(soft, 65536)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
            soft = hard
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, exc)
    if soft < 2 * max_connections + 256:
        log.warning(
            "the open-file limit (%d) is short of 2 x server.max_connections (%d) + 256: raise it (ulimit -n) "
            "or lower server.max_connections",
            soft,
            max_connections,
        )
    return soft
