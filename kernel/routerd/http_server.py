"""The HTTP server `routerd serve` runs: uvicorn with httptools, one socket write per response.

uvicorn's httptools protocol writes a response's status line and headers as soon as the app
sends ``http.response.start``, and the body in a second write. On a keep-alive connection each
write is a system call and a TCP segment of its own, and on loopback or a fast LAN the sender
pays for delivering each one: for a small JSON answer, the second write costs about as much as
the rest of uvicorn's work. `CoalescingTransport` holds what is written during one step of the
event loop and sends it in one write when the step ends, so the head and body of an answer go out
together; a stream's later events still leave as soon as each is written (the step that writes
them ends at once). `HttpToolsCoalescingProtocol` is uvicorn's protocol over that transport.
"""

from __future__ import annotations

import asyncio
from typing import Any

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools is part of uvicorn[standard], a dependency
    HttpToolsProtocol = None  # type: ignore[assignment,misc]


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


if HttpToolsProtocol is not None:

    class HttpToolsCoalescingProtocol(HttpToolsProtocol):
        """uvicorn's httptools protocol, writing through a `CoalescingTransport`."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]

else:  # pragma: no cover
    HttpToolsCoalescingProtocol = None  # type: ignore[assignment,misc]


def http_protocol() -> type | str:
    """uvicorn's ``http`` setting: the coalescing protocol, or "auto" without httptools."""
    return HttpToolsCoalescingProtocol if HttpToolsCoalescingProtocol is not None else "auto"
