"""Discovery: poll every backend for its models on an interval, into the catalog and the
``models`` table."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from routerd.catalog import Catalog

log = logging.getLogger("routerd.discovery")


class Discovery:
    def __init__(
        self, catalog: Catalog, interval: float, listeners: list[Callable[[set[str], set[str]], None]] | None = None
    ) -> None:
        self.catalog = catalog
        self.interval = interval
        self._task: asyncio.Task | None = None
        # Called with the public ids of the models that appeared and vanished, once they are recorded
        # (`ServedModels.watch`: the profiler's trigger).
        self.listeners = listeners if listeners is not None else []

    async def run_once(self) -> None:
        appeared, vanished = await self.catalog.refresh()
        try:
            await self.catalog.record()
        except Exception:
            log.exception("discovery: recording the catalog failed")
        if appeared or vanished:
            for listener in list(self.listeners):
                try:
                    listener(appeared, vanished)
                except Exception:
                    log.exception("discovery: a listener failed")

    async def start(self) -> None:
        """A first poll before the gateway reports ready, then one every `interval` seconds."""
        await self.run_once()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="routerd-discovery")

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_once()
            except Exception:
                log.exception("discovery failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
