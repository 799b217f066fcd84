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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta
from sqlalchemy import select

from routerd.benchmarks.fields import Benchmark, screen
from routerd.config import explain_validation_error
from routerd.db.database import Database
from routerd.db.models import BenchmarkRecordRow, CatalogModel, ModelProfile
from routerd.errors import RouterdError
from routerd.profiling.repository import aware, category_result, model_row_ids
from routerd.profiling.results import NonNegative, ProfileDetails

FORMAT = "routerd.measurements"
FORMAT_VERSION = 1
ERRORS_SHOWN = 20

When = Annotated[dt.datetime, Meta(tz=True)]


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


class ImportRefused(RouterdError):
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
async def export_measurements(database: Database) -> Measurements:
    query = (
        select(ModelProfile, CatalogModel.backend, CatalogModel.name)
        .join(CatalogModel, CatalogModel.id == ModelProfile.model_id)
        .order_by(ModelProfile.profiled_at, CatalogModel.backend, CatalogModel.name, ModelProfile.id)
    )
    async with database.session() as session:
        rows = (await session.execute(query)).all()
        benchmarks = (await session.execute(select(BenchmarkRecordRow).order_by(BenchmarkRecordRow.id))).scalars()
        entries = [
            BenchmarkEntry(
                source=b.source, model=b.model, benchmark=b.benchmark, value=b.value, fetched_at=aware(b.fetched_at)
            )
            for b in benchmarks
        ]
    profiles = []
    for row, backend, name in rows:
        result = category_result(row)
        if result is None:
            continue
        profiles.append(
            ProfileRecord(
                backend=backend,
                model=name,
                suite_version=row.suite_version,
                category=row.category,
                quality=row.quality,
                ttft_ms=row.ttft_ms,
                tokens_per_second=row.tokens_per_second,
                latency_ms=row.latency_ms,
                samples=row.samples,
                profiled_at=aware(row.profiled_at),
                details=result.details,
            )
        )
    now = dt.datetime.now(dt.UTC)
    return Measurements(format=FORMAT, version=FORMAT_VERSION, exported_at=now, profiles=profiles, benchmarks=entries)


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


def _check_benchmarks(entries: Sequence[BenchmarkEntry], allowed: Mapping[str, Benchmark]) -> list[str]:
    problems = []
    for index, entry in enumerate(entries):
        screened = screen(entry.source, [msgspec.structs.asdict(entry)], allowed=allowed)
        label = f"benchmarks[{index}] ({entry.source}, {entry.model[:60]}, {entry.benchmark[:40]})"
        problems += [f"{label}: {refusal.field}: {refusal.reason}" for refusal in screened.refusals]
    return problems


def parse_measurements(data: bytes, allowed: Mapping[str, Benchmark]) -> Measurements:
    """Validate a file completely; raise `ImportRefused` naming each problem's record and field."""
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
    problems = _check_runs(measurements.profiles) + _check_benchmarks(measurements.benchmarks, allowed)
    if problems:
        raise ImportRefused(problems)
    return measurements


# -- import ------------------------------------------------------------------------------------------------
async def import_measurements(database: Database, measurements: Measurements) -> ImportSummary:
    """Write a validated file in one transaction (see the module's doc)."""
    summary = ImportSummary()
    async with database.session() as session:
        models = await model_row_ids(session, {(p.backend, p.model) for p in measurements.profiles})
        present: set[tuple[int, str, str]] = set()
        if models:
            query = select(ModelProfile.model_id, ModelProfile.category, ModelProfile.details).where(
                ModelProfile.model_id.in_(list(models.values()))
            )
            for model_id, category, details in (await session.execute(query)).all():
                run_id = details.get("run_id") if isinstance(details, dict) else None
                present.add((model_id, str(run_id), category))
        for record in measurements.profiles:
            model_id = models[(record.backend, record.model)]
            key = (model_id, record.details.run_id, record.category)
            if key in present:
                summary.profiles_present += 1
                continue
            present.add(key)
            session.add(
                ModelProfile(
                    model_id=model_id,
                    suite_version=record.suite_version,
                    category=record.category,
                    quality=record.quality,
                    ttft_ms=record.ttft_ms,
                    tokens_per_second=record.tokens_per_second,
                    latency_ms=record.latency_ms,
                    samples=record.samples,
                    details=msgspec.to_builtins(record.details),
                    profiled_at=record.profiled_at,
                )
            )
            summary.profiles_added += 1
        stored = {
            (b.source, b.model, b.benchmark): b for b in (await session.execute(select(BenchmarkRecordRow))).scalars()
        }
        for entry in measurements.benchmarks:
            model = entry.model.strip()
            row = stored.get((entry.source, model, entry.benchmark))
            if row is None:
                row = BenchmarkRecordRow(
                    source=entry.source, model=model, benchmark=entry.benchmark, value=entry.value,
                    fetched_at=entry.fetched_at,
                )  # fmt: skip
                session.add(row)
                stored[(entry.source, model, entry.benchmark)] = row
                summary.benchmarks_added += 1
            elif aware(row.fetched_at) < entry.fetched_at:
                row.value, row.fetched_at = entry.value, entry.fetched_at
                summary.benchmarks_updated += 1
            else:
                summary.benchmarks_kept += 1
    return summary
