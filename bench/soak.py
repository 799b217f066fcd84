"""Soak and load: one ``routerd serve`` process under many slow streams, and under a long mix of requests and faults.

    .venv/bin/python bench/soak.py streams [--streams 1000] [--chunk-delay-ms 500] [--rounds 3]
    .venv/bin/python bench/soak.py mixed [--requests 100000] [--concurrency 64] [--seed 0]

Both start a mock upstream on 127.0.0.1 and the gateway as it ships (``routerd serve`` as a subprocess, one worker,
the `openai` backend on the mock, its own data directory with the SQLite audit log in a temporary folder; the
plugins that would reach beyond 127.0.0.1 off, as in bench/overhead.py, whose helpers start and stop it). The
gateway is the real ``routerd serve``, so its garbage collector runs as in production. Everything is bounded: the
request counts, each request's client timeout (``--request-timeout``), each phase (``--run-timeout``), and every
process started here is stopped at the end, also on ^C or SIGTERM.

``streams`` (issue 14: "1,000 concurrent slow streams on one process"): each round opens ``--streams`` streamed chat
completions at once against the mock trickling its 9 events ``--chunk-delay-ms`` apart (so each stream lasts about
ten times that), and reads every one to its end. Per round: the gateway's peak RSS (``VmRSS`` of /proc/<pid>/status,
sampled every 100 ms) and its RSS before the round, its CPU time (user + system, /proc/<pid>/stat) for the round,
the answers by status (and exceptions by type), streams that did not end with ``[DONE]``, and the time to the first
``data:`` event, p50 and p99 (the mock itself waits ``--chunk-delay-ms`` before its first event: that delay is part
of the figure, so three streams alone, direct and through the gateway, are timed first and printed beside it).
Admission control's refusals (429/503 ``overloaded``, the limits configured) are counted apart from failures.
Printed: the median over the rounds of each figure, lowest and highest beside.

``mixed`` (issue 14: "100,000 mixed requests with faults injected"): ``--concurrency`` clients send ``--requests``
requests drawn (seeded) from a mix (`MIX`): JSON chat completions, streamed ones, embeddings, and faults: the
upstream answers 500, resets the connection mid-answer, or stalls (bench/faulty_upstream.py, asked through a marker
in the prompt), the client leaves a stream after its first bytes, or leaves a JSON request (one the upstream stalls
on) after 0.3 s, or the body is over the gateway's limit. First a warm-up (``--warmup``: 10% of the requests, at
least 6,000 so that the audit log's in-memory window of the last decisions is full, at most half), then the rest in
two halves, the client's connections closed and the gateway left idle ``--settle`` seconds before each reading.
Printed: the gateway's RSS after start-up, after the warm-up (the "start"), between the halves and at the end, and
the end against the start (target: within 5%); its open file descriptors (/proc/<pid>/fd) by kind after the warm-up
and at the end (target: no growth outside the upstream connection pool, whose idle keep-alive connections follow
the load just before); the answers per kind by status; the healthy requests that failed (target: none); the audit
rows in the gateway's SQLite database against the chat completions sent (target: one row each); throughput and the
gateway's CPU time per request. The limits that answer the faults are the gateway's configured ones, printed from
``routerd config show`` with the figures; the soak lowers the body limit to 64 KiB and the dispatch timeouts, so
that oversized bodies and stalls cost little, and puts the breaker out of reach (`MIXED_ENV`; ``--gateway-env``
changes any of it).

Both print the load average (1, 5, 15 minutes; start -> end), the commit measured and the date, and exit 1 when a
target is missed or a healthy request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import mock_upstream  # noqa: E402
from overhead import _loads, _percentile, _routerd_command, decisions_written, measured_commit, start_gateway, stop  # noqa: E402

import faulty_upstream  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
RSS_TARGET = 0.05  # the end within 5% of the start
# The gateway keeps its last `audit.remembered` decisions (5,000 by default) in memory, for GET /admin/decisions:
# RSS grows until that window is full, so the warm-up fills it before the start is measured.
WARMUP_AT_LEAST = 6000
# The gateway's settings for the mixed soak (each can be overridden with --gateway-env).
MIXED_ENV = {
    "ROUTERD__SERVER__MAX_BODY_BYTES": str(64 * 1024),  # oversized bodies cost little to send
    "ROUTERD__DISPATCH__GENERATION_TIMEOUT": "5",  # a stalled JSON answer is cut after 5 s
    "ROUTERD__DISPATCH__FIRST_TOKEN_TIMEOUT": "5",
    "ROUTERD__DISPATCH__IDLE_TIMEOUT": "2",  # a stalled stream after 2 s
    # The soak measures resources, not the breaker: injected faults in a row would otherwise take the one
    # backend out of rotation for its cooldown and fail the healthy requests behind them.
    "ROUTERD__DISPATCH__BREAKER_FAILURES": "1000000",
}
# The mix: kind -> weight (per thousand requests).
MIX = {
    "json": 450,
    "stream": 300,
    "embeddings": 150,
    "upstream_500": 20,
    "upstream_reset_json": 10,
    "upstream_reset_stream": 20,
    "upstream_stall_json": 2,
    "upstream_stall_stream": 3,
    "client_leaves_stream": 30,
    "client_leaves_json": 5,
    "oversized_body": 15,
}
HEALTHY = ("json", "stream", "embeddings")
LEAVE_AFTER = 0.3  # seconds a client_leaves_json client waits for its (stalled) answer
JSON_HEADERS = {"Content-Type": "application/json"}
CHAT_KINDS = tuple(kind for kind in MIX if kind not in ("embeddings", "oversized_body"))


# -- the gateway process, seen from /proc --------------------------------------------------------
def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def fds_by_kind(pid: int, upstream_port: int) -> collections.Counter:
    """The gateway's open descriptors by kind: ``upstream`` (TCP to the upstream: its connection pool), ``client``
    (TCP from clients), ``listening``, ``other tcp``, and the rest by type (``socket``, ``pipe``, ``file``, ...)."""
    tcp: dict[str, tuple[int, int, str]] = {}  # inode -> local port, remote port, state
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError), open(f"/proc/{pid}/net/{table}") as rows:
            next(rows)
            for row in rows:
                cols = row.split()
                local, remote = int(cols[1].rsplit(":", 1)[1], 16), int(cols[2].rsplit(":", 1)[1], 16)
                tcp[cols[9]] = (local, remote, cols[3])
    kinds: collections.Counter = collections.Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found = tcp.get(target[8:-1])
            if found is None:
                kinds["socket"] += 1
            elif found[2] == "0A":
                kinds["listening"] += 1
            elif found[1] == upstream_port:
                kinds["upstream"] += 1
            else:
                kinds["client" if found[1] != 0 else "other tcp"] += 1
        else:
            kinds[target.split(":", 1)[0] if ":" in target else "file"] += 1
    return kinds


class RssSampler:
    """The gateway's RSS every `interval` seconds while running; its peak and its samples."""

    def __init__(self, pid: int, interval: float) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[int] = []
        self.task: asyncio.Task | None = None

    async def _run(self) -> None:
        while True:
            self.samples.append(rss_kib(self.pid))
            await asyncio.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        self.task.cancel()
        self.samples.append(rss_kib(self.pid))

    @property
    def peak(self) -> int:
        return max(self.samples)


