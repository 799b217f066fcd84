"""Merging the figures several sources publish for one model.

Sources are taken in priority order (``benchmarks.sources`` as configured, then the others by name). For each
benchmark the first non-null value wins, so a source that leaves a figure blank never hides another's; the
source of every value is kept beside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

import msgspec

from routerd import BenchmarkRecord
from routerd_benchmarks.matching import ModelMatcher, match_model


class Figure(msgspec.Struct, frozen=True):
    """One merged value: where it came from and under which name that source published the model."""

    value: float
    source: str
    source_model: str
    fetched_at: dt.datetime | None = None


class MergedModel(msgspec.Struct, frozen=True):
    """A model's figures from every source: `matches` says which published name was used per source
    (None: the source publishes nothing the matcher or an alias pairs with this model)."""

    model: str
    matches: dict[str, str | None]
    benchmarks: dict[str, Figure]


def source_order(sources: Iterable[str], preferred: Sequence[str] = ()) -> list[str]:
    """`preferred` first, in its order, then the other sources by name."""
    found = set(sources)
    return [s for s in preferred if s in found] + sorted(found - set(preferred))


def merge(records: Iterable[BenchmarkRecord], order: Sequence[str] = ()) -> dict[str, Figure]:
    """Merge one model's records from several sources: per benchmark, the first non-null value in source
    priority order wins (within a source, the first record)."""
    records = list(records)
    rank = {source: i for i, source in enumerate(source_order({r.source for r in records}, order))}
    merged: dict[str, Figure] = {}
    for record in sorted(records, key=lambda r: rank[r.source]):  # sorted() is stable
        if record.value is None or record.benchmark in merged:
            continue
        merged[record.benchmark] = Figure(record.value, record.source, record.model, record.fetched_at)
    return dict(sorted(merged.items()))


def by_source(records: Iterable[BenchmarkRecord]) -> dict[str, dict[str, list[BenchmarkRecord]]]:
    """source -> published model name -> its records."""
    grouped: dict[str, dict[str, list[BenchmarkRecord]]] = {}
    for record in records:
        grouped.setdefault(record.source, {}).setdefault(record.model, []).append(record)
    return grouped


class BenchmarkIndex:
    """Every stored record, ready to answer "what do the sources say about this local model?"."""

    def __init__(
        self, records: Iterable[BenchmarkRecord], *, order: Sequence[str] = (), aliases: Mapping[str, str] | None = None
    ) -> None:
        self.grouped = by_source(records)
        self.order = source_order(self.grouped, order)
        self.aliases = dict(aliases or {})
        self.matchers = {source: ModelMatcher(models) for source, models in self.grouped.items()}

    def lookup(self, model: str, parameters: int | None = None) -> MergedModel:
        matches: dict[str, str | None] = {}
        found: list[BenchmarkRecord] = []
        for source in self.order:
            name = match_model(model, self.matchers[source], aliases=self.aliases, parameters=parameters)
            matches[source] = name
            if name is not None:
                found.extend(self.grouped[source][name])
        return MergedModel(model, matches, merge(found, self.order))
