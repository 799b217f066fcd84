"""Profiling in the background (a `routerd.Job`, started only by a gateway that serves requests): models are
profiled when the gateway starts (those without a profile for the current suite), when discovery sees new ones
appear (``context.models.watch``), and on ``POST /admin/reprofile``; one model at a time, in a task of its own, so
requests never wait for it. With ``profiling.enabled = false`` it never starts.

On PostgreSQL a round holds a session advisory lock (``context.database.replica_lock``), so of several replicas
only one profiles at a time; a replica that finds the lock taken looks again later (by then the other's results
are in the database, and the kernel's reload of the stored profiles brings them into this replica's index).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from routerd import Database, GatewayError, ModelNotFound, ServedModels
from routerd_profiling.profiler import Profiler
from routerd_profiling.progress import LogReporter

log = logging.getLogger("routerd.plugin.profiling")

PROFILING_LOCK_ID = 0x726F7470  # "rotp": the profiler's advisory lock on PostgreSQL
LOCK_BUSY_WAIT = 60.0  # seconds before a replica that found the lock taken looks again


class ProfilingDisabled(GatewayError):
    status_code = 409
    error_type = "invalid_request_error"


class ProfilingJob:
    """The background profiler; `settings` is the gateway's ``[profiling]`` section."""

    name = "profiling"

    def __init__(self, profiler: Profiler, database: Database, models: ServedModels, settings: Any) -> None:
        self.profiler = profiler
        self.database = database
        self.models = models
        self.settings = settings
        self._wake = asyncio.Event()
        self._forced: dict[str, None] = {}  # catalog ids to profile again whatever they have, in order
        self._named: dict[str, None] = {}  # catalog ids asked for by name (profiled if due, even if skipped)
        self._tasks: list[asyncio.Task] = []
        self._retry: asyncio.TimerHandle | None = None
        self._closed = False
        self.rounds = 0  # finished rounds (for tests and status)

    # -- lifecycle ------------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Start profiling in the background, when enabled; returns at once. The first round covers the models
        served now, if any, and each discovery that finds new ones (the first included) starts another."""
        if not self.settings.enabled:
            log.info("profiling is disabled (profiling.enabled = false)")
            return
        self.models.watch(self.models_changed)
        if self.profiler.chat_models():
            self._wake.set()
        self._tasks.append(asyncio.get_running_loop().create_task(self._profile_forever(), name="routerd-profiling"))

    async def close(self) -> None:
        self._closed = True
        if self._retry is not None:
            self._retry.cancel()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    # -- triggers -------------------------------------------------------------------------------------------
    def models_changed(self, appeared: set[str], vanished: set[str]) -> None:
        """Discovery changed the catalog: profile the new models that need it (in the background)."""
        if appeared and not self._closed:
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
            info = self.profiler.chat_model(model)
            if info is None:
                raise ModelNotFound(f"no chat model {model!r} in the catalog", param="model", code="model_not_found")
            models = [info.key]
            self._named[info.key] = None
        else:
            profiler = self.profiler
            models = [info.key for info in profiler.chat_models() if force or not profiler.skipped(info)]
        if force:
            self._forced.update(dict.fromkeys(models))
        self._wake.set()
        return models

    @property
    def running(self) -> bool:
        return self.profiler.progress is not None

    # -- the loop -------------------------------------------------------------------------------------------
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
        async with self.database.replica_lock(PROFILING_LOCK_ID) as acquired:
            if not acquired:
                log.info("profiling: another replica holds the lock; looking again in %.0f s", LOCK_BUSY_WAIT)
                self._retry = asyncio.get_running_loop().call_later(LOCK_BUSY_WAIT, self._wake.set)
                return
            forced, self._forced = self._forced, {}
            named, self._named = self._named, {}
            profiler = self.profiler
            models = profiler.chat_models()
            candidates = [m for m in models if m.key not in forced and (m.key in named or not profiler.skipped(m))]
            chosen = {m.key for m in await profiler.due(candidates)} | set(forced)
            plan = [m for m in models if m.key in chosen]
            if plan:
                await profiler.run(plan, LogReporter())
        self.rounds += 1