def configured_limits(env: dict[str, str]) -> str:
    """The gateway's effective server and dispatch settings (``routerd config show --json``), in one line each."""
    full = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "ROUTERD_", "ROUTERD__"))}
    full.update(env)
    try:
        shown = subprocess.run(
            [*_routerd_command(), "config", "show", "--json"], env=full, capture_output=True, text=True, timeout=60
        )
        settings = json.loads(shown.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return "limits configured: unknown (routerd config show failed)"
    lines = ["limits configured (routerd config show):"]
    for section in ("server", "dispatch", "audit", "admission", "database"):
        if isinstance(settings.get(section), dict):
            values = {k: v for k, v in settings[section].items() if k not in ("host", "port", "url", "log_level")}
            lines.append(f"  [{section}] " + ", ".join(f"{k}={v}" for k, v in values.items()))
    return "\n".join(lines)


def _chat(prompt: str, stream: bool) -> bytes:
    body = {"model": "routerd", "messages": [{"role": "user", "content": prompt}]}
    if stream:
        body["stream"] = True
    return json.dumps(body).encode()


def _header(kind: str, args: argparse.Namespace, loads: list[str], env: dict[str, str]) -> None:
    print()
    print(
        f"soak {kind}, {time.strftime('%Y-%m-%d %H:%M')} UTC, {measured_commit()}, {os.cpu_count()} cores; "
        f"load average {' -> '.join(loads)} (1, 5, 15 min; start -> end)"
    )
    print(configured_limits(env))


def _mib(kib: float) -> str:
    return f"{kib / 1024:,.1f} MiB"


# -- streams: many slow streams at once ----------------------------------------------------------
@dataclass
class StreamRound:
    statuses: collections.Counter = field(default_factory=collections.Counter)
    unfinished: int = 0  # 200 answers that did not end with [DONE]
    samples: list[str] = field(default_factory=list)  # a few failed answers
    refused: int = 0  # 429/503 "overloaded" from admission control, as configured
    retry_after: collections.Counter = field(default_factory=collections.Counter)  # their Retry-After values
    firsts: list[float] = field(default_factory=list)
    rss_before: int = 0
    rss_peak: int = 0
    rss_after: int = 0
    cpu: float = 0.0
    seconds: float = 0.0


async def _one_stream(session: aiohttp.ClientSession, url: str, body: bytes, result: StreamRound) -> None:
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            result.statuses[response.status] += 1
            seen, first = b"", None
            async for data in response.content.iter_any():
                if first is None:
                    seen += data
                    if b"data:" in seen:
                        first = time.perf_counter() - started
                        result.firsts.append(first)
                        seen = seen[-32:]
                else:
                    seen = (seen + data)[-64:]
            if response.status == 200 and not seen.rstrip().endswith(b"data: [DONE]"):
                result.unfinished += 1
                if len(result.samples) < 3:
                    result.samples.append(f"200 ending {seen[-64:]!r}")
            elif response.status in (429, 503) and b"overloaded" in seen:
                result.refused += 1
                result.retry_after[response.headers.get("Retry-After")] += 1
            elif response.status != 200 and len(result.samples) < 3:
                result.samples.append(f"{response.status} {seen[:160]!r}")
    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
        result.statuses[type(exc).__name__] += 1


async def reference(url: str, body: bytes, client_timeout: aiohttp.ClientTimeout) -> StreamRound:
    """Three streams alone, for the time to first event without load."""
    result = StreamRound()
    async with aiohttp.ClientSession(timeout=client_timeout) as session:
        await asyncio.gather(*(_one_stream(session, url, body, result) for _ in range(3)))
    return result


async def run_streams(
    args: argparse.Namespace, base: str, pid: int, upstream: str
) -> tuple[list[StreamRound], dict[str, StreamRound]]:
    url = base + "/v1/chat/completions"
    body = _chat("Say hello.", stream=True)
    timeout = aiohttp.ClientTimeout(total=args.request_timeout)
    alone = {
        "direct": await reference(upstream + "/chat/completions", body, timeout),
        "gateway": await reference(url, body, timeout),
    }
    rounds = []
    for number in range(args.rounds):
        result = StreamRound(rss_before=rss_kib(pid))
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            cpu, started = cpu_seconds(pid), time.perf_counter()
            with RssSampler(pid, 0.1) as sampler:
                tasks = [_one_stream(session, url, body, result) for _ in range(args.streams)]
                await asyncio.wait_for(asyncio.gather(*tasks), args.run_timeout)
            result.seconds = time.perf_counter() - started
            result.cpu = cpu_seconds(pid) - cpu
            result.rss_peak = sampler.peak
        await asyncio.sleep(1.0)
        result.rss_after = rss_kib(pid)
        rounds.append(result)
        print(
            f"  round {number + 1}/{args.rounds}: {dict(result.statuses)}, {result.seconds:.1f} s, "
            f"peak RSS {_mib(result.rss_peak)}",
            file=sys.stderr,
            flush=True,
        )
    return rounds, alone


def report_streams(
    args: argparse.Namespace, rounds: list[StreamRound], alone: dict[str, StreamRound], rss_started: int
) -> bool:
    def figure(values: list[float], fmt: str) -> str:
        return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"

    print(
        f"{args.rounds} rounds of {args.streams:,} concurrent streamed chat completions, the mock waiting "
        f"{args.chunk_delay_ms:g} ms before each of its 9 events; median over the rounds (lowest-highest):"
    )
    p50s = [_percentile(r.firsts, 50) * 1000 for r in rounds if r.firsts]
    p99s = [_percentile(r.firsts, 99) * 1000 for r in rounds if r.firsts]
    print(f"  gateway RSS after start-up          {_mib(rss_started)}")
    print(f"  gateway RSS before a round          {figure([r.rss_before / 1024 for r in rounds], '{:,.1f}')} MiB")
    print(f"  gateway peak RSS during a round     {figure([r.rss_peak / 1024 for r in rounds], '{:,.1f}')} MiB")
    print(f"  gateway RSS 1 s after a round       {figure([r.rss_after / 1024 for r in rounds], '{:,.1f}')} MiB")
    print(f"  gateway CPU time per round          {figure([r.cpu for r in rounds], '{:.2f}')} s")
    print(f"  gateway CPU time per stream         {figure([r.cpu / args.streams * 1e3 for r in rounds], '{:.2f}')} ms")
    print(f"  round duration                      {figure([r.seconds for r in rounds], '{:.2f}')} s")
    if p50s:
        print(f"  time to first data: event, p50      {figure(p50s, '{:,.0f}')} ms (the mock's own wait included)")
        print(f"  time to first data: event, p99      {figure(p99s, '{:,.0f}')} ms")
    firsts = {target: max(r.firsts, default=float("nan")) * 1000 for target, r in alone.items()}
    print(
        f"  the same, 3 streams alone (slowest) direct to the mock {firsts['direct']:,.0f} ms, through the gateway "
        f"{firsts['gateway']:,.0f} ms"
    )
    statuses: collections.Counter = collections.Counter()
    for r in rounds:
        statuses.update(r.statuses)
    unfinished = sum(r.unfinished for r in rounds)
    refused = sum(r.refused for r in rounds)
    retry_after: collections.Counter = collections.Counter()
    for r in rounds:
        retry_after.update(r.retry_after)
    failed = sum(n for status, n in statuses.items() if status != 200) + unfinished - refused
    print(
        f"  answers by status (all rounds)      {dict(statuses)}; 200 without [DONE]: {unfinished}; "
        f"refused by admission control ('overloaded'): {refused:,}"
        + (f" (Retry-After: {dict(retry_after)})" if refused else "")
        + f"; failed otherwise: {failed} of {args.streams * args.rounds:,}"
    )
    samples = [sample for r in rounds for sample in r.samples][:3]
    if samples:
        print(f"  failures, for example               {'; '.join(samples)}")
    return failed == 0


# -- mixed: a long mix of requests and faults ------------------------------------------------------
@dataclass
class MixedTally:
    by_kind: dict[str, collections.Counter] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter)
    )
    healthy_failed: list[str] = field(default_factory=list)
    sent: collections.Counter = field(default_factory=collections.Counter)


