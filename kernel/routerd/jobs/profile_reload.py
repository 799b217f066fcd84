"""The stored profiles, loaded into the in-memory `ProfileIndex` that scorers read on the request path: at start
(in the background: readiness never waits for it) and every ``profiling.refresh_interval`` seconds, so scorers see
what other replicas measured and what was imported. The ``profiling`` plugin puts its own runs in the index at
once."""

from __future__ import annotations

import asyncio
import logging

from routerd.stores.profile_index import ProfileIndex, runtime_profile
from routerd.stores.profile_store import ProfileStore

log = logging.getLogger("routerd.profiles")


class ProfileReload:
    def __init__(self, store: ProfileStore, index: ProfileIndex, interval: float) -> None:
        self.store = store
        self.index = index
        self.interval = interval
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._forever(), name="routerd-profile-reload")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                await self.reload()
            except Exception as exc:
                log.warning("loading the stored profiles failed: %s", type(exc).__name__)
            await asyncio.sleep(self.interval)

    async def reload(self) -> None:
        """Read every model's latest profile into the index."""
        self.index.replace(runtime_profile(run) for run in await self.store.latest())
