"""Proxy overhead: the gateway against calling the upstream directly, side by side in one run.

    .venv/bin/python bench/overhead.py [--requests 2000] [--concurrency 1 32] [--rounds 3]
        [--data ../shared/eval/routing/routellm_mmlu_gsm8k.jsonl] [--prices ../shared/eval/routing/models.json]

Starts the zero-latency mock upstream (bench/mock_upstream.py: two models, ``mock-7b`` and ``mock-70b``) and the
gateway as it ships (``routerd serve``, one worker, routing with every default scorer, the audit log, the
signature, background profiling, the `openai` backend pointed at the mock), with what a running gateway has that a
fresh one lacks, so that every scorer that can have an opinion has one and pays for it:

- `learned` trained on `--data` (the evaluation file's weak and strong model mapped onto ``mock-7b`` and
  ``mock-70b`` with `model_names`; the lexical model, ``embedder = "none"``: the default without the extra
  ``embeddings``, and with it the neighbour index would first embed 15,344 prompts for 3 to 25 minutes in the
  background; ``reload_interval`` a day, so that no retraining falls inside the measurement);
- `cost` with the list prices of `--prices` for the same two models;
- `feedback` with two ratings given through ``POST /v1/feedback``;
- `profiles` with the profiles background profiling makes of the two models at start-up.

It waits (through the gateway: the explanation of a decision, ``GET /admin/decisions/{id}``) until `learned` and
`profiles` contribute, checks the gateway's answers (signature, routing headers, the decision's explanation, stream
end, embeddings) and which scorers contribute to the routing of the benchmark's prompt, prints them with a reason
each, and says why the others have no opinion (`benchmarks`: no leaderboard is synced, since its sources download
from the internet and are off here, and it gives no opinion on a "simple" prompt anyway). A required scorer that
has no opinion stops the benchmark (exit 1).

Then a load generator in a process of its own (bench/load_generator.py: raw keep-alive connections on uvloop,
pre-built requests, httptools' parser, every answer checked) measures, for JSON chat completions and for streamed
ones, at each concurrency, requests per second and latency (for streams: time to the first ``data:`` event)
direct to the mock and through the gateway, the gateway's CPU time per request and the load generator's own.
Direct and gateway runs alternate (ABBA across rounds) so that the machine's noise falls on both alike. Every
figure printed is the median over the rounds of that figure in each round (p50 and p99 are taken per round), with
the lowest and highest req/s beside it. The gateway is the real ``routerd serve``, so its garbage collector runs
exactly as in production (the app's lifespan: ``gc.freeze()`` after start-up, the young threshold
``routerd.app.GC_YOUNG_THRESHOLD``, never disabled); the load generator and the mock, which are not measured, keep
Python's default collector. It prints the table, the load average (1, 5 and 15 minutes, at the start and the end),
the commit measured, and whether the targets are met, and exits 0 (1 when a run had errors, a required scorer had
no opinion or the gateway would not start; 2 when `--data` or `--prices` is missing), stopping every process it
started (also on ^C or SIGTERM); every run is bounded by ``--run-timeout``.

Targets (bench/README.md): added p50 under 1 ms at concurrency 1, and at least 1,500 requests/s
through one gateway worker at concurrency 32, against a zero-latency upstream.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import mock_upstream  # noqa: E402

TARGET_ADDED_P50_MS = 1.0
TARGET_RPS = 1500
TARGET_RPS_CONCURRENCY = 32
PROMPT = "Say hello."
EVAL_DATA = HERE.parents[1] / "shared" / "eval" / "routing"
DATA = EVAL_DATA / "routellm_mmlu_gsm8k.jsonl"
PRICES = EVAL_DATA / "models.json"
# The evaluation data's models -> the mock's: the weak one onto the small model, the strong one onto the large one.
MODEL_NAMES = {"mixtral-8x7b-instruct-v0.1": mock_upstream.MODEL, "gpt-4-1106-preview": mock_upstream.STRONG_MODEL}
# Plugins that would start processes or reach beyond 127.0.0.1 on their own.
OFF_PLUGINS = ("local", "hf_leaderboard", "lmsys_arena")


def third_party_plugins() -> list[str]:
    """Installed plugins that routerd does not ship (a dev venv has the plugin template's): off, so
    that the gateway measured is the gateway as it ships."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group="routerd") if ep.dist is None or ep.dist.name != "routerd"})


# -- the load generator (runs in its own process) -------------------------------------------------
def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _loadgen_main(conn) -> None:
    """Serve measurement commands from the parent over a pipe until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles ^C and stops us
    import load_generator

    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    while True:
        command = conn.recv()
        if command is None:
            return
        conn.send(runner(load_generator.run(**command)))


# -- processes -------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _post(url: str, body: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def _routerd_command() -> list[str]:
    script = Path(sys.executable).with_name("routerd")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from routerd.cli import main; main()"]


def start_gateway(
    upstream: str, data_dir: str, log_path: Path, extra_env: dict[str, str]
) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROUTER_", "ROUTERD_", "ROUTERD__"))}
    env.update(
        {
            "ROUTER_OPENAI_BASE_URL": upstream,
            "ROUTERD__DATA_DIR": data_dir,
            "ROUTERD__SERVER__LOG_LEVEL": "warning",
            "ROUTERD__BACKENDS__PROVIDER": "openai",  # only the mock: no other backend polled on localhost
            # Nothing but 127.0.0.1: no bundled model server, no benchmark downloads (a plugin that is
            # not installed is ignored, with a warning).
            **{f"ROUTERD__PLUGINS__{name.upper()}__ENABLED": "false" for name in OFF_PLUGINS},
            **{f"ROUTERD__PLUGINS__{name.upper()}__ENABLED": "false" for name in third_party_plugins()},
            **extra_env,
        }
    )
    log = log_path.open("wb")
    process = subprocess.Popen(
        [*_routerd_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            status, _ = _get(base + "/readyz")
            listed = _get(base + "/v1/models")[1] if status == 200 else b""
            if all(f'"{name}"'.encode() in listed for name in mock_upstream.MODELS_SERVED):
                return process, base
        except OSError:
            pass
        time.sleep(0.2)
    stop(process)
    tail = log_path.read_text(errors="replace")[-3000:]
    raise RuntimeError(f"the gateway did not become ready:\n{tail}")


def stop(process: subprocess.Popen | None) -> None:
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def scorer_settings(data: Path, prices: Path) -> dict[str, str]:
    """The environment that gives the scorers what a running gateway has (see the module): `learned` trained on
    `data`, `cost` with the prices of `prices`, both for the evaluation data's models mapped onto the mock's."""
    listed = json.loads(prices.read_text())
    mock_prices = {}
    for name, mock in MODEL_NAMES.items():
        price = listed[name]  # input and output averaged, as `cost` takes them
        mock_prices[mock] = (price["input_usd_per_mtok"] + price["output_usd_per_mtok"]) / 2
    return {
        "ROUTERD__PLUGINS__LEARNED__DATA": json.dumps([str(data)]),
        "ROUTERD__PLUGINS__LEARNED__MODEL_NAMES": json.dumps(MODEL_NAMES),
        "ROUTERD__PLUGINS__LEARNED__EMBEDDER": "none",
        "ROUTERD__PLUGINS__LEARNED__RELOAD_INTERVAL": "86400",
        "ROUTERD__PLUGINS__COST__PRICES": json.dumps(mock_prices),
    }


# The scorers the gateway ships with: the benchmark measures routing with all of them on, and all but `benchmarks`
# must have an opinion on its prompt (`NO_OPINION_HERE` says why that one has none).
DEFAULT_SCORERS = ("size_fit", "speed", "cost", "diversity", "feedback", "profiles", "benchmarks", "learned")
NO_OPINION_HERE = ("benchmarks",)
RATINGS = 2  # ratings given through POST /v1/feedback, for the `feedback` scorer


@dataclass
class Probe:
    """Requests sent to a gateway before it is timed: its answers checked, its scorers' opinions read."""

    base: str
    chats: int = 0  # chat completions sent (the audit log writes a decision for each)

    def chat(self, stream: bool = False) -> tuple[int, dict[str, str], bytes]:
        self.chats += 1
        return _post(self.base + "/v1/chat/completions", _chat_body(stream))

    def decision(self, headers: dict[str, str]) -> dict | None:
        status, body = _get(f"{self.base}/admin/decisions/{headers.get('x-routerd-decision-id', '')}")
        return json.loads(body) if status == 200 else None

    def opinions(self) -> tuple[dict[str, str], dict | None]:
        """One routed chat: each scorer that contributed to its decision, with a reason (the chosen model's, or the
        first candidate's that has one), and the decision."""
        _, headers, _ = self.chat()
        decision = self.decision(headers)
        found: dict[str, str] = {}
        if decision is None:
            return found, None
        candidates = sorted(decision["candidates"], key=lambda c: c["model"] != decision["chosen_model"])
        for candidate in candidates:
            for name, contribution in candidate["contributions"].items():
                found.setdefault(name, f"{candidate['model']}: {contribution['reason']}")
        return found, decision


def check_gateway(probe: Probe) -> tuple[list[str], list[str]]:
    """The gateway answers as it should before it is timed (signature, routing headers and the
    decision's explanation, stream end, embeddings) and routes with every default scorer; returns
    the problems found and the scorers it routes with."""
    problems = []
    base = probe.base
    status, headers, body = probe.chat()
    if status != 200 or b"Model: " not in body or "x-routerd-model" not in headers:
        problems.append(f"JSON chat: {status} {body[:200]!r}")
    decision = probe.decision(headers)
    if decision is None or not any("size_fit" in c["contributions"] for c in decision["candidates"]):
        problems.append(f"the decision's explanation: {decision!r:.200}")
    status, _, body = probe.chat(stream=True)
    if status != 200 or not body.endswith(b"data: [DONE]\n\n") or b"Model: " not in body:
        problems.append(f"streamed chat: {status} {body[-200:]!r}")
    embed = b'{"model": "%s", "input": ["one", "two"]}' % mock_upstream.MODEL.encode()
    status, _, body = _post(base + "/v1/embeddings", embed)
    if status != 200 or body.count(b'"embedding":[') != 2:
        problems.append(f"embeddings: {status} {body[:200]!r}")
    scorers: list[str] = []
    status, body = _get(base + "/admin/plugins")  # loopback clients are admin while no key is set
    if status == 200:
        plugins = json.loads(body)
        scorers = sorted(name for p in plugins if p["enabled"] for name in p["registered"].get("scorers", []))
    missing = [name for name in DEFAULT_SCORERS if name not in scorers]
    if missing:
        problems.append(f"the gateway does not route with every default scorer: {', '.join(missing)} missing")
    return problems, scorers


def await_opinions(probe: Probe, timeout: float) -> tuple[dict[str, str], dict | None, float]:
    """Route the benchmark's prompt until `learned` (trained in the background at start-up) and `profiles` (the
    background profiler's first round) contribute, then rate two answers for `feedback` and route it once more;
    returns the opinions of that last decision, the decision, and the seconds waited."""
    started = time.monotonic()
    deadline = started + timeout
    opinions, decision = probe.opinions()
    while not {"learned", "profiles"} <= opinions.keys() and time.monotonic() < deadline:
        time.sleep(0.5)
        opinions, decision = probe.opinions()
    waited = time.monotonic() - started
    rated = set()
    for _ in range(RATINGS):
        _, headers, _ = probe.chat()
        rated.add(headers.get("x-routerd-model"))
        body = json.dumps({"decision_id": headers.get("x-routerd-decision-id"), "rating": 1}).encode()
        status, _, answer = _post(probe.base + "/v1/feedback", body)
        if status not in (200, 201):
            raise RuntimeError(f"POST /v1/feedback: {status} {answer[:200]!r}")
    opinions, decision = probe.opinions()
    return opinions, decision, waited


def why_no_opinion(name: str, base: str, decision: dict | None) -> str:
    """Why a scorer had no opinion on the benchmark's prompt in this setup."""
    if name == "benchmarks":
        status, body = _get(base + "/admin/benchmarks/status")
        synced = status == 200 and b'"ok":true' in body.replace(b" ", b"")
        reasons = []
        if not synced:
            reasons.append(
                "no leaderboard is synced (its sources, hf_leaderboard and lmsys_arena, download from the internet "
                "and are off here)"
            )
        if decision is not None and decision["features"]["difficulty"] == "simple":
            reasons.append(f"the prompt {PROMPT!r} is 'simple', on which it gives no opinion by design")
        return "; and ".join(reasons) or "unknown"
    if name == "learned":
        return "not trained yet (see the gateway's log)"
    if name == "profiles":
        return "no profile of the mock's models yet"
    if name == "feedback":
        return "no rating reached it"
    if name == "cost":
        return "no price for the mock's models"
    return "unknown"


def report_opinions(target: str, probe: Probe, opinions: dict[str, str], decision: dict | None) -> list[str]:
    """Print which scorers contributed to the routing of the benchmark's prompt; return the required ones that did
    not."""
    print(f"{target}: scorers with an opinion on {PROMPT!r}:", file=sys.stderr)
    for name in sorted(opinions):
        print(f"  {name:<11} {opinions[name]}", file=sys.stderr)
    missing = []
    for name in DEFAULT_SCORERS:
        if name not in opinions:
            print(f"  {name:<11} NO OPINION: {why_no_opinion(name, probe.base, decision)}", file=sys.stderr)
            if name not in NO_OPINION_HERE:
                missing.append(name)
    sys.stderr.flush()
    return missing


def decisions_written(data_dir: str, settle: float = 10.0) -> int | None:
    """How many decisions the gateway's audit log has written to its SQLite database, once the
    count stops growing (the writer works in batches, in the background); None without one."""
    path = Path(data_dir) / "routerd.db"
    if not path.exists():
        return None
    count, deadline = -1, time.monotonic() + settle
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            now = db.execute("SELECT count(*) FROM routing_decisions").fetchone()[0]
        if now == count:
            break
        count = now
        time.sleep(0.5)
    return count


def _chat_body(stream: bool) -> bytes:
    stream_flag = b', "stream": true' if stream else b""
    return b'{"model": "routerd", "messages": [{"role": "user", "content": "%s"}]%s}' % (PROMPT.encode(), stream_flag)


# -- the measurement -------------------------------------------------------------------------------
@dataclass
class Series:
    """Every run (round) of one (kind, concurrency, target); each figure is the median of its rounds."""

    stream: bool
    rps: list[float] = field(default_factory=list)
    p50s: list[float] = field(default_factory=list)  # per round, ms: whole answers (json), first data: event (stream)
    p99s: list[float] = field(default_factory=list)
    errors: int = 0
    sent: int = 0  # requests sent, warm-ups included
    samples: list[str] = field(default_factory=list)
    cpu_per_request: list[float] = field(default_factory=list)  # of the gateway, in microseconds
    loadgen_cpu_per_request: list[float] = field(default_factory=list)  # of the load generator, in microseconds

    def add(self, result: dict) -> None:
        self.sent += result["sent"] + result["warmup"]
        self.rps.append(result["rps"])
        if result["done"]:
            if result["watched_cpu"] is not None:
                self.cpu_per_request.append(result["watched_cpu"] / result["done"] * 1e6)
            self.loadgen_cpu_per_request.append(result["loadgen_cpu"] / result["done"] * 1e6)
        latencies = result["firsts"] if self.stream else result["latencies"]
        if latencies:
            self.p50s.append(_percentile(latencies, 50) * 1000)
            self.p99s.append(_percentile(latencies, 99) * 1000)
        self.errors += result["error_count"]
        self.samples += result["errors"]

    @property
    def p50(self) -> float:
        return _median(self.p50s)

    @property
    def p99(self) -> float:
        return _median(self.p99s)

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps) if self.rps else 0.0

    @property
    def rps_range(self) -> str:
        return f"{min(self.rps):,.0f}-{max(self.rps):,.0f}" if self.rps else "-"

    @property
    def median_cpu(self) -> float | None:
        return statistics.median(self.cpu_per_request) if self.cpu_per_request else None

    @property
    def median_loadgen_cpu(self) -> float | None:
        return statistics.median(self.loadgen_cpu_per_request) if self.loadgen_cpu_per_request else None


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def measure(
    args: argparse.Namespace, direct: str, gateways: dict[str, tuple[str, int]]
) -> dict[tuple[str, int, str], Series]:
    """Every run: `gateways` maps "gateway" (and "baseline", when compared) to (URL, pid)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    loadgen = ctx.Process(target=_loadgen_main, args=(child,), daemon=True)
    loadgen.start()
    results: dict[tuple[str, int, str], Series] = {}
    urls = {"direct": direct + "/chat/completions"}
    pids: dict[str, int | None] = {"direct": None}
    for target, (base, pid) in gateways.items():
        urls[target], pids[target] = base + "/v1/chat/completions", pid
    targets = list(urls)
    try:
        for round_ in range(args.rounds):
            for kind in args.kinds:
                for concurrency in args.concurrency:
                    forward = (round_ + concurrency) % 2 == 0
                    for target in targets if forward else targets[::-1]:
                        parent.send(
                            {
                                "url": urls[target],
                                "body": _chat_body(kind == "stream"),
                                "stream": kind == "stream",
                                "requests": args.requests,
                                "concurrency": concurrency,
                                "seconds": args.run_timeout,
                                "watch_pid": pids[target],
                            }
                        )
                        # a run is bounded by run_timeout; the warm-up by as much again
                        if not parent.poll(2 * args.run_timeout + 30):
                            raise RuntimeError("the load generator stopped answering")
                        try:
                            result = parent.recv()
                        except EOFError:
                            raise RuntimeError(f"the load generator died (exit code {loadgen.exitcode})") from None
                        results.setdefault((kind, concurrency, target), Series(kind == "stream")).add(result)
                        print(
                            f"  round {round_ + 1}/{args.rounds} {kind:6} c={concurrency:<3} {target:8} "
                            f"{result['rps']:8.0f} req/s  errors {result['error_count']}",
                            file=sys.stderr,
                            flush=True,
                        )
    finally:
        with contextlib.suppress(OSError):
            parent.send(None)
        loadgen.join(timeout=10)
        if loadgen.is_alive():
            loadgen.kill()
            loadgen.join(timeout=5)
    return results


def report(
    args: argparse.Namespace, results: dict[tuple[str, int, str], Series], loads: list[str], scorers: str
) -> bool:
    """Print the table, the ratios and the targets; True when every target is met."""
    print()
    print(
        f"proxy overhead, {time.strftime('%Y-%m-%d %H:%M')}, {measured_commit()}, {os.cpu_count()} cores, "
        f"{args.rounds} rounds x {args.requests} requests; load average {' -> '.join(loads)} "
        "(1, 5, 15 min; start -> end)"
    )
    print(scorers)
    header = (
        f"{'kind':6} {'conc':>4} | {'direct req/s':>12} {'gateway req/s':>13} {'(lowest-highest)':>16} {'ratio':>6} | "
        f"{'direct p50':>10} {'gw p50':>8} {'added':>7} | {'direct p99':>10} {'gw p99':>8} {'added':>7} | "
        f"{'gw cpu/req':>10} | {'gen cpu/req':>11}"
    )
    print(header)
    print("-" * len(header))
    for kind in args.kinds:
        for concurrency in args.concurrency:
            d, g = results[(kind, concurrency, "direct")], results[(kind, concurrency, "gateway")]
            ratio = g.median_rps / d.median_rps if d.median_rps else float("nan")
            cpu = f"{g.median_cpu:>8,.0f}us" if g.median_cpu is not None else f"{'-':>10}"
            gen = g.median_loadgen_cpu
            gen_cpu = f"{gen:>9,.0f}us" if gen is not None else f"{'-':>11}"
            print(
                f"{kind:6} {concurrency:>4} | {d.median_rps:>12,.0f} {g.median_rps:>13,.0f} {g.rps_range:>16} "
                f"{ratio:>6.2f} | {d.p50:>8.3f}ms {g.p50:>6.3f}ms {g.p50 - d.p50:>5.3f}ms | "
                f"{d.p99:>8.3f}ms {g.p99:>6.3f}ms {g.p99 - d.p99:>5.3f}ms | {cpu} | {gen_cpu}"
            )
    print(
        "(every figure is the median over the rounds of that figure in each round; latency: whole request for json,\n"
        " time to the first data: event for stream, p50 and p99 taken per round; gw cpu/req: the gateway process's\n"
        " CPU time per request: the figure least moved by a noisy machine; gen cpu/req: the load generator's own CPU\n"
        " time per request through the gateway; the gateway's garbage collector as in production: it is routerd serve)"
    )
    if args.baseline_env:
        compare_baseline(args, results)

    ok = True
    errors = {key: s for key, s in results.items() if s.errors}
    for (kind, concurrency, target), series in errors.items():
        ok = False
        print(f"ERRORS {kind} c={concurrency} {target}: {series.errors} ({', '.join(series.samples[:3])})")
    print()
    if "json" in args.kinds and 1 in args.concurrency:
        d, g = results[("json", 1, "direct")], results[("json", 1, "gateway")]
        added = g.p50 - d.p50
        met = added < TARGET_ADDED_P50_MS
        ok &= met
        print(
            f"target: added p50 at concurrency 1 (json) < {TARGET_ADDED_P50_MS:g} ms: {added:.3f} ms  {_verdict(met)}"
        )
    if "stream" in args.kinds and 1 in args.concurrency:
        d, g = results[("stream", 1, "direct")], results[("stream", 1, "gateway")]
        added = g.p50 - d.p50
        print(f"info:   added p50 time to first chunk at concurrency 1 (stream): {added:.3f} ms")
    if "json" in args.kinds and TARGET_RPS_CONCURRENCY in args.concurrency:
        g = results[("json", TARGET_RPS_CONCURRENCY, "gateway")]
        met = g.median_rps >= TARGET_RPS
        ok &= met
        print(
            f"target: gateway req/s at concurrency {TARGET_RPS_CONCURRENCY} (json, one worker) >= {TARGET_RPS:,}: "
            f"{g.median_rps:,.0f}  {_verdict(met)}"
        )
    return ok


def compare_baseline(args: argparse.Namespace, results: dict[tuple[str, int, str], Series]) -> None:
    """The gateway beside the baseline gateway (`--baseline-env`), measured in the same rounds."""
    print()
    print(f"baseline: the gateway with {' '.join(args.baseline_env)}, in the same rounds")
    header = (
        f"{'kind':6} {'conc':>4} | {'baseline req/s':>14} {'gateway req/s':>13} {'ratio':>6} | "
        f"{'baseline p50':>12} {'gw p50':>8} | {'baseline cpu/req':>16} {'gw cpu/req':>10} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for kind in args.kinds:
        for concurrency in args.concurrency:
            b, g = results[(kind, concurrency, "baseline")], results[(kind, concurrency, "gateway")]
            ratio = g.median_rps / b.median_rps if b.median_rps else float("nan")
            cpu_b, cpu_g = b.median_cpu, g.median_cpu
            cpu_ratio = f"{cpu_g / cpu_b:>6.2f}" if cpu_b and cpu_g else f"{'-':>6}"
            print(
                f"{kind:6} {concurrency:>4} | {b.median_rps:>14,.0f} {g.median_rps:>13,.0f} {ratio:>6.2f} | "
                f"{b.p50:>10.3f}ms {g.p50:>6.3f}ms | "
                f"{cpu_b or float('nan'):>14,.0f}us {cpu_g or float('nan'):>8,.0f}us {cpu_ratio}"
            )


def measured_commit() -> str:
    """``commit 78208ff`` (``with uncommitted changes`` when the work tree has some), or ``commit unknown``."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "commit unknown"
    return f"commit {head}" + (" with uncommitted changes" if dirty else "")