class MixedClient:
    def __init__(self, base: str, args: argparse.Namespace) -> None:
        self.chat_url = base + "/v1/chat/completions"
        self.embed_url = base + "/v1/embeddings"
        self.args = args
        self.tally = MixedTally()
        oversized = "x" * (args.oversized_kib * 1024)
        self.bodies = {
            "json": _chat("Say hello.", False),
            "stream": _chat("Say hello.", True),
            "upstream_500": _chat("Say hello. fault:500", False),
            "upstream_reset_json": _chat("Say hello. fault:reset", False),
            "upstream_reset_stream": _chat("Say hello. fault:reset", True),
            "upstream_stall_json": _chat("Say hello. fault:stall", False),
            "upstream_stall_stream": _chat("Say hello. fault:stall", True),
            "client_leaves_stream": _chat("Tell me a story.", True),
            "client_leaves_json": _chat("Say hello. fault:stall", False),  # the client gives up after 0.3 s
            "oversized_body": _chat(oversized, False),
            "embeddings": json.dumps({"model": mock_upstream.MODEL, "input": ["one", "two"]}).encode(),
        }

    async def one(self, session: aiohttp.ClientSession, kind: str) -> None:
        url = self.embed_url if kind == "embeddings" else self.chat_url
        tally = self.tally
        tally.sent[kind] += 1
        if kind == "client_leaves_json":
            try:
                async with asyncio.timeout(LEAVE_AFTER):
                    async with session.post(url, data=self.bodies[kind], headers=JSON_HEADERS) as r:
                        outcome = r.status
            except TimeoutError:
                outcome = f"left after {LEAVE_AFTER:g} s"
            except (aiohttp.ClientError, OSError) as exc:
                outcome = type(exc).__name__
            tally.by_kind[kind][outcome] += 1
            return
        try:
            async with session.post(url, data=self.bodies[kind], headers=JSON_HEADERS) as r:
                if kind == "client_leaves_stream":
                    await r.content.readany()  # the first bytes, then the client is gone
                    r.close()
                    tally.by_kind[kind][r.status] += 1
                    return
                body = await r.read()
                outcome: int | str = r.status
                if kind == "stream" and r.status == 200 and not body.rstrip().endswith(b"data: [DONE]"):
                    outcome = "200 without [DONE]"
                elif r.status == 200 and kind.endswith("_stream") and b"error" in body:
                    outcome = "200 with an error event"
                tally.by_kind[kind][outcome] += 1
                if kind in HEALTHY and outcome != 200 and len(tally.healthy_failed) < 5:
                    tally.healthy_failed.append(f"{kind}: {outcome} {body[:160]!r}")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            tally.by_kind[kind][type(exc).__name__] += 1
            if kind in HEALTHY and len(tally.healthy_failed) < 5:
                tally.healthy_failed.append(f"{kind}: {exc!r}")

    async def phase(self, kinds: list[str]) -> float:
        """Send `kinds` with --concurrency clients on fresh connections, closed at the end; returns seconds."""
        queue = iter(kinds)
        timeout = aiohttp.ClientTimeout(total=self.args.request_timeout)
        connector = aiohttp.TCPConnector(limit=self.args.concurrency)
        started = time.perf_counter()
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

            async def worker() -> None:
                for kind in queue:
                    await self.one(session, kind)

            await asyncio.wait_for(
                asyncio.gather(*(worker() for _ in range(self.args.concurrency))), self.args.run_timeout
            )
        return time.perf_counter() - started


