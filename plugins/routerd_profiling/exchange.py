"""Sharing measurements between gateways: ``routerd profiles export`` and ``routerd profiles import``.

The file is JSON, a `Measurements` object (format ``routerd.measurements``, version 1; docs/profiling.md
describes every field): every stored profile row (the whole history, with its per-prompt details) and every
public benchmark record.

An import is all or nothing. The whole file is validated first (types, ranges and unknown fields with msgspec;
then the rows of each run agree with each other, and benchmark figures pass the same whitelist as a sync); the
first problems are reported naming the record and the field, and nothing is written. A valid file is written in
one transaction. Importing is idempotent: a profile row already present (same model, run and category) is
skipped, and a benchmark figure replaces the stored one only when it is newer, so importing a file twice, or a
file exported from this gateway, adds nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from routerd import (
    BenchmarkRecord,
    BenchmarkStore,
    CategoryResult,
    Database,
    ProfileDetails,
    ProfileStore,
    StoredRun,
    explain_validation_error,
)

FORMAT = "routerd.measurements"
FORMAT_VERSION = 1
ERRORS_SHOWN = 20

When = Annotated[dt.datetime, Meta(tz=True)]
NonNegative = Annotated[float, Meta(ge=0)]  # milliseconds, tokens per second


class ProfileRecord(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One ``model_profiles`` row: one model's figures in one category from one run."""

    backend: Annotated[str, Meta(min_length=1, max_length=200)]
    model: Annotated[str, Meta(min_length=1, max_length=400)]
    suite_version: Annotated[str, Meta(min_length=1, max_length=50)]
    category: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
    quality: Annotated[float, Meta(ge=0, le=1)] | None
    ttft_ms: NonNegative | None
    tokens_per_second: NonNegative | None
    latency_ms: NonNegative | None
    samples: Annotated[int, Meta(ge=0)]
    profiled_at: When
    details: ProfileDetails


