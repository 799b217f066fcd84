"""Benchmark sync: fetch every selected benchmark source, screen what it returns, store it.

Sources are synced when they are due: never synced, last synced successfully more than ``sync_interval``
seconds ago (daily by default), or last failed more than ``retry_interval`` seconds ago. Due-ness is read from
the ``sync_status`` table, so a restart does not refetch what another run (or replica) fetched an hour ago. The
first round starts in the background when the gateway starts; it never delays readiness.

Sources are fetched concurrently and each is stored in its own transaction: one failing (unreachable, timed
out, malformed, nothing acceptable) is recorded in its status and never blocks the others. On PostgreSQL a
round holds a session advisory lock (``pg_try_advisory_lock``), so only one replica syncs at a time; the
others skip the round and read the result from the database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Mapping
from typing import Any

from routerd.config import BenchmarkSettings
from routerd.db.advisory import replica_lock
from routerd.db.database import Database
from routerd.stores.benchmark_screening import Screened, screen
from routerd.stores.benchmark_store import BenchmarkStore, SyncStatus

log = logging.getLogger("routerd.benchmarks")

SYNC_LOCK_ID = 0x726F7462  # "rotb": the benchmark sync's advisory lock on PostgreSQL
LOCK_BUSY_WAIT = 300.0  # seconds before a replica that found the lock taken looks again
ERROR_LINES = 50  # refusals spelled out in a status's error text; the rest are counted
ERROR_MAX = 20_000  # characters of a status's error text


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def describe_refusals(screened: Screened) -> str | None:
    """The status text of a sync's refusals: how many, and the first `ERROR_LINES`, one per line."""
    refusals = screened.refusals
    if not refusals:
        return None
    lines = [f"refused {len(refusals)} field(s); stored {len(screened.records)}"]
    lines += [str(refusal) for refusal in refusals[:ERROR_LINES]]
    if len(refusals) > ERROR_LINES:
        lines.append(f"... and {len(refusals) - ERROR_LINES} more")
    return "\n".join(lines)


class NothingAcceptable(Exception):
    """A source returned no record the kernel accepts; its stored records are kept as they were."""


class BenchmarkSync:
    def __init__(
        self,
        providers: Mapping[str, Any],
        database: Database,
        settings: BenchmarkSettings,
        store: BenchmarkStore | None = None,
    ) -> None:
        self.providers = providers  # the registry's benchmark providers, by name (filled when plugins load)
        self.database = database
        self.settings = settings
        self.repository = store if store is not None else BenchmarkStore(database, settings.extra_benchmarks)
        self.allowed = self.repository.known()
        self._task: asyncio.Task | None = None
        self._round = asyncio.Lock()

    def selected(self) -> list[str]:
        """The providers to sync: ``benchmarks.sources`` (those registered), or every registered one."""
        if not self.settings.sources:
            return list(self.providers)
        return [name for name in self.settings.sources if name in self.providers]

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start syncing in the background; returns at once."""
        missing = [name for name in self.settings.sources if name not in self.providers]
        if missing:
            known = ", ".join(self.providers) or "none"
            log.warning("benchmarks.sources names %s: no such provider registered (%s)", ", ".join(missing), known)
        if self.selected():
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="routerd-benchmark-sync")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                wait = await self.run_due()
            except Exception:
                log.exception("benchmark sync failed")
                wait = self.settings.retry_interval
            await asyncio.sleep(wait)

    # -- one round ------------------------------------------------------------------------------------------
    def due_at(self, status: SyncStatus | None) -> dt.datetime:
        """When a source with this last status should next be synced."""
        if status is None or status.finished_at is None:
            return dt.datetime.min.replace(tzinfo=dt.UTC)
        pause = self.settings.sync_interval if status.ok else self.settings.retry_interval
        return status.finished_at + dt.timedelta(seconds=pause)

    async def run_due(self, *, force: bool = False) -> float:
        """Sync the selected sources that are due (all of them with `force`); return the seconds until the
        next one is due."""
        async with self._round, replica_lock(self.database, SYNC_LOCK_ID) as acquired:
            if not acquired:
                log.info("benchmark sync: another replica holds the lock; skipping this round")
                return min(LOCK_BUSY_WAIT, self.settings.retry_interval)
            now = utcnow()
            statuses = await self.repository.statuses()
            due = [name for name in self.selected() if force or self.due_at(statuses.get(name)) <= now]
            if due:
                await asyncio.gather(*(self._sync_one(name) for name in due))
                statuses = await self.repository.statuses()
        next_due = min((self.due_at(statuses.get(name)) for name in self.selected()), default=None)
        if next_due is None:
            return self.settings.sync_interval
        return min(max((next_due - utcnow()).total_seconds(), 1.0), self.settings.sync_interval)

    async def _sync_one(self, name: str) -> None:
        """Fetch, screen and store one source, recording its status; never raises (but for cancellation)."""
        stored, error, ok = 0, None, False
        deadline = asyncio.timeout(self.settings.fetch_timeout)
        try:
            await self.repository.sync_started(name, utcnow())
            async with deadline:
                items = await self.providers[name].fetch()
            screened = screen(name, items, allowed=self.allowed)
            error = describe_refusals(screened)
            if not screened.records:
                raise NothingAcceptable(f"no acceptable record ({len(screened.refusals)} refused)")
            stored = await self.repository.replace_source(name, screened.records)
            ok = True
            if error:
                log.warning("benchmark source %s: %s", name, error.splitlines()[0])
            log.info("benchmark source %s: %d records stored", name, stored)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if isinstance(exc, TimeoutError) and deadline.expired():
                reason = f"fetch took longer than {self.settings.fetch_timeout:g} s"
            error = f"{reason}\n{error}" if error else reason
            log.warning("benchmark source %s failed: %s", name, reason)
        try:
            error = error[:ERROR_MAX] if error else None
            await self.repository.sync_finished(name, at=utcnow(), ok=ok, records=stored, error=error)
        except Exception as exc:
            log.warning("benchmark source %s: recording its status failed: %s", name, type(exc).__name__)

    # -- reading --------------------------------------------------------------------------------------------
    async def statuses(self) -> list[dict[str, Any]]:
        """Each selected (or previously synced) source: its last sync, and what is stored for it now."""
        found = await self.repository.statuses()
        counts = await self.repository.counts()
        selected = self.selected()
        now = utcnow()
        report = []
        for name in dict.fromkeys([*selected, *self.settings.sources, *found]):
            status = found.get(name)
            entry: dict[str, Any] = {
                "source": name,
                "registered": name in self.providers,
                "selected": name in selected,
                "stored": counts.get(name, 0),
                "started_at": None,
                "finished_at": None,
                "ok": None,
                "records": 0,
                "error": None,
                "running": False,
                "next_sync_at": None,
            }
            if status is not None:
                # A run that started longer ago than a fetch may take died with its process.
                stale = status.started_at is None or now - status.started_at > dt.timedelta(
                    seconds=self.settings.fetch_timeout + 60
                )
                entry.update(
                    started_at=status.started_at,
                    finished_at=status.finished_at,
                    ok=status.ok if status.finished_at is not None else None,
                    records=status.records,
                    error=status.error,
                    running=status.running and not stale,
                )
                if name in selected and status.finished_at is not None:
                    entry["next_sync_at"] = self.due_at(status)
            report.append(entry)
        return report