def healthy_failures(tally: MixedTally) -> int:
    return sum(n for kind in HEALTHY for outcome, n in tally.by_kind[kind].items() if outcome != 200)


async def run_mixed(args: argparse.Namespace, base: str, pid: int, data_dir: str, upstream_port: int) -> dict:
    rng = random.Random(args.seed)
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=args.requests)
    warm = args.warmup
    client = MixedClient(base, args)
    figures: dict = {"rss_started": rss_kib(pid), "fds_started": open_fds(pid), "rows_before": 0}
    figures["rows_before"] = decisions_written(data_dir, settle=2.0) or 0
    cpu = cpu_seconds(pid)
    figures["warmup_seconds"] = await client.phase(kinds[:warm])
    await asyncio.sleep(args.settle)
    figures["rss_start"], figures["fds_start"] = rss_kib(pid), open_fds(pid)
    figures["kinds_start"] = fds_by_kind(pid, upstream_port)
    print(
        f"  warm-up: {warm:,} requests in {figures['warmup_seconds']:.1f} s; RSS {_mib(figures['rss_start'])}, "
        f"{figures['fds_start']} fds",
        file=sys.stderr,
        flush=True,
    )
    main_kinds = kinds[warm:]
    half = len(main_kinds) // 2
    main_cpu = cpu_seconds(pid)
    with RssSampler(pid, 1.0) as sampler:
        first = await client.phase(main_kinds[:half])
        figures["rss_middle"], figures["fds_middle"] = rss_kib(pid), open_fds(pid)  # between the halves, under load
        print(f"  middle: RSS {_mib(figures['rss_middle'])}, {figures['fds_middle']} fds", file=sys.stderr, flush=True)
        second = await client.phase(main_kinds[half:])
    figures["main_seconds"] = first + second
    figures["main_cpu"] = cpu_seconds(pid) - main_cpu
    figures["rss_peak"] = sampler.peak
    await asyncio.sleep(args.settle)
    figures["rss_end"], figures["fds_end"] = rss_kib(pid), open_fds(pid)
    figures["kinds_end"] = fds_by_kind(pid, upstream_port)
    figures["cpu"] = cpu_seconds(pid) - cpu
    figures["tally"] = client.tally
    figures["main_requests"] = len(main_kinds)
    return figures


