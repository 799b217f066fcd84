"""Upstream HTTP clients side by side: which one should the gateway use to call its backends?

    .venv/bin/python bench/upstream_clients.py [--requests 2000] [--concurrency 1 32] [--rounds 3]

Each client sends the same JSON chat completion (and, with ``--kinds json stream``, reads the same
streamed answer as raw chunks, as they come) to the zero-latency mock upstream (bench/mock_upstream.py, in a
process of its own), with keep-alive connections, on uvloop, the way the gateway would. Clients
that are not installed are skipped; the optional ones (aiosonic, pyreqwest, niquests) can be
tried without touching the venv:

    .venv/bin/pip install --target /tmp/bench-extra aiosonic pyreqwest niquests
    PYTHONPATH=/tmp/bench-extra .venv/bin/python bench/upstream_clients.py

Runs alternate between clients round by round (the order reversed every other round); the
table gives the median over the rounds of requests per second and of CPU time per request, and the
ratio to aiohttp's median.

The clients run in this process with the garbage collector as the gateway runs it (bench/production_gc.py): once
the mock is up and the clients imported, ``gc.freeze()`` and the young threshold `routerd.app.GC_YOUNG_THRESHOLD`,
as the app's lifespan does after start-up; it is never disabled. The mock runs in a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mock_upstream
import production_gc

BODY = b'{"model": "mock-7b", "messages": [{"role": "user", "content": "Say hello."}]}'
STREAM_BODY = b'{"model": "mock-7b", "messages": [{"role": "user", "content": "Say hello."}], "stream": true}'
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer bench"}

Call = Callable[[bytes, bool], Awaitable[int]]  # (body, stream) -> bytes received


@asynccontextmanager
async def aiohttp_client(base: str, concurrency: int) -> AsyncIterator[Call]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=max(concurrency, 100))
    async with aiohttp.ClientSession(base_url=base + "/", headers=HEADERS, connector=connector) as session:

        async def call(body: bytes, stream: bool) -> int:
            async with session.post("chat/completions", data=body) as response:
                if not stream:
                    return len(await response.read())
                size = 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                return size

        yield call


def _httpx_like(module_name: str):
    @asynccontextmanager
    async def client(base: str, concurrency: int) -> AsyncIterator[Call]:
        module = __import__(module_name)
        limits = module.Limits(max_connections=max(concurrency, 100), max_keepalive_connections=max(concurrency, 20))
        async with module.AsyncClient(base_url=base, headers=HEADERS, limits=limits) as session:

            async def call(body: bytes, stream: bool) -> int:
                if not stream:
                    response = await session.post("/chat/completions", content=body)
                    return len(response.content)
                size = 0
                async with session.stream("POST", "/chat/completions", content=body) as response:
                    async for chunk in response.aiter_raw():
                        size += len(chunk)
                return size

            yield call

    return client


@asynccontextmanager
async def aiosonic_client(base: str, concurrency: int) -> AsyncIterator[Call]:
    import aiosonic
    from aiosonic.pools import PoolConfig

    pool = PoolConfig(size=max(concurrency, 100), max_conn_requests=None)
    connector = aiosonic.TCPConnector(pool_configs={":default": pool})
    async with aiosonic.HTTPClient(connector=connector) as session:
        url = base + "/chat/completions"

        async def call(body: bytes, stream: bool) -> int:
            response = await session.post(url, data=body, headers=HEADERS)
            if not stream:
                return len(await response.content())
            size = 0
            async for chunk in response.read_chunks():
                size += len(chunk)
            return size

        yield call


@asynccontextmanager
async def pyreqwest_client(base: str, concurrency: int) -> AsyncIterator[Call]:
    from pyreqwest.client import ClientBuilder

    builder = ClientBuilder().base_url(base + "/").default_headers(HEADERS).max_connections(max(concurrency, 100))
    async with builder.build() as session:

        async def call(body: bytes, stream: bool) -> int:
            request = session.post("chat/completions").body_bytes(body)
            if not stream:
                response = await request.build().send()
                return len(await response.bytes())
            size = 0
            async with request.build_streamed() as response:
                reader = response.body_reader
                while (chunk := await reader.read_chunk()) is not None:
                    size += len(chunk)
            return size

        yield call


@asynccontextmanager
async def niquests_client(base: str, concurrency: int) -> AsyncIterator[Call]:
    import niquests

    async with niquests.AsyncSession(pool_maxsize=max(concurrency, 100)) as session:
        session.headers.update(HEADERS)
        url = base + "/chat/completions"

        async def call(body: bytes, stream: bool) -> int:
            if not stream:
                response = await session.post(url, data=body)
                return len(response.content)
            size = 0
            response = await session.post(url, data=body, stream=True)
            async for chunk in await response.iter_content(None):
                size += len(chunk)
            return size

        yield call


CLIENTS = {
    "aiohttp": ("aiohttp", aiohttp_client),
    "httpx": ("httpx", _httpx_like("httpx")),
    "httpx2": ("httpx2", _httpx_like("httpx2")),
    "aiosonic": ("aiosonic", aiosonic_client),
    "pyreqwest": ("pyreqwest", pyreqwest_client),
    "niquests": ("niquests", niquests_client),
}


async def run(
    factory, base: str, stream: bool, requests: int, concurrency: int, seconds: float
) -> tuple[float, float, int]:
    """Requests per second of one client after a warm-up, the process's CPU time per request in
    microseconds (every thread's: a client that works in threads of its own shows it here), and
    the number of failed calls."""
    body = STREAM_BODY if stream else BODY
    failures = 0
    async with factory(base, concurrency) as call:

        async def worker(count: int) -> None:
            nonlocal failures
            for _ in range(count):
                try:
                    if await call(body, stream) <= 0:
                        failures += 1
                except Exception:
                    failures += 1

        await asyncio.gather(*(worker(max(2, 100 // concurrency)) for _ in range(concurrency)))
        failures = 0
        shares = [requests // concurrency + (1 if i < requests % concurrency else 0) for i in range(concurrency)]
        began, cpu = time.perf_counter(), time.process_time()
        async with asyncio.timeout(seconds):
            await asyncio.gather(*(worker(n) for n in shares))
        elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
    return (requests - failures) / elapsed, cpu / requests * 1e6, failures


def available(names: list[str]) -> dict[str, tuple[str, Callable]]:
    found = {}
    for name in names:
        module, factory = CLIENTS[name]
        try:
            __import__(module)
            version = importlib.metadata.version(module)
        except ImportError:
            print(f"(skipping {name}: not installed)", file=sys.stderr)
            continue
        found[name] = (f"{name} {version}", factory)
    return found


def measure(args, clients: dict[str, tuple[str, Callable]], base: str, runner) -> tuple[dict, dict, dict[str, int]]:
    """Every run, round by round: requests per second and CPU per request for each (client, kind, concurrency), and
    the failed calls per client."""
    rps: dict[tuple[str, str, int], list[float]] = {}
    cpu: dict[tuple[str, str, int], list[float]] = {}
    failed: dict[str, int] = {}
    for round_ in range(args.rounds):
        order = list(clients) if round_ % 2 == 0 else list(reversed(clients))
        for kind in args.kinds:
            for concurrency in args.concurrency:
                for name in order:
                    try:
                        value, cpu_us, failures = runner(
                            run(
                                clients[name][1],
                                base,
                                kind == "stream",
                                args.requests,
                                concurrency,
                                args.run_timeout,
                            )
                        )
                    except TimeoutError:
                        value, cpu_us, failures = 0.0, 0.0, args.requests
                    except Exception as exc:  # a client that cannot run here is reported, not fatal
                        print(f"({name} failed: {type(exc).__name__}: {exc})", file=sys.stderr)
                        value, cpu_us, failures = 0.0, 0.0, args.requests
                    rps.setdefault((name, kind, concurrency), []).append(value)
                    cpu.setdefault((name, kind, concurrency), []).append(cpu_us)
                    failed[name] = failed.get(name, 0) + failures
                    print(
                        f"  round {round_ + 1}/{args.rounds} {kind:6} c={concurrency:<3} {name:10} {value:8.0f} req/s",
                        file=sys.stderr,
                        flush=True,
                    )
    return rps, cpu, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per run (default 2000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32], help="default: 1 32")
    parser.add_argument("--rounds", type=int, default=3, help="default 3")
    parser.add_argument("--kinds", nargs="+", choices=["json", "stream"], default=["json"])
    parser.add_argument("--clients", nargs="+", choices=list(CLIENTS), default=list(CLIENTS))
    parser.add_argument("--run-timeout", type=float, default=60.0, help="seconds one run may take (default 60)")
    args = parser.parse_args(argv)
    clients = available(args.clients)
    if "aiohttp" not in clients:
        parser.error("aiohttp is the reference: keep it in --clients")
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run

    mock, base = mock_upstream.spawn()
    loads = [f"{os.getloadavg()[0]:.2f}"]
    try:
        with production_gc.as_in_production():  # the clients are imported and the mock is up: setup is done
            collector = production_gc.describe()
            rps, cpu, failed = measure(args, clients, base, runner)
    finally:
        mock.terminate()
        mock.wait(timeout=10)
    loads.append(f"{os.getloadavg()[0]:.2f}")

    print()
    print(
        f"upstream clients against the zero-latency mock, {time.strftime('%Y-%m-%d')}, "
        f"{args.rounds} rounds x {args.requests} requests, median req/s (ratio to aiohttp) and CPU per request "
        f"over the rounds;\nload average {' -> '.join(loads)} (1 min, start -> end); {collector}"
    )
    columns = [(kind, c) for kind in args.kinds for c in args.concurrency]
    header = f"{'client':24}" + "".join(f" | {f'{kind} c={c}':>28}" for kind, c in columns)
    print(header)
    print("-" * len(header))
    for name, (label, _) in clients.items():
        cells = []
        for kind, c in columns:
            value = statistics.median(rps[(name, kind, c)])
            reference = statistics.median(rps[("aiohttp", kind, c)])
            cpu_us = statistics.median(cpu[(name, kind, c)])
            cells.append(f"{value:>8,.0f} ({value / reference:4.2f}x) {cpu_us:>5,.0f}us")
        print(f"{label:24}" + "".join(f" | {cell:>28}" for cell in cells))
    errors = {name: n for name, n in failed.items() if n}
    if errors:
        print("failed calls: " + ", ".join(f"{name} {n}" for name, n in errors.items()))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