def _loads() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def _verdict(met: bool) -> str:
    return "MET" if met else "NOT MET"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per run (default 2000)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32], help="default: 1 32")
    parser.add_argument("--rounds", type=int, default=3, help="direct/gateway alternations (default 3)")
    parser.add_argument("--kinds", nargs="+", choices=["json", "stream"], default=["json", "stream"])
    parser.add_argument("--run-timeout", type=float, default=60.0, help="seconds one run may take (default 60)")
    parser.add_argument(
        "--gateway-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the gateway (repeatable)",
    )
    parser.add_argument(
        "--baseline-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="also run a second gateway with this extra environment (repeatable), measured in the same rounds: "
        "e.g. PYTHONPATH=<other checkout>/kernel:<other checkout>/plugins for before/after figures; its scorers' "
        "opinions are reported, and one missing after --ready-timeout is not fatal",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DATA,
        help="the evaluation file the learned scorer trains on (default: ../shared/eval/routing/"
        "routellm_mmlu_gsm8k.jsonl; read where it is, never copied)",
    )
    parser.add_argument(
        "--prices",
        type=Path,
        default=PRICES,
        help="list prices of the data's models, for the cost scorer (default: ../shared/eval/routing/models.json)",
    )
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=300.0,
        help="seconds to wait for the learned scorer to train and the models to be profiled (default 300)",
    )
    args = parser.parse_args(argv)
    if args.requests < 1 or args.rounds < 1 or min(args.concurrency) < 1:
        parser.error("--requests, --rounds and --concurrency must be positive")
    if args.run_timeout <= 0:
        parser.error("--run-timeout must be positive")
    if any("=" not in item for item in args.gateway_env + args.baseline_env):
        parser.error("--gateway-env and --baseline-env take KEY=VALUE")
    for path, what in ((args.data, "--data, the learned scorer's training data"), (args.prices, "--prices")):
        if not path.is_file():
            print(
                f"overhead: {what}: no such file: {path} (the evaluation data lives in ../shared/eval/routing beside "
                "the checkout; give its path)",
                file=sys.stderr,
            )
            return 2
    scorers_env = scorer_settings(args.data.resolve(), args.prices)
    extra_env = {**scorers_env, **dict(item.split("=", 1) for item in args.gateway_env)}
    baseline_env = {**scorers_env, **dict(item.split("=", 1) for item in args.baseline_env)}
    # A plain `kill` stops the processes started here too (SystemExit runs the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    mock = None
    processes: dict[str, subprocess.Popen] = {}
    data_dir = tempfile.mkdtemp(prefix="routerd-bench-")
    try:
        mock, upstream = mock_upstream.spawn()
        gateways: dict[str, tuple[str, int]] = {}
        probes: dict[str, Probe] = {}
        summaries = []
        for target, env in (("gateway", extra_env), ("baseline", baseline_env if args.baseline_env else None)):
            if env is None:
                continue
            folder = Path(data_dir) / target
            folder.mkdir()
            process, base = start_gateway(upstream, str(folder), folder / "gateway.log", env)
            processes[target] = process
            probe = probes[target] = Probe(base)
            problems, scorers = check_gateway(probe)
            if problems:
                print(f"the {target} does not answer as it should:\n  " + "\n  ".join(problems), file=sys.stderr)
                return 1
            print(f"{target} {base} routes with the scorers {', '.join(scorers)}", file=sys.stderr, flush=True)
            opinions, decision, waited = await_opinions(probe, args.ready_timeout)
            print(f"{target}: learned and profiles had an opinion after {waited:.0f} s", file=sys.stderr)
            missing = report_opinions(target, probe, opinions, decision)
            if missing and target == "gateway":
                tail = (folder / "gateway.log").read_text(errors="replace")[-2000:]
                print(
                    f"overhead: {', '.join(missing)} had no opinion within {args.ready_timeout:g} s "
                    f"(--ready-timeout); the gateway's log ends:\n{tail}",
                    file=sys.stderr,
                )
                return 1
            absent = [name for name in DEFAULT_SCORERS if name not in opinions]
            summaries.append(
                f"{target}: scorers with an opinion on {PROMPT!r}: {', '.join(sorted(opinions))}"
                + "".join(f"; {name}: none ({why_no_opinion(name, base, decision)})" for name in absent)
            )
            gateways[target] = (base, process.pid)
        print(f"mock upstream {upstream}; measuring...", file=sys.stderr, flush=True)
        loads = [_loads()]
        results = measure(args, upstream, gateways)
        loads.append(_loads())
        ok = report(args, results, loads, "\n".join(summaries))
        for target in gateways:
            written = decisions_written(str(Path(data_dir) / target))
            if written is not None:
                sent = sum(series.sent for (_, _, name), series in results.items() if name == target)
                print(
                    f"audit log ({target}): {written:,} decisions written for {sent:,} requests sent through it "
                    f"(and {probes[target].chats} before, to check its answers and its scorers' opinions)"
                )
        exited = [target for target, process in processes.items() if process.poll() is not None]
        if exited:
            print(f"the {' and the '.join(exited)} exited during the run", file=sys.stderr)
            return 1
        errors = any(series.errors for series in results.values())
        if not ok:
            print("\nnot every target is met" + (" (and some requests failed)" if errors else ""))
        return 1 if errors else 0
    except RuntimeError as exc:
        print(f"overhead: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("overhead: interrupted", file=sys.stderr)
        return 130
    finally:
        for process in processes.values():
            stop(process)
        stop(mock)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