def report_mixed(args: argparse.Namespace, figures: dict, rows: int | None) -> bool:
    tally: MixedTally = figures["tally"]
    total = sum(tally.sent.values())
    print(
        f"{total:,} mixed requests ({args.warmup:,} as warm-up, then the rest in two halves) at concurrency "
        f"{args.concurrency}, seed {args.seed}; the mix per thousand: "
        + ", ".join(f"{kind} {weight}" for kind, weight in MIX.items())
    )
    print(
        f"  throughput (main phase)             {figures['main_requests'] / figures['main_seconds']:,.0f} req/s, "
        f"{figures['main_seconds']:.1f} s; gateway CPU {figures['main_cpu']:.1f} s "
        f"({figures['main_cpu'] / figures['main_requests'] * 1e6:,.0f} us per request)"
    )
    start, end = figures["rss_start"], figures["rss_end"]
    drift = (end - start) / start
    rss_ok = abs(drift) <= RSS_TARGET
    print(f"  gateway RSS after start-up          {_mib(figures['rss_started'])}")
    print(
        f"  gateway RSS start / middle / end    {_mib(start)} / {_mib(figures['rss_middle'])} / {_mib(end)}; "
        f"peak {_mib(figures['rss_peak'])}"
    )
    print(f"  RSS end against start               {drift:+.1%} (target: within {RSS_TARGET:.0%}): {_verdict(rss_ok)}")
    if args.warmup < WARMUP_AT_LEAST:
        print(
            f"  (a warm-up of {args.warmup:,} requests does not fill the audit log's in-memory window of the last "
            "decisions, audit.remembered: RSS still grows by design after it; run more requests for this figure)"
        )
    # The upstream connection pool keeps idle keep-alive connections for a while (aiohttp: 15 s) and holds as many
    # as the concurrency asked for, so its count moves with the load just before; every other descriptor must not.
    start_kinds, end_kinds = figures["kinds_start"], figures["kinds_end"]
    grown = {kind: end_kinds[kind] - start_kinds[kind] for kind in end_kinds if kind != "upstream"}
    fds_ok = all(n <= 0 for n in grown.values())
    print(
        f"  gateway open fds: after start-up {figures['fds_started']}, start {figures['fds_start']}, "
        f"middle (under load) {figures['fds_middle']}, end {figures['fds_end']}"
    )
    print(
        "  fds by kind, start -> end           "
        + ", ".join(f"{kind} {start_kinds[kind]} -> {end_kinds[kind]}" for kind in sorted(start_kinds | end_kinds))
    )
    print(
        f"  fd growth outside the upstream pool {sum(grown.values()):+d} (target: none; the pool's idle keep-alive "
        f"connections vary with the load before): {_verdict(fds_ok)}"
    )
    print("  answers by kind (sent: outcome counts):")
    for kind in MIX:
        outcomes = ", ".join(f"{outcome}: {n:,}" for outcome, n in sorted(tally.by_kind[kind].items(), key=str))
        print(f"    {kind:<22} {tally.sent[kind]:>7,}: {outcomes}")
    failed = healthy_failures(tally)
    print(
        f"  healthy requests that failed        {failed:,}"
        + (f" ({'; '.join(tally.healthy_failed)})" if failed else "")
    )
    chats = sum(tally.sent[kind] for kind in CHAT_KINDS)
    rows_ok = True
    if rows is None:
        print("  audit rows                          no SQLite database found")
        rows_ok = False
    else:
        written = rows - figures["rows_before"]
        rows_ok = written >= chats
        print(
            f"  audit rows written during the run   {written:,} for {chats:,} chat completions sent "
            f"({figures['rows_before']} before, from start-up; {total - chats:,} embeddings and oversized bodies "
            f"not counted): {_verdict(rows_ok)}"
        )
    return rss_ok and fds_ok and rows_ok and failed == 0


