"""Profiling in the background: models are profiled when the gateway starts (those without a profile for the
current suite), when discovery sees new ones appear, and on ``POST /admin/reprofile``; one model at a time, in a
task of its own, so requests never wait for it. With ``profiling.enabled = false`` it never starts.

On PostgreSQL a round holds a session advisory lock, so of several replicas only one profiles at a time; a
replica that finds the lock taken looks again later (by then the other's results are in the database).

Independently of profiling, the stored profiles are loaded into the `ProfileIndex` at start (in the background:
readiness never waits for it) and every ``profiling.refresh_interval`` seconds, so scorers see what other
replicas measured and what was imported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from routerd.config import ProfilingSettings
from routerd.db.advisory import replica_lock
from routerd.db.database import Database
from routerd.errors import GatewayError, ModelNotFound
from routerd.profiling.index import ProfileIndex, runtime_profile
from routerd.profiling.profiler import Profiler
from routerd.profiling.progress import LogReporter

log = logging.getLogger("routerd.profiling")

PROFILING_LOCK_ID = 0x726F7470  # "rotp": the profiler's advisory lock on PostgreSQL
LOCK_BUSY_WAIT = 60.0  # seconds before a replica that found the lock taken looks again


class ProfilingDisabled(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"


class ProfilingJob:
    def __init__(self, profiler: Profiler, database: Database, settings: ProfilingSettings, index: ProfileIndex):
        self.profiler = profiler
        self.database = database
        self.settings = settings
        self.index = index
        self._wake = asyncio.Event()
        self._forced: dict[str, None] = {}  # public model ids to profile again whatever they have, in order
        self._named: dict[str, None] = {}  # public model ids asked for by name (profiled if due, even if skipped)
        self._tasks: list[asyncio.Task] = []
        self._retry: asyncio.TimerHandle | None = None
        self.rounds = 0  # finished rounds (for tests and status)

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start loading profiles and, when enabled, profiling; returns at once."""
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._reload_forever(), name="routerd-profile-reload"))
        if self.settings.enabled:
            self._wake.set()  # the first round: every model without a profile for the current suite
            self._tasks.append(loop.create_task(self._profile_forever(), name="routerd-profiling"))
        else:
            log.info("profiling is disabled (profiling.enabled = false)")

    async def close(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- triggers -------------------------------------------------------------------------------------------
    def models_appeared(self, models: Iterable[str]) -> None:
        """Discovery saw new models: profile those that need it (in the background)."""
        if self.settings.enabled and models:
            self._wake.set()

    def request(self, *, model: str | None = None, force: bool = False) -> list[str]:
        """``POST /admin/reprofile``: schedule a round; with `force`, `model` (or every chat model) is profiled
        again even with a current profile. Returns the models concerned."""
        if not self.settings.enabled:
            raise ProfilingDisabled(
                "profiling is disabled on this gateway (profiling.enabled = false); `routerd profile` still works",
                code="profiling_disabled",
            )
        if model is not None:
            entry = self.profiler.catalog.get(model)
            if entry is None or not entry.info.capabilities.chat:
                raise ModelNotFound(f"no chat model {model!r} in the catalog", param="model", code="model_not_found")
            models = [entry.id]
            self._named[entry.id] = None
        else:
            models = [e.id for e in self.profiler.chat_models() if force or not self.profiler.skipped(e)]
        if force:
            self._forced.update(dict.fromkeys(models))
        self._wake.set()
        return models

    @property
    def running(self) -> bool:
        return self.profiler.progress is not None

    # -- the loops ------------------------------------------------------------------------------------------
    async def _profile_forever(self) -> None:
        while True:
            # Wake up for a trigger, or after retry_interval to retry models whose last run failed.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.retry_interval):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.run_round()
            except Exception:
                log.exception("profiling round failed")

    async def run_round(self) -> None:
        async with replica_lock(self.database, PROFILING_LOCK_ID) as acquired:
            if not acquired:
                log.info("profiling: another replica holds the lock; looking again in %.0f s", LOCK_BUSY_WAIT)
                self._retry = asyncio.get_running_loop().call_later(LOCK_BUSY_WAIT, self._wake.set)
                return
            forced, self._forced = self._forced, {}
            named, self._named = self._named, {}
            profiler = self.profiler
            entries = profiler.chat_models()
            candidates = [e for e in entries if e.id not in forced and (e.id in named or not profiler.skipped(e))]
            chosen = {e.id for e in await profiler.due(candidates)} | set(forced)
            plan = [e for e in entries if e.id in chosen]
            if plan:
                await profiler.run(plan, LogReporter())
        self.rounds += 1

    async def _reload_forever(self) -> None:
        while True:
            try:
                await self.reload()
            except Exception as exc:
                log.warning("loading the stored profiles failed: %s", type(exc).__name__)
            await asyncio.sleep(self.settings.refresh_interval)

    async def reload(self) -> None:
        """Read every model's latest profile into the index."""
        runs = await self.profiler.repository.latest()
        self.index.replace(runtime_profile(run) for run in runs)
