"""The audit log of routing decisions, written off the request path.

A decision is remembered in memory when it is made (so ``GET /admin/decisions/{id}`` answers at
once, even mid-stream). When its request ends it is queued; a background task shows each outcome
to the scorers that learn, then stores the queued decisions in batches. The queue is bounded: when
the database cannot keep up, the oldest unwritten decisions are dropped and counted, never the
request delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from routerd.db.database import Database
from routerd.db.models import RoutingDecisionRow
from routerd.schemas.catalog import Outcome, PromptFeatures

log = logging.getLogger("routerd.decisions")
_TABLE = RoutingDecisionRow.__table__


@dataclass
class DecisionRecord:
    id: str
    principal: str
    tenant: str
    requested_model: str | None
    chosen_model: str | None
    runner_up: str | None
    features: PromptFeatures
    # Every candidate with its scorers' contributions, or a function that builds that list: the
    # routing engine passes one, so the explanation is built off the request path, when the writer
    # or /admin/decisions first needs it (`explained()`).
    candidates: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]]
    quality_preference: float
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    status: str = "pending"
    latency_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    response_id: str | None = None
    dispatcher: dict[str, Any] | None = None  # routing.mode "llm": what the dispatcher model said

    def explained(self) -> list[dict[str, Any]]:
        """The candidates' explanation (built once, on first use)."""
        if callable(self.candidates):
            self.candidates = self.candidates()
        return self.candidates

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at.isoformat(),
            "principal": self.principal,
            "tenant": self.tenant,
            "requested_model": self.requested_model,
            "chosen_model": self.chosen_model,
            "runner_up": self.runner_up,
            "quality_preference": self.quality_preference,
            "features": _features_dict(self.features),
            "candidates": self.explained(),
            "status": self.status,
            "latency_ms": self.latency_ms,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "response_id": self.response_id,
            "dispatcher": self.dispatcher,
        }

    def values(self) -> dict[str, Any]:
        return {
            "id": self.id, "created_at": self.created_at, "principal": self.principal, "tenant": self.tenant,
            "requested_model": self.requested_model, "chosen_model": self.chosen_model, "runner_up": self.runner_up,
            "features": _features_dict(self.features), "candidates": self.explained(), "status": self.status,
            "latency_ms": self.latency_ms, "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens, "response_id": self.response_id,
            "quality_preference": self.quality_preference, "dispatcher": self.dispatcher,
        }  # fmt: skip

    def row(self) -> RoutingDecisionRow:
        return RoutingDecisionRow(**self.values())


def _features_dict(features: PromptFeatures) -> dict[str, Any]:
    data = {f: getattr(features, f) for f in features.__struct_fields__}
    data["text"] = data["text"][:200]  # enough to recognise the prompt; the audit log is not a transcript
    return data


def _row_dict(row: RoutingDecisionRow) -> dict[str, Any]:
    return {
        "id": row.id, "created_at": row.created_at.isoformat(), "principal": row.principal, "tenant": row.tenant,
        "requested_model": row.requested_model, "chosen_model": row.chosen_model, "runner_up": row.runner_up,
        "quality_preference": row.quality_preference, "features": row.features, "candidates": row.candidates,
        "status": row.status, "latency_ms": row.latency_ms, "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens, "response_id": row.response_id, "dispatcher": row.dispatcher,
    }  # fmt: skip