def _verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


# -- main ------------------------------------------------------------------------------------------
def _run(coro):
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(coro)
    return uvloop.run(coro)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="kind", required=True)
    streams = sub.add_parser("streams", help="many concurrent slow streams")
    streams.add_argument("--streams", type=int, default=1000, help="concurrent streams per round (default 1000)")
    streams.add_argument("--chunk-delay-ms", type=float, default=500.0, help="the mock's pause per event (500)")
    streams.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    mixed = sub.add_parser("mixed", help="a long mix of requests and faults")
    mixed.add_argument("--requests", type=int, default=100_000, help="requests in all (default 100000)")
    mixed.add_argument("--concurrency", type=int, default=64, help="concurrent clients (default 64)")
    mixed.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="requests sent as warm-up, before RSS and fds are first read (default: 10%% of --requests, at least "
        f"{WARMUP_AT_LEAST:,} so that the audit log's in-memory window is full, at most half of them)",
    )
    mixed.add_argument("--seed", type=int, default=0)
    mixed.add_argument("--stall-s", type=float, default=10.0, help="how long a stalled upstream stays silent (10)")
    mixed.add_argument("--oversized-kib", type=int, default=128, help="size of the oversized bodies (128 KiB)")
    mixed.add_argument("--settle", type=float, default=3.0, help="idle seconds before RSS and fds are read (3)")
    for each in (streams, mixed):
        each.add_argument("--request-timeout", type=float, default=60.0, help="one request's client timeout (60)")
        each.add_argument("--run-timeout", type=float, default=1800.0, help="seconds one phase may take (1800)")
        each.add_argument(
            "--gateway-env", action="append", default=[], metavar="KEY=VALUE", help="extra gateway environment"
        )
    args = parser.parse_args(argv)
    if args.kind == "mixed":
        if args.warmup is None:
            args.warmup = min(max(args.requests // 10, WARMUP_AT_LEAST), args.requests // 2)
        if not 1 <= args.warmup < args.requests:
            parser.error("--warmup must be at least 1 and fewer than --requests")
    if any("=" not in item for item in args.gateway_env):
        parser.error("--gateway-env takes KEY=VALUE")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = dict(MIXED_ENV) if args.kind == "mixed" else {}
    env.update(dict(item.split("=", 1) for item in args.gateway_env))

    upstream_process = gateway = None
    data_dir = tempfile.mkdtemp(prefix="routerd-soak-")
    try:
        if args.kind == "streams":
            upstream_process, upstream = mock_upstream.spawn(chunk_delay_ms=args.chunk_delay_ms)
        else:
            upstream_process, upstream = faulty_upstream.spawn(stall_s=args.stall_s)
        gateway, base = start_gateway(upstream, data_dir, Path(data_dir) / "gateway.log", env)
        print(f"gateway {base} (pid {gateway.pid}), upstream {upstream}; data in {data_dir}", file=sys.stderr)
        loads = [_loads()]
        if args.kind == "streams":
            rss_started = rss_kib(gateway.pid)
            rounds, alone = _run(run_streams(args, base, gateway.pid, upstream))
            loads.append(_loads())
            _header("streams", args, loads, env)
            ok = report_streams(args, rounds, alone, rss_started)
        else:
            upstream_port = int(upstream.rsplit(":", 1)[1].split("/", 1)[0])
            figures = _run(run_mixed(args, base, gateway.pid, data_dir, upstream_port))
            loads.append(_loads())
            rows = decisions_written(data_dir, settle=30.0)
            _header("mixed", args, loads, env)
            ok = report_mixed(args, figures, rows)
        if gateway.poll() is not None:
            print("the gateway exited during the run", file=sys.stderr)
            return 1
        return 0 if ok else 1
    except (TimeoutError, RuntimeError) as exc:
        print(f"soak: {exc!r}", file=sys.stderr)
        with contextlib.suppress(OSError):
            print((Path(data_dir) / "gateway.log").read_text(errors="replace")[-2000:], file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("soak: interrupted", file=sys.stderr)
        return 130
    finally:
        stop(gateway)
        stop(upstream_process)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
