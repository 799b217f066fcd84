"""A cheap HTTP/1.1 load generator for the overhead benchmark: keep-alive connections, each a raw
asyncio protocol on uvloop that sends one pre-built request after another and parses the answers
with httptools' C parser.

The gateway, the mock upstream and this generator share the machine's cores, so every
microsecond the generator spends is taken from what it measures. An aiohttp client costs 150 to
250 us of CPU per request; this one costs a fraction of that (it reports its own CPU time per
request, so a reader can check). It still checks every answer: status 200, a JSON body that
carries a choice, and for streams a first ``data:`` event and the ``data: [DONE]`` end.

    run(url, body, stream=False, requests=2000, concurrency=32, seconds=60) -> dict

returns requests per second, latencies (whole answers; for streams also the time to the first
complete ``data:`` event), errors (counted, with a few samples) and the generator's CPU time, for
one run: bench/overhead.py takes each run's p50 and p99 and reports the median over its rounds.
The generator is the measuring instrument, not routerd's code: it keeps Python's default garbage
collector (the gateway it measures runs the app's, as in production).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

# The most error samples a run keeps (errors are all counted).
SAMPLES = 5


def build_request(url: str, body: bytes) -> tuple[str, int, bytes]:
    """Host, port and the bytes of ``POST url`` with a JSON `body`, built once for a whole run."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"the load generator speaks plain http only: {url!r}")
    port = parts.port or 80
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}:{port}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer bench\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return parts.hostname, port, head.encode("latin-1") + body


@dataclass
class Tally:
    """What the connections of one run found, shared by all of them."""

    remaining: int  # requests still to send
    stream: bool
    sent: int = 0
    counting: bool = True
    latencies: list[float] = field(default_factory=list)
    firsts: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    error_count: int = 0
    done: asyncio.Future | None = None
    open_connections: int = 0
    last_answer: float = 0.0  # perf_counter() when the last answer was complete

    def error(self, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < SAMPLES:
            self.errors.append(message)

    def take(self) -> bool:
        """Whether a connection may send one more request (and counts it as sent)."""
        if self.remaining <= 0:
            return False
        self.remaining -= 1
        self.sent += 1
        return True


class LoadConnection(asyncio.Protocol):
    """One keep-alive connection: a request, its whole answer, the next request."""

    def __init__(self, request: bytes, tally: Tally) -> None:
        self.request = request
        self.tally = tally
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.clock = time.perf_counter
        self.started = 0.0
        self.first = 0.0
        self.body: list[bytes] = []
        self.busy = False
        self.closed: asyncio.Future = asyncio.get_running_loop().create_future()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.tally.open_connections += 1

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(f"unparsable answer: {exc}")
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.busy:
            self._fail("connection closed mid-answer")
        self.tally.open_connections -= 1
        if not self.closed.done():
            self.closed.set_result(None)
        self._maybe_finished()

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        if self.tally.stream and not self.first:
            self.body.append(body)
            if b"\n\n" in body or b"\n\n" in b"".join(self.body[-2:]):
                self.first = self.clock()
            return
        self.body.append(body)

    def on_message_complete(self) -> None:
        end = self.clock()
        self.busy = False
        status = self.parser.get_status_code()
        body = b"".join(self.body)
        problem = self._check(status, body)
        self.tally.last_answer = end
        if problem:
            self._fail(problem)
        elif self.tally.counting:
            self.tally.latencies.append(end - self.started)
            if self.tally.stream:
                self.tally.firsts.append(self.first - self.started)
        if not self.parser.should_keep_alive():
            self.transport.close()
            return
        self._next()

    # the run
    def start(self) -> None:
        self._next()

    def _check(self, status: int, body: bytes) -> str | None:
        if status != 200:
            return f"status {status}: {body[:120]!r}"
        if self.tally.stream:
            if not body.startswith(b"data: ") or not body.endswith(b"data: [DONE]\n\n") or not self.first:
                return f"stream without its first event or [DONE]: {body[-120:]!r}"
        elif b'"choices":[{' not in body:
            return f"JSON answer without a choice: {body[:120]!r}"
        return None

    def _next(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if not self.tally.take():
            self.transport.close()
            return
        self.busy = True
        self.body = []
        self.first = 0.0
        self.started = self.clock()
        self.transport.write(self.request)

    def _fail(self, message: str) -> None:
        self.busy = False
        if self.tally.counting:
            self.tally.error(message)

    def _maybe_finished(self) -> None:
        tally = self.tally
        if tally.open_connections == 0 and tally.done is not None and not tally.done.done():
            tally.done.set_result(None)


async def _phase(host: str, port: int, request: bytes, tally: Tally, concurrency: int, seconds: float) -> float:
    """Open `concurrency` connections and let them send until the tally's requests are spent;
    returns the seconds it took (connections are closed when it ends, also on time-out)."""
    loop = asyncio.get_running_loop()
    tally.done = loop.create_future()
    began = time.perf_counter()
    connections: list[LoadConnection] = []
    try:
        async with asyncio.timeout(seconds):
            for _ in range(concurrency):
                _, protocol = await loop.create_connection(lambda: LoadConnection(request, tally), host, port)
                connections.append(protocol)
            began = time.perf_counter()  # every connection is open: the clock starts with the first request
            for connection in connections:
                connection.start()
            await tally.done
        if tally.remaining > 0:
            tally.error(f"{tally.remaining} requests not sent: the server closed every connection")
    except TimeoutError:
        tally.error(f"run cut off after {seconds:g} s")
    except OSError as exc:
        tally.error(f"cannot connect to {host}:{port}: {exc}")
    finally:
        for connection in connections:
            if connection.transport is not None:
                connection.transport.close()
        if connections:
            await asyncio.wait([c.closed for c in connections], timeout=5)
    return time.perf_counter() - began


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (Linux); None where /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(
    url: str,
    body: bytes,
    stream: bool = False,
    requests: int = 2000,
    concurrency: int = 32,
    seconds: float = 60.0,
    watch_pid: int | None = None,
) -> dict:
    """Warm up (connections opened, both sides settled; not counted), then send `requests`
    requests over `concurrency` connections, within `seconds`. With `watch_pid`, the CPU time
    that process spent during the counted requests is measured too (``watched_cpu``)."""
    host, port, request = build_request(url, body)
    warmup = Tally(remaining=max(2 * concurrency, 200), stream=stream, counting=False)
    await _phase(host, port, request, warmup, concurrency, seconds)
    tally = Tally(remaining=requests, stream=stream)
    watched = cpu_seconds(watch_pid) if watch_pid else None
    cpu = time.process_time()
    elapsed = await _phase(host, port, request, tally, concurrency, seconds)
    cpu = time.process_time() - cpu
    if watched is not None:
        after = cpu_seconds(watch_pid)
        watched = after - watched if after is not None else None
    done = len(tally.latencies)
    return {
        "watched_cpu": watched,
        "sent": tally.sent,
        "warmup": warmup.sent,
        "done": done,
        "errors": tally.errors,
        "error_count": tally.error_count,
        "elapsed": elapsed,
        "rps": done / elapsed if elapsed else 0.0,
        "latencies": tally.latencies,
        "firsts": tally.firsts,
        "loadgen_cpu": cpu,
    }