class DecisionLog:
    def __init__(
        self,
        database: Database,
        learners: Callable[[], Iterable[Any]],
        *,
        capacity: int = 10_000,
        remembered: int = 5_000,
    ) -> None:
        self.database = database
        self.learners = learners
        self.recent: OrderedDict[str, DecisionRecord] = OrderedDict()
        self.by_response: dict[str, str] = {}
        self.remembered = remembered
        self.queue: asyncio.Queue[DecisionRecord] = asyncio.Queue(maxsize=capacity)
        self.dropped = 0
        self._task: asyncio.Task | None = None

    # -- the request path: memory only -------------------------------------------------------
    def remember(self, record: DecisionRecord) -> None:
        self.recent[record.id] = record
        while len(self.recent) > self.remembered:
            _, old = self.recent.popitem(last=False)
            if old.response_id:
                self.by_response.pop(old.response_id, None)

    def finish(self, record: DecisionRecord, **outcome: Any) -> None:
        """The request is over: note how it went and queue the record for the writer."""
        for key, value in outcome.items():
            setattr(record, key, value)
        if record.response_id:
            self.by_response[record.response_id] = record.id
        try:
            self.queue.put_nowait(record)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("decision log full: %d decisions not written so far", self.dropped)

    def remembered_row(self, decision_id: str) -> RoutingDecisionRow | None:
        """The row of a decision still in memory, which may not be written yet."""
        record = self.recent.get(decision_id)
        return record.row() if record is not None else None

    # -- reading -----------------------------------------------------------------------------
    async def get(self, decision_id: str) -> dict[str, Any] | None:
        if decision_id in self.recent:
            return self.recent[decision_id].as_dict()
        async with self.database.session() as session:
            row = await session.get(RoutingDecisionRow, decision_id)
            return _row_dict(row) if row is not None else None

    async def find(self, *, decision_id: str | None = None, response_id: str | None = None) -> dict[str, Any] | None:
        """A decision by its id or by the id of the response it produced."""
        if decision_id:
            return await self.get(decision_id)
        if response_id in self.by_response:
            return await self.get(self.by_response[response_id])
        async with self.database.session() as session:
            query = select(RoutingDecisionRow).where(RoutingDecisionRow.response_id == response_id).limit(1)
            row = (await session.execute(query)).scalar_one_or_none()
            return _row_dict(row) if row is not None else None

    # -- the writer ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._write_forever(), name="routerd-decision-log")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._write(self._drain())

    def _drain(self, limit: int = 500) -> list[DecisionRecord]:
        batch = []
        while len(batch) < limit and not self.queue.empty():
            batch.append(self.queue.get_nowait())
        return batch

    async def _write_forever(self) -> None:
        while True:
            first = await self.queue.get()
            await self._learn([first])  # scorers learn at once, before any database work
            await asyncio.sleep(0.05)  # let a burst gather into one transaction
            rest = self._drain()
            await self._learn(rest)
            batch = [first, *rest]
            try:
                await self._write(batch)
            except Exception:
                log.exception("writing %d decisions failed; they are lost", len(batch))

    async def _write(self, batch: list[DecisionRecord]) -> None:
        """One multi-row INSERT per batch, through SQLAlchemy Core (the ORM's bulk insert costs
        several times more per row, in the gateway's one process); when a row is already there
        (feedback wrote the decision it rates), the batch is written again row by row with merge."""
        if not batch:
            return
        try:
            async with self.database.engine.begin() as connection:
                await connection.execute(insert(_TABLE), [record.values() for record in batch])
        except IntegrityError:
            for record in batch:
                async with self.database.session() as session:
                    await session.merge(record.row())

    async def _learn(self, batch: list[DecisionRecord]) -> None:
        for record in batch:
            if record.chosen_model is None:
                continue
            outcome = Outcome(
                decision_id=record.id,
                model=record.chosen_model,
                features=record.features,
                ok=record.status == "ok",
                latency_ms=record.latency_ms,
                ttft_ms=record.ttft_ms,
                completion_tokens=record.completion_tokens,
            )
            await learn(self.learners(), outcome)


async def learn(learners: Iterable[Any], outcome: Outcome) -> None:
    """Show `outcome` to every scorer that learns; one failing never stops the others."""
    for scorer in learners:
        method = getattr(scorer, "learn", None)
        if method is None:
            continue
        try:
            await method(outcome)
        except Exception:
            log.exception("scorer %s failed to learn", getattr(scorer, "name", scorer))
