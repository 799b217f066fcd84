"""Benchmark records and sync status in the database (`BenchmarkStore`, ``context.benchmarks``).

The kernel's benchmark sync writes; plugins read (`records`, `statuses`, `known`). ``routerd profiles export|import``
reads every record and merges another gateway's (`refusals` screens them as a sync would, `merge` writes them).

A sync of one source is one transaction: its screened records are upserted on (source, model, benchmark) and
the rows it no longer publishes are deleted, so readers see the source's previous publication or its new one,
never half of each. Rows are built from `RECORD_FIELDS` only and every value is a bound parameter; nothing a
provider sends becomes SQL text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from routerd.db.database import Database
from routerd.db.models import BenchmarkRecordRow, SyncStatusRow
from routerd.schemas.catalog import BenchmarkRecord
from routerd.stores.benchmark_screening import RECORD_FIELDS, Benchmark, allowed_benchmarks, screen

STATUS_PREFIX = "benchmarks/"  # sync_status rows of benchmark sources: "benchmarks/<provider>"
_CHUNK = 500


class SyncStatus(msgspec.Struct, frozen=True):
    """The last sync of one benchmark source (``GET /admin/benchmarks/status``)."""

    source: str
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    ok: bool
    records: int
    error: str | None
    running: bool


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; they were stored as UTC."""
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class BenchmarkStore:
    """The synced benchmark figures and each source's last sync."""

    def __init__(self, database: Database, extra_benchmarks: Iterable[str] = ()) -> None:
        self.extra_benchmarks = tuple(extra_benchmarks)
        self.database = database

    def _insert(self, session: AsyncSession, table: Any) -> Any:
        dialect = session.get_bind().dialect.name
        return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)

    async def replace_source(self, source: str, records: Sequence[BenchmarkRecord]) -> int:
        """Store `source`'s screened records as its whole publication, in one transaction; return how many
        rows it now has."""
        rows = [{name: getattr(record, name) for name in RECORD_FIELDS} for record in records]
        if any(row["source"] != source for row in rows):
            raise ValueError(f"records of another source given for {source!r}")
        table = BenchmarkRecordRow.__table__
        async with self.database.session() as session:
            for chunk in _chunks(rows):
                insert = self._insert(session, table)
                upsert = insert.on_conflict_do_update(
                    index_elements=[table.c.source, table.c.model, table.c.benchmark],
                    set_={"value": insert.excluded.value, "fetched_at": insert.excluded.fetched_at},
                )
                await session.execute(upsert, list(chunk))
            kept = {(row["model"], row["benchmark"]) for row in rows}
            existing = await session.execute(
                select(table.c.id, table.c.model, table.c.benchmark).where(table.c.source == source)
            )
            stale = [row.id for row in existing if (row.model, row.benchmark) not in kept]
            for chunk in _chunks(stale):
                await session.execute(delete(table).where(table.c.id.in_(chunk)))
        return len(rows)

    def known(self) -> dict[str, Benchmark]:
        """The benchmarks this gateway accepts, by name: the kernel's own and ``benchmarks.extra_benchmarks``."""
        return allowed_benchmarks(self.extra_benchmarks)

    async def records(self) -> list[BenchmarkRecord]:
        """Every stored record, in the order they were first stored."""
        async with self.database.session() as session:
            rows = (await session.execute(select(BenchmarkRecordRow).order_by(BenchmarkRecordRow.id))).scalars().all()
        return [BenchmarkRecord(r.source, r.model, r.benchmark, r.value, _aware(r.fetched_at)) for r in rows]

    def refusals(self, records: Sequence[BenchmarkRecord]) -> list[tuple[int, str, str]]:
        """What a benchmark sync would refuse in `records` (each screened as its own source's publication:
        benchmarks this gateway knows, values in range, model names, dates), as (index in `records`, field,
        reason); empty when every record would be stored. A record's blank value is not a refusal."""
        known = self.known()
        found = []
        for index, record in enumerate(records):
            screened = screen(record.source, [msgspec.structs.asdict(record)], allowed=known)
            found += [(index, refusal.field, refusal.reason) for refusal in screened.refusals]
        return found

    async def merge(
        self, records: Sequence[BenchmarkRecord], *, session: AsyncSession | None = None
    ) -> tuple[int, int, int]:
        """Merge another gateway's records (screened first: `refusals`) into the stored ones; return (added,
        updated, kept). A record of a (source, model, benchmark) not stored is added; one that is replaces the
        stored figure only when its ``fetched_at`` is newer, so merging the same records twice changes nothing.
        Unlike a sync, no row of the source is deleted.

        With `session` (from ``database.session()``) the rows are written in the caller's transaction, so that an
        import is all or nothing; without, in a transaction of their own."""
        if session is None:
            async with self.database.session() as own:
                return await self._merge(own, records)
        return await self._merge(session, records)

    async def _merge(self, session: AsyncSession, records: Sequence[BenchmarkRecord]) -> tuple[int, int, int]:
        stored = {
            (b.source, b.model, b.benchmark): b for b in (await session.execute(select(BenchmarkRecordRow))).scalars()
        }
        added = updated = kept = 0
        for record in records:
            key = (record.source, record.model.strip(), record.benchmark)
            fetched_at = record.fetched_at or dt.datetime.now(dt.UTC)
            row = stored.get(key)
            if row is None:
                row = BenchmarkRecordRow(
                    source=key[0], model=key[1], benchmark=key[2], value=record.value, fetched_at=fetched_at
                )
                session.add(row)
                stored[key] = row
                added += 1
            elif _aware(row.fetched_at) < fetched_at:
                row.value, row.fetched_at = record.value, fetched_at
                updated += 1
            else:
                kept += 1
        return added, updated, kept

    async def counts(self) -> dict[str, int]:
        """Stored records per source."""
        counted: dict[str, int] = {}
        for record in await self.records():
            counted[record.source] = counted.get(record.source, 0) + 1
        return counted

    # -- sync status --------------------------------------------------------------------------------------
    async def _write_status(self, values: dict[str, Any]) -> None:
        table = SyncStatusRow.__table__
        async with self.database.session() as session:
            insert = self._insert(session, table).values(**values)
            changed = {name: getattr(insert.excluded, name) for name in values if name != "source"}
            await session.execute(insert.on_conflict_do_update(index_elements=[table.c.source], set_=changed))

    async def sync_started(self, source: str, at: dt.datetime) -> None:
        await self._write_status({"source": STATUS_PREFIX + source, "started_at": at})

    async def sync_finished(self, source: str, *, at: dt.datetime, ok: bool, records: int, error: str | None) -> None:
        await self._write_status(
            {"source": STATUS_PREFIX + source, "finished_at": at, "ok": ok, "records": records, "error": error}
        )

    async def statuses(self) -> dict[str, SyncStatus]:
        """The last sync of each benchmark source that ever ran, by source name."""
        async with self.database.session() as session:
            query = select(SyncStatusRow).where(SyncStatusRow.source.startswith(STATUS_PREFIX, autoescape=True))
            rows = (await session.execute(query)).scalars().all()
        found = {}
        for row in rows:
            started, finished = _aware(row.started_at), _aware(row.finished_at)
            name = row.source.removeprefix(STATUS_PREFIX)
            running = started is not None and (finished is None or finished < started)
            found[name] = SyncStatus(name, started, finished, row.ok, row.records, row.error, running)
        return dict(sorted(found.items()))