class BenchmarkEntry(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """One public benchmark figure, as a benchmark source published it."""

    source: Annotated[str, Meta(min_length=1, max_length=100)]
    model: str
    benchmark: str
    value: float
    fetched_at: When


class Measurements(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    format: Literal["routerd.measurements"]
    version: Literal[1]
    exported_at: When
    profiles: list[ProfileRecord] = []
    benchmarks: list[BenchmarkEntry] = []


class ImportRefused(Exception):
    """A file that cannot be imported; `problems` name the record and the field of each."""

    def __init__(self, problems: Sequence[str]) -> None:
        shown = list(problems[:ERRORS_SHOWN])
        if len(problems) > ERRORS_SHOWN:
            shown.append(f"... and {len(problems) - ERRORS_SHOWN} more")
        super().__init__("nothing imported:\n  " + "\n  ".join(shown))
        self.problems = list(problems)


@dataclass
class ImportSummary:
    profiles_added: int = 0
    profiles_present: int = 0
    benchmarks_added: int = 0
    benchmarks_updated: int = 0
    benchmarks_kept: int = 0

    def __str__(self) -> str:
        return (
            f"profiles: {self.profiles_added} rows added, {self.profiles_present} already present; "
            f"benchmarks: {self.benchmarks_added} added, {self.benchmarks_updated} updated, "
            f"{self.benchmarks_kept} kept (the stored figure is as new or newer)"
        )


# -- export ------------------------------------------------------------------------------------------------
async def export_measurements(profiles: ProfileStore, benchmarks: BenchmarkStore) -> Measurements:
    """Every stored profile row (oldest run first) and every benchmark record."""
    records = [
        ProfileRecord(
            backend=run.backend,
            model=run.name,
            suite_version=run.suite_version,
            category=result.category,
            quality=result.quality,
            ttft_ms=result.ttft_ms,
            tokens_per_second=result.tokens_per_second,
            latency_ms=result.latency_ms,
            samples=result.samples,
            profiled_at=run.profiled_at,
            details=result.details,
        )
        for run in await profiles.runs()
        for result in run.categories
    ]
    entries = [
        BenchmarkEntry(source=r.source, model=r.model, benchmark=r.benchmark, value=r.value, fetched_at=r.fetched_at)
        for r in await benchmarks.records()
        if r.fetched_at is not None
    ]
    now = dt.datetime.now(dt.UTC)
    return Measurements(format=FORMAT, version=FORMAT_VERSION, exported_at=now, profiles=records, benchmarks=entries)


def encode(measurements: Measurements) -> bytes:
    return msgspec.json.format(msgspec.json.encode(measurements), indent=2) + b"\n"


# -- validation --------------------------------------------------------------------------------------------
def _describe(raw: Any, section: str, index: int) -> str:
    """``profiles[3] (local/gemma-3-270m, coding)``: the record's place and, where readable, what it is."""
    label = f"{section}[{index}]"
    items = raw.get(section) if isinstance(raw, dict) else None
    item = items[index] if isinstance(items, list) and index < len(items) else None
    if not isinstance(item, dict):
        return label
    if section == "profiles":
        names = [item.get("backend"), item.get("model")]
        parts = ["/".join(n for n in names if isinstance(n, str)), item.get("category")]
    else:
        parts = [item.get("source"), item.get("model"), item.get("benchmark")]
    named = ", ".join(p[:80] for p in parts if isinstance(p, str) and p)
    return f"{label} ({named})" if named else label


def _validation_problem(exc: msgspec.ValidationError, raw: Any) -> str:
    key, reason = explain_validation_error(exc)
    section, _, rest = key.partition(".")
    index, _, field = rest.partition(".")
    if section in ("profiles", "benchmarks") and index.isdigit():
        field = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", field)  # details.prompts.0.score -> details.prompts[0].score
        return f"{_describe(raw, section, int(index))}: {field or 'record'}: {reason}"
    return f"{key or 'the file'}: {reason}"


def _check_runs(profiles: Sequence[ProfileRecord]) -> list[str]:
    """The rows of one run agree on model, suite version and date; a category appears once per run."""
    problems = []
    runs: dict[tuple[str, str, str], ProfileRecord] = {}
    seen: set[tuple[str, str, str, str]] = set()
    for index, record in enumerate(profiles):
        label = f"profiles[{index}] ({record.backend}/{record.model}, {record.category})"
        if record.samples != len(record.details.prompts):
            problems.append(
                f"{label}: samples: {record.samples}, but details.prompts has {len(record.details.prompts)}"
            )
        key = (record.backend, record.model, record.details.run_id, record.category)
        if key in seen:
            problems.append(f"{label}: details.run_id: the run {record.details.run_id} has this category twice")
        seen.add(key)
        first = runs.setdefault(key[:3], record)
        if (first.suite_version, first.profiled_at) != (record.suite_version, record.profiled_at):
            problems.append(f"{label}: profiled_at: differs from other rows of the run {record.details.run_id}")
    return problems


def _check_benchmarks(entries: Sequence[BenchmarkEntry], store: BenchmarkStore) -> list[str]:
    """The same screening as a benchmark sync's, against this gateway's known benchmarks."""
    problems = []
    for index, field, reason in store.refusals([_benchmark_record(entry) for entry in entries]):
        entry = entries[index]
        label = f"benchmarks[{index}] ({entry.source}, {entry.model[:60]}, {entry.benchmark[:40]})"
        problems.append(f"{label}: {field}: {reason}")
    return problems


def _benchmark_record(entry: BenchmarkEntry) -> BenchmarkRecord:
    return BenchmarkRecord(entry.source, entry.model, entry.benchmark, entry.value, entry.fetched_at)


def parse_measurements(data: bytes, benchmarks: BenchmarkStore) -> Measurements:
    """Validate a file completely (benchmark figures against `benchmarks`' whitelist); raise `ImportRefused`
    naming each problem's record and field."""
    try:
        raw = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportRefused([f"not valid JSON: {exc}"]) from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ImportRefused([f'format: not a routerd measurements file (expected "format": "{FORMAT}")'])
    if raw.get("version") != FORMAT_VERSION:
        found = raw.get("version")
        raise ImportRefused([f"version: {found!r} is not a version this gateway reads ({FORMAT_VERSION})"])
    try:
        measurements = msgspec.convert(raw, Measurements)
    except msgspec.ValidationError as exc:
        raise ImportRefused([_validation_problem(exc, raw)]) from None
    problems = _check_runs(measurements.profiles) + _check_benchmarks(measurements.benchmarks, benchmarks)
    if problems:
        raise ImportRefused(problems)
    return measurements


# -- import ------------------------------------------------------------------------------------------------
def _runs(records: Sequence[ProfileRecord]) -> list[StoredRun]:
    """The rows of a validated file grouped into runs (its rows agree on model, suite version and date)."""
    runs: dict[tuple[str, str, str], StoredRun] = {}
    for record in records:
        key = (record.backend, record.model, record.details.run_id)
        run = runs.get(key)
        if run is None:
            run = runs[key] = StoredRun(
                backend=record.backend,
                name=record.model,
                suite_version=record.suite_version,
                profiled_at=record.profiled_at,
                run_id=record.details.run_id,
                categories=[],
            )
        run.categories.append(
            CategoryResult(
                category=record.category,
                quality=record.quality,
                ttft_ms=record.ttft_ms,
                tokens_per_second=record.tokens_per_second,
                latency_ms=record.latency_ms,
                samples=record.samples,
                details=record.details,
            )
        )
    return list(runs.values())


async def import_measurements(
    database: Database, profiles: ProfileStore, benchmarks: BenchmarkStore, measurements: Measurements
) -> ImportSummary:
    """Write a validated file in one transaction (see the module's doc)."""
    summary = ImportSummary()
    async with database.session() as session:
        added, present = await profiles.add_runs(_runs(measurements.profiles), session=session)
        summary.profiles_added, summary.profiles_present = added, present
        records = [_benchmark_record(entry) for entry in measurements.benchmarks]
        added, updated, kept = await benchmarks.merge(records, session=session)
        summary.benchmarks_added, summary.benchmarks_updated, summary.benchmarks_kept = added, updated, kept
    return summary
