"""The benchmark scorer: public benchmark figures as a quality contribution per prompt category.

Everything is computed in the background: the stored records (every source the benchmark sync keeps), merged
per catalog model by the kernel's `BenchmarkIndex`, turned into one `Contribution` per model and category. The
request path picks the table of the prompt's category and returns it as it is (a mapping of every model with
figures; routing reads the candidates' entries), so it allocates nothing. The tables are rebuilt when a sync
has finished since the last build (any replica's: the ``sync_status`` table says), looked at every
``refresh_interval`` seconds, and when a candidate appears that the tables do not know yet (its figures are
looked up in the background; until then it has no benchmark opinion).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import routerd
from routerd_benchmarks.figures import Populations, contributions
from routerd_benchmarks.merge import BenchmarkIndex

log = logging.getLogger("routerd.plugin.benchmarks")
NO_OPINION: Mapping[str, routerd.Contribution] = MappingProxyType({})


class BenchmarkScorer:
    name = "benchmarks"

    def __init__(
        self,
        settings,
        store: routerd.BenchmarkStore,
        models: routerd.ServedModels,
        benchmark_settings,
        mapping: Mapping[str, Sequence[str]],
    ) -> None:
        self.settings = settings
        self.store = store
        self.models = models
        self.order = list(benchmark_settings.sources)
        self.aliases = dict(benchmark_settings.aliases)
        self.mapping = dict(mapping)
        # category -> model name -> contribution; swapped whole, never changed in place
        self.tables: dict[str, Mapping[str, routerd.Contribution]] = {}
        self.seen: frozenset[str] = frozenset()  # every model name looked up (with figures or without)
        self.pending: dict[str, int | None] = {}  # names the request path met that were not looked up yet
        self.index: BenchmarkIndex | None = None
        self.populations: Populations | None = None
        self._marker: tuple | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    # -- the request path -------------------------------------------------------------------------------------
    async def score(
        self, features: routerd.PromptFeatures, candidates: Sequence[routerd.ModelInfo]
    ) -> Mapping[str, routerd.Contribution]:
        if self.index is None or features.difficulty == "simple":  # no figures at all; any model will do
            return NO_OPINION
        seen = self.seen
        for model in candidates:
            if model.name not in seen and model.name not in self.pending:
                self.pending[model.name] = model.parameters
                if self._wake is not None:
                    self._wake.set()
        return self.tables.get(features.category, NO_OPINION)

    # -- the background ----------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="routerd-benchmark-scorer")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                await self.refresh()
            except Exception:
                log.exception("benchmarks: refreshing the figures failed; the previous ones stay")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.settings.refresh_interval):
                    await self._wake.wait()

    async def refresh(self) -> None:
        """Rebuild everything after a sync finished; otherwise look up only the models met since."""
        statuses = await self.store.statuses()
        marker = tuple((name, s.finished_at, s.ok) for name, s in statuses.items())
        if marker != self._marker or self.index is None:
            records = [r for r in await self.store.records() if not self.order or r.source in self.order]
            if not records:
                self._marker = marker
                return
            names = {model.name: model.parameters for model in await self.models.recorded()}
            names.update({name: None for name in self.seen if name not in names})
            names.update(self.pending)
            index, populations = await asyncio.to_thread(self._build, records)
            tables = await asyncio.to_thread(self._tables, index, populations, names, {})
            self.index, self.populations, self._marker = index, populations, marker
            log.info("benchmarks: figures of %d records for %d models", len(records), len(names))
        elif self.pending:
            names = dict(self.pending)
            assert self.populations is not None
            tables = await asyncio.to_thread(self._tables, self.index, self.populations, names, self.tables)
        else:
            return
        self.tables = tables
        self.seen = frozenset(self.seen | set(names))
        for name in names:
            self.pending.pop(name, None)

    def _build(self, records) -> tuple[BenchmarkIndex, Populations]:
        return BenchmarkIndex(records, order=self.order, aliases=self.aliases), Populations(records)

    def _tables(self, index, populations, names: Mapping[str, int | None], previous) -> dict:
        tables: dict[str, dict[str, routerd.Contribution]] = {c: dict(previous.get(c, {})) for c in self.mapping}
        for name, parameters in names.items():
            merged = index.lookup(name, parameters)
            for category, contribution in contributions(
                merged.benchmarks, populations, self.mapping, self.settings.weight
            ).items():
                tables[category][name] = contribution
        return {category: MappingProxyType(table) for category, table in tables.items()}
