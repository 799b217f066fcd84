"""Memory held by past requests, audit rows that survive a bad neighbour, and database outages (issue 14), each
reproduced against a running gateway: huge prompts, hostile `model` values and ids, a row the database refuses, and
a PostgreSQL that goes away (a TCP forwarder in front of it, stopped and started again) and comes back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import openai
import pytest
from sqlalchemy.engine import make_url

from conftest import fixture_plugin
from routerd.testing import FAKE_PLUGIN, TEST_ADMIN_KEY, build_app
from servers import free_port, running_gateway

ADMIN = {"Authorization": f"Bearer {TEST_ADMIN_KEY}"}
MB = 1024 * 1024
# a fake model whose context window takes prompts of many MB
WIDE = {"models": [{"name": "fake-wide", "context_window": 100_000_000}]}


def _asyncpg_url(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _rows(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(_asyncpg_url(url), timeout=5)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


def _wait_for(check, timeout: float = 20.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(every)


# -- memory -------------------------------------------------------------------------------------------------------


def test_a_decision_keeps_only_the_stated_part_of_a_huge_prompt(tmp_path) -> None:
    """Routing sees the whole prompt; what the decision log and the learners keep afterwards is cut to
    `audit.prompt_chars` and `audit.learner_prompt_chars`."""
    config = {"audit": {"prompt_chars": 100, "learner_prompt_chars": 1000}, "plugins": {"fake": WIDE}}
    app = build_app(tmp_path, config, [FAKE_PLUGIN, fixture_plugin("recorder")])
    prompt = "Explain this log line. " + "x" * (3 * MB) + "\x00 the end"
    with running_gateway(app) as base:
        client = openai.OpenAI(base_url=f"{base}/v1", api_key="unused", max_retries=0, timeout=60)
        ids = []
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(
                model="routerd", messages=[{"role": "user", "content": prompt}]
            )
            assert raw.parse().choices[0].message.content
            ids.append(raw.headers["x-routerd-decision-id"])
        decisions = app.state.gateway.decisions
        assert _wait_for(lambda: not decisions.held and decisions.closed_queue.empty() and not decisions.running)
        recorder = app.state.gateway.plugins.registry.learners["recorder"].outcomes  # what a learner was shown
        explained = [httpx.get(f"{base}/admin/decisions/{ident}", headers=ADMIN, timeout=10).json() for ident in ids]
    for ident in ids:
        entry = decisions.recent[ident]
        assert len(entry.features.text) <= 100 and "\x00" not in entry.features.text
        assert entry.decision is None and entry.whole is None  # the routing decision and its whole prompt let go
    for found in explained:
        assert found["features"]["text"] == prompt[:100]
        assert found["features"]["prompt_tokens"] > 500_000  # routing counted the whole prompt
    assert len(recorder) == 3
    assert all(outcome.features.text == prompt[:1000] for outcome in recorder)


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc")
def test_rss_of_a_served_gateway_stays_flat_under_huge_prompts(tmp_path) -> None:
    """40 prompts of 8 MB through `routerd serve`: before, each decision (and the learned scorer's recent prompts)
    kept the whole text, 320 MB in all; now RSS grows by far less than that, as it does for small prompts."""
    site = tmp_path / "site"
    info = site / "routerd_fake_entry-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: routerd-fake-entry\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[routerd]\nfake = routerd.testing.fake_backend\n")
    port = free_port()
    settings = tmp_path / "routerd.toml"
    settings.write_text('[[plugins.fake.models]]\nname = "fake-wide"\ncontext_window = 100000000\n')
    env = {
        "ROUTERD_CONFIG": str(settings),
        **os.environ,
        "PYTHONPATH": str(site),
        "ROUTERD__DATA_DIR": str(tmp_path / "data"),
        "ROUTERD__SERVER__PORT": str(port),
        "ROUTERD__SERVER__LOG_LEVEL": "warning",
        "ROUTERD__PLUGINS__LOCAL__ENABLED": "false",
        "ROUTERD__PLUGINS__HF_LEADERBOARD__ENABLED": "false",
        "ROUTERD__PLUGINS__LMSYS_ARENA__ENABLED": "false",
        "ROUTERD__PROFILING__ENABLED": "false",
    }
    routerd = str(Path(sys.executable).parent / "routerd")
    server = subprocess.Popen([routerd, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=120) as client:
            up = _wait_for(lambda: _answers(client), timeout=60, every=0.2)
            assert up, "routerd serve did not start"

            def ask(content: str) -> None:
                answer = client.post(
                    "/v1/chat/completions",
                    json={"model": "routerd", "messages": [{"role": "user", "content": content}]},
                )
                assert answer.status_code == 200, answer.text[:300]

            big = 8 * MB
            for i in range(3):  # warm up: the allocator's arenas, the routing caches, a first huge body
                ask(f"warm {i} " + "w" * big)
            time.sleep(1.5)
            before = _rss_mib(server.pid)
            for i in range(40):
                ask(f"prompt {i} " + chr(ord("a") + i % 26) * big)
            time.sleep(2.5)  # the writer stores the decisions and the learners see them
            after = _rss_mib(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    assert after - before < 120, f"RSS grew from {before:.0f} to {after:.0f} MiB for 40 prompts of 8 MB"


def _answers(client: httpx.Client) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return client.get("/v1/models").status_code == 200
    return False


# -- a bad neighbour ------------------------------------------------------------------------------------------------


async def _refuse_model(url: str, model: str) -> None:
    """Make the database refuse, for real, every decision row whose requested model is `model`."""
    conn = await asyncpg.connect(_asyncpg_url(url), timeout=5)
    try:
        await conn.execute(
            f"""
            CREATE FUNCTION refuse_poison() RETURNS trigger AS $$
            BEGIN
              IF NEW.requested_model = '{model}' THEN RAISE EXCEPTION 'refused by the test'; END IF;
              RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER refuse_poison BEFORE INSERT OR UPDATE ON routing_decisions
              FOR EACH ROW EXECUTE FUNCTION refuse_poison();
            """
        )
    finally:
        await conn.close()


def test_a_bad_neighbour_loses_no_other_audit_row_on_postgresql(tmp_path, postgres_url, caplog) -> None:
    """20 good requests beside a NUL and a 500-character `model` (with ``?model=auto``) and one row the database
    refuses: every good decision is written, the hostile values as the columns hold them, the refused row alone is
    lost, and nothing logged carries a prompt or a statement's parameters."""
    caplog.set_level(logging.DEBUG)
    app = build_app(tmp_path, {"database": {"url": postgres_url}}, [FAKE_PLUGIN])
    with running_gateway(app) as base:
        asyncio.run(_refuse_model(postgres_url, "poison"))

        async def scenario() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:

                async def ask(model: str, text: str, query: str = "") -> httpx.Response:
                    body = {"model": model, "messages": [{"role": "user", "content": text}]}
                    return await client.post(f"/v1/chat/completions{query}", json=body)

                good = [ask("routerd", f"private prompt number {i}") for i in range(20)]
                bad = [
                    ask("x\x00y", "secret of the NUL sender", "?model=auto"),
                    ask("m" * 500, "secret of the long sender", "?model=auto"),
                    ask("poison", "secret of the refused sender", "?model=auto"),
                ]
                return await asyncio.gather(*good, *bad)

        answers = asyncio.run(scenario())
        assert [a.status_code for a in answers] == [200] * 23
        ids = [a.headers["x-routerd-decision-id"] for a in answers]
        decisions = app.state.gateway.decisions
        assert _wait_for(lambda: not decisions.held and decisions.closed_queue.empty() and not decisions.running)
    rows = {r["id"]: r for r in asyncio.run(_rows(postgres_url, "SELECT id, requested_model FROM routing_decisions"))}
    assert set(ids[:22]) <= set(rows)  # every good one, and the hostile ones as the columns can hold them
    assert ids[22] not in rows  # the refused row, alone
    assert rows[ids[20]]["requested_model"] == "xy"
    assert rows[ids[21]]["requested_model"] == "m" * 400
    assert decisions.refused == 1
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert ids[22] in logged  # the refused row is named by its id
    assert "secret" not in logged and "private prompt" not in logged
    assert "[parameters" not in logged.lower() or "hidden due to hide_parameters" in logged


@pytest.mark.parametrize(
    "body",
    [
        {"rating": 1, "response_id": "chatcmpl-\x00abc"},
        {"rating": 1, "decision_id": "rd-\x00abc"},
        {"rating": 1, "response_id": "r" * 300},
        {"rating": 1, "decision_id": "d" * 300},
    ],
    ids=["nul-response-id", "nul-decision-id", "long-response-id", "long-decision-id"],
)
def test_feedback_with_an_impossible_id_is_a_400_on_both_databases(tmp_path, database_url, body) -> None:
    app = build_app(tmp_path, {"database": {"url": database_url}}, [FAKE_PLUGIN])
    with running_gateway(app) as base:
        refused = httpx.post(f"{base}/v1/feedback", json=body, timeout=30)
        unknown = httpx.post(f"{base}/v1/feedback", json={"rating": 1, "response_id": "chatcmpl-none"}, timeout=30)
        # a real decision with an impossible response id beside it: still a 400, never a 500 or a cut id stored
        answer = httpx.post(
            f"{base}/v1/chat/completions",
            json={"model": "routerd", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        decision = answer.headers["x-routerd-decision-id"]
        mixed = httpx.post(f"{base}/v1/feedback", json={**body, "decision_id": decision}, timeout=30)
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] in ("response_id", "decision_id")
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "decision_not_found"
    if "response_id" in body:
        assert mixed.status_code == 400, mixed.text


# -- database outages ------------------------------------------------------------------------------------------------


class Forwarder:
    """A TCP forwarder to PostgreSQL in a thread of its own: `stop` closes its port and cuts every connection
    through it (the database is unreachable, as when its host goes away); `start` opens it again."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> Forwarder:
        self.thread.start()
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    def _call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=10)

    def start(self) -> None:
        self._call(self._start())

    def stop(self) -> None:
        self._call(self._stop())

    async def _start(self) -> None:
        self.server = await asyncio.start_server(self._connected, "127.0.0.1", self.port, reuse_address=True)

    async def _stop(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in list(self.writers):
            writer.transport.abort()
        self.writers.clear()

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self.writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self.writers.difference_update((writer, up_writer))


@contextlib.contextmanager
def through_forwarder(postgres_url: str) -> Iterator[tuple[Forwarder, str]]:
    url = make_url(postgres_url)
    with Forwarder(url.port or 5432) as forwarder:
        yield forwarder, url.set(port=forwarder.port).render_as_string(hide_password=False)


def _stored(url: str) -> set[str]:
    return {r["id"] for r in asyncio.run(_rows(url, "SELECT id FROM routing_decisions"))}


def _chat(base: str, text: str) -> httpx.Response:
    return httpx.post(
        f"{base}/v1/chat/completions",
        json={"model": "routerd", "messages": [{"role": "user", "content": text}]},
        timeout=30,
    )


def _assert_database_unavailable(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert answer.json()["error"]["code"] == "database_unavailable"
    assert answer.json()["error"]["type"] == "server_error"
    assert answer.headers.get("retry-after")


def test_a_database_outage_answers_503_and_loses_no_decision(tmp_path, postgres_url) -> None:
    """PostgreSQL goes away for a few seconds: routed requests go on (200), feedback and admin look-ups that need
    the database answer 503 ``database_unavailable``, and the decisions made meanwhile are written once it is
    back; then feedback works again."""
    with through_forwarder(postgres_url) as (forwarder, url):
        app = build_app(tmp_path, {"database": {"url": url}, "audit": {"retry_max_seconds": 0.5}}, [FAKE_PLUGIN])
        with running_gateway(app) as base:
            before = _chat(base, "before the outage")
            assert before.status_code == 200
            decisions = app.state.gateway.decisions
            assert _wait_for(lambda: _stored(postgres_url) == {before.headers["x-routerd-decision-id"]})

            forwarder.stop()
            during = [_chat(base, f"during the outage {i}") for i in range(12)]
            assert [a.status_code for a in during] == [200] * 12
            remembered = during[0].headers["x-routerd-decision-id"]
            _assert_database_unavailable(
                httpx.post(f"{base}/v1/feedback", json={"rating": 1, "decision_id": remembered}, timeout=30)
            )
            _assert_database_unavailable(
                httpx.post(f"{base}/v1/feedback", json={"rating": 1, "response_id": "chatcmpl-elsewhere"}, timeout=30)
            )
            old = before.headers["x-routerd-decision-id"]
            decisions.recent.pop(old)  # forgotten here: the explanation must come from the database
            _assert_database_unavailable(httpx.get(f"{base}/admin/decisions/{old}", headers=ADMIN, timeout=30))
            assert _wait_for(lambda: decisions.outage_since is not None, timeout=10)
            assert {a.headers["x-routerd-decision-id"] for a in during} == set(decisions.held)

            forwarder.start()
            ids = {a.headers["x-routerd-decision-id"] for a in during}
            assert _wait_for(lambda: not decisions.held, timeout=30), "the held decisions were not written"
            assert ids | {old} <= _stored(postgres_url)
            rated = httpx.post(f"{base}/v1/feedback", json={"rating": 1, "decision_id": remembered}, timeout=30)
            assert rated.status_code == 201, rated.text
            assert httpx.get(f"{base}/admin/decisions/{old}", headers=ADMIN, timeout=30).status_code == 200


def test_an_outage_longer_than_the_buffer_keeps_the_newest_decisions(tmp_path, postgres_url, caplog) -> None:
    """Beyond `audit.outage_buffer` held decisions, the oldest are dropped, counted and logged; the newest are
    written when the database is back."""
    caplog.set_level(logging.WARNING, logger="routerd.decisions")
    with through_forwarder(postgres_url) as (forwarder, url):
        config = {"database": {"url": url}, "audit": {"outage_buffer": 5, "retry_max_seconds": 0.5}}
        app = build_app(tmp_path, config, [FAKE_PLUGIN])
        with running_gateway(app) as base:
            warm = _chat(base, "warm")
            assert warm.status_code == 200
            decisions = app.state.gateway.decisions
            assert _wait_for(lambda: _stored(postgres_url) == {warm.headers["x-routerd-decision-id"]})
            forwarder.stop()
            ids = []
            for i in range(12):
                answer = _chat(base, f"during {i}")
                assert answer.status_code == 200
                ids.append(answer.headers["x-routerd-decision-id"])
                time.sleep(0.1)  # one at a time into the writer's hands
            assert _wait_for(lambda: decisions.closed_queue.empty() and decisions.dropped_held >= 7, timeout=10)
            forwarder.start()
            assert _wait_for(lambda: not decisions.held, timeout=30)
    stored = _stored(postgres_url)
    assert set(ids[-5:]) <= stored
    assert not set(ids[:7]) & stored
    assert decisions.dropped_held == 7
    assert any("audit.outage_buffer" in record.getMessage() for record in caplog.records)
