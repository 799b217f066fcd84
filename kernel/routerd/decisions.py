"""The decision log: every routing decision and how its request went, written off the request path.

One direction: routing returns a `RoutingDecision`; the request path reports it (`opened`) and later how the
request went (`closed`, a `RequestResult`); the log stores both. Nothing else reaches into a decision.

In memory, a decision is remembered at once (``GET /admin/decisions/{id}`` answers mid-stream). A background
writer stores decisions in batches: a finished request's row as it ended; a request still running after
`PENDING_AFTER` seconds as ``pending`` first (so other replicas find it, and a replica that dies leaves its
trace), updated when it ends. Before writing, the writer shows each outcome to the learners (`routerd.Learner`).
The queue is bounded: when the database cannot keep up, the newest finished decisions are dropped and counted,
never a request delayed. Every text is written as the database can hold it (no NUL, cut to its column's width);
a row the database still refuses is dropped alone, never the batch, and logged by its id only, never its values.
While the database is down, the writer holds the rows (at most `AuditSettings.outage_buffer`, the oldest dropped
and counted beyond) and tries again with backoff, so the decisions of a short outage are written when it ends.

Memory is bounded per decision and in total: a decision keeps `AuditSettings.prompt_chars` of its prompt, the
learners are shown `AuditSettings.learner_prompt_chars` of it once its request is over (routing saw all of it),
and the log remembers the latest `AuditSettings.remembered` decisions.

Readers use the public interface: `find` (a decision by its id or its response's id, also one another replica
made and has not written yet: the look-up waits for it a little), `rate` (store a user's rating, which learners
see at once), `ratings` (every rating with its decision's prompt category), `get` (the whole explanation).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from routerd.config import AuditSettings
from routerd.db.database import Database
from routerd.db.models import FeedbackRow, RoutingDecisionRow
from routerd.db.outage import is_outage
from routerd.routing.decision import RoutingDecision
from routerd.schemas.catalog import Outcome, Principal, PromptFeatures

log = logging.getLogger("routerd.decisions")
_TABLE = RoutingDecisionRow.__table__

PENDING_AFTER = 1.0  # seconds a request may run before its decision is written as pending
FIND_WAIT = 2.0  # seconds a look-up waits for a decision another replica has not written yet
RECENT_ID_AGE = 900.0  # seconds: a decision id younger than this may still be on its way to the database
_DECISION_ID = re.compile(r"^rd-([0-9a-f]{12})[0-9a-f]{20}$")
_ID_MAX = 200  # the width of routing_decisions.response_id and feedback.response_id


@dataclass
class RequestResult:
    """How a request went, as the request path reports it: `status` is ``ok``, ``error`` or ``cancelled`` (the
    client went away); `model` the model that answered (after any fallback), `cache` the cached answer that
    served it (``{"cache", "entry", "similarity"}``), `skill_calls` the skills the gateway ran for it."""

    status: str
    model: str | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    response_id: str | None = None
    cache: dict[str, Any] | None = None
    skill_calls: list[dict[str, Any]] | None = None


class DecisionView(msgspec.Struct, frozen=True, kw_only=True):
    """A decision as readers see it: the model that answered (`model`, its public id; `name`, the backend's name
    for it), the prompt's features (its text cut to `AuditSettings.prompt_chars`), how the request went."""

    id: str
    model: str | None
    name: str | None
    features: PromptFeatures
    status: str
    response_id: str | None
    created_at: dt.datetime


class Rating(msgspec.Struct, frozen=True, kw_only=True):
    """A user's rating (0..1) of the answer `model` (public id; `name` its backend's name) gave to a prompt of
    `category` (`text`: the prompt's start, as the log keeps it)."""

    decision_id: str | None
    model: str
    name: str
    rating: float
    category: str
    text: str


def clean(value: str | None, limit: int = 400) -> str | None:
    """A client-given string as the database can hold it: no NUL, at most `limit` characters."""
    if value is None:
        return None
    return value.replace("\x00", "")[:limit]


def _kept(features: PromptFeatures, limit: int) -> PromptFeatures:
    """`features` with at most `limit` characters of the prompt, without NUL: O(limit), whatever the prompt's size."""
    text = features.text
    if len(text) > limit:
        text = text[:limit]  # first: never a scan of the whole prompt
    elif "\x00" not in text:
        return features
    return msgspec.structs.replace(features, text=text.replace("\x00", ""))


def _features_dict(features: PromptFeatures) -> dict[str, Any]:
    return {f: getattr(features, f) for f in features.__struct_fields__}


def _name_in(candidates: Any, model: str | None) -> str | None:
    """The backend's name of `model` (a public id): a second backend's copy is listed as ``backend/name`` and
    its candidate entry says the name."""
    if model is None:
        return None
    if isinstance(candidates, list):
        for candidate in candidates:
            if isinstance(candidate, dict) and candidate.get("model") == model:
                name = candidate.get("name")
                return name if isinstance(name, str) and name else model
    return model


@dataclass
class _Entry:
    """One decision in memory: what routing decided, and how the request went once it is over."""

    id: str
    principal: str
    tenant: str
    requested_model: str | None
    features: PromptFeatures  # the text cut to AuditSettings.prompt_chars
    chosen_id: str | None
    runner_up: str | None
    preference: float
    dispatcher: dict[str, Any] | None
    decision: RoutingDecision | None  # dropped once the explanation is built from it
    created_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    opened_at: float = field(default_factory=time.monotonic)
    candidates: list[dict[str, Any]] | None = None
    result: RequestResult | None = None
    written: bool = False  # a row exists (or is on its way): later writes are updates
    whole: PromptFeatures | None = field(default=None, repr=False)  # the whole prompt, until the learners saw it
    outcome: Outcome | None = field(default=None, repr=False)  # what the learners are shown, once closed

    def explained(self) -> list[dict[str, Any]]:
        if self.candidates is None:
            self.candidates = self.decision.explain() if self.decision is not None else []
            self.decision = None
        return self.candidates

    def chosen(self) -> str | None:
        if self.result is not None and self.result.model is not None:
            return self.result.model
        return self.chosen_id

    def values(self) -> dict[str, Any]:
        result = self.result or RequestResult(status="pending")
        return {
            "id": self.id, "created_at": self.created_at, "principal": self.principal, "tenant": self.tenant,
            "requested_model": self.requested_model, "chosen_model": clean(self.chosen()),
            "runner_up": self.runner_up, "features": _features_dict(self.features), "candidates": self.explained(),
            "status": clean(result.status, 50), "latency_ms": result.latency_ms, "ttft_ms": result.ttft_ms,
            "prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "response_id": clean(result.response_id, _ID_MAX), "quality_preference": self.preference,
            "dispatcher": self.dispatcher, "cache": result.cache, "skill_calls": result.skill_calls,
        }  # fmt: skip


def _row_dict(values: Mapping[str, Any]) -> dict[str, Any]:
    data = dict(values)
    created = data["created_at"]
    if isinstance(created, dt.datetime):
        data["created_at"] = (created if created.tzinfo else created.replace(tzinfo=dt.UTC)).isoformat()
    return data


def _view(values: Mapping[str, Any]) -> DecisionView:
    created = values["created_at"]
    if isinstance(created, str):
        created = dt.datetime.fromisoformat(created)
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    features = msgspec.convert(values.get("features") or {"text": ""}, PromptFeatures)
    model = values.get("chosen_model")
    return DecisionView(
        id=values["id"],
        model=model,
        name=_name_in(values.get("candidates"), model),
        features=features,
        status=values.get("status") or "pending",
        response_id=values.get("response_id"),
        created_at=created,
    )


_COLUMNS = [column.name for column in _TABLE.columns]


def _of_row(row: RoutingDecisionRow) -> dict[str, Any]:
    return {name: getattr(row, name) for name in _COLUMNS}


class DecisionLog:
    def __init__(
        self,
        database: Database,
        learners: Mapping[str, Any],
        *,
        capacity: int = 10_000,
        settings: AuditSettings | None = None,
    ) -> None:
        settings = settings or AuditSettings()
        self.database = database
        self.learners = learners  # the registry's learners, by name
        self.settings = settings
        self.recent: OrderedDict[str, _Entry] = OrderedDict()
        self.by_response: dict[str, str] = {}
        self.remembered = settings.remembered
        self.closed_queue: asyncio.Queue[_Entry] = asyncio.Queue(maxsize=capacity)
        self.running: OrderedDict[str, _Entry] = OrderedDict()  # opened, not closed, not written yet
        # Rows waiting for the database, by decision id, oldest first: ``(values, "insert" | "update")``. Empty
        # but for a moment, unless the database is down.
        self.held: OrderedDict[str, tuple[dict[str, Any], str]] = OrderedDict()
        self.dropped = 0  # finished decisions not queued: the queue was full
        self.dropped_held = 0  # rows held during an outage and dropped: more than `outage_buffer`
        self.refused = 0  # rows the database refused, alone
        self.outage_since: float | None = None  # monotonic time of the first failed attempt of the current outage
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._task: asyncio.Task | None = None

    # -- the request path: memory only -------------------------------------------------------
    def opened(self, decision: RoutingDecision, principal: Principal, requested_model: str | None) -> None:
        """Routing decided: remember the decision (its request is under way)."""
        chosen, runner_up = decision.chosen, decision.runner_up
        entry = _Entry(
            id=decision.id,
            principal=clean(principal.subject, 200) or "",
            tenant=clean(principal.tenant, 200) or "default",
            requested_model=clean(requested_model),
            features=_kept(decision.features, self.settings.prompt_chars),
            chosen_id=chosen.id if chosen is not None else None,
            runner_up=clean(runner_up.id) if runner_up is not None else None,
            preference=decision.preference,
            dispatcher=decision.dispatcher.as_dict() if decision.dispatcher is not None else None,
            decision=decision,
        )
        entry.whole = decision.features
        self.recent[decision.id] = entry
        self.running[decision.id] = entry
        while len(self.recent) > self.remembered:
            _, old = self.recent.popitem(last=False)
            self.running.pop(old.id, None)
            if old.result is not None and old.result.response_id:
                self.by_response.pop(old.result.response_id, None)

    def closed(self, decision_id: str, result: RequestResult) -> None:
        """The request is over: note how it went and queue the decision for the writer."""
        entry = self.recent.get(decision_id)
        if entry is None:
            return  # forgotten already (more requests in flight than the log remembers)
        self.running.pop(decision_id, None)
        entry.result = result
        if result.response_id:
            self.by_response[result.response_id] = decision_id
        model, features, entry.whole = entry.chosen(), entry.whole, None
        if model is not None and features is not None:
            entry.outcome = Outcome(
                decision_id=decision_id,
                model=model,
                features=_kept(features, self.settings.learner_prompt_chars),  # what a learner may keep
                ok=result.status == "ok",
                latency_ms=result.latency_ms,
                ttft_ms=result.ttft_ms,
                completion_tokens=result.completion_tokens,
            )
        try:
            self.closed_queue.put_nowait(entry)
        except asyncio.QueueFull:
            entry.explained()  # let go of the routing decision (and its whole prompt) now: no writer will
            entry.outcome = None
            self.dropped += 1
            if self.dropped % 100 == 1:
                log.warning("decision log full: %d decisions not written so far", self.dropped)

    # -- reading -----------------------------------------------------------------------------
    async def get(self, decision_id: str) -> dict[str, Any] | None:
        """The whole decision: features, every candidate's contributions and reasons, how the request went."""
        entry = self.recent.get(decision_id)
        if entry is not None:
            return _row_dict(entry.values())
        if not self._plausible(decision_id):
            return None
        async with self.database.session() as session:
            row = await session.get(RoutingDecisionRow, decision_id)
            return _row_dict(_of_row(row)) if row is not None else None

    async def find(
        self, *, decision_id: str | None = None, response_id: str | None = None, wait: float | None = None
    ) -> DecisionView | None:
        """A decision by its id or by the id of the response it produced. One that is in no replica's memory
        here and not in the database yet (another replica made it a moment ago) is waited for, up to
        `wait` seconds (`FIND_WAIT`); an id that cannot be a recent decision's is not."""
        ident = decision_id or response_id
        if not ident or not self._plausible(ident):
            return None
        if decision_id:
            entry = self.recent.get(decision_id)
        else:
            entry = self.recent.get(self.by_response.get(response_id or "", ""))
        if entry is not None:
            return _view(entry.values())
        limit = FIND_WAIT if wait is None else wait
        if decision_id and not self._young(decision_id):
            limit = 0.0
        deadline = time.monotonic() + limit
        delay = 0.05
        while True:
            found = await self._in_database(decision_id, response_id)
            if found is not None or time.monotonic() >= deadline:
                return found
            await asyncio.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.4)

    async def _in_database(self, decision_id: str | None, response_id: str | None) -> DecisionView | None:
        async with self.database.session() as session:
            if decision_id:
                row = await session.get(RoutingDecisionRow, decision_id)
            else:
                query = select(RoutingDecisionRow).where(RoutingDecisionRow.response_id == response_id).limit(1)
                row = (await session.execute(query)).scalar_one_or_none()
            return _view(_of_row(row)) if row is not None else None

    @staticmethod
    def _plausible(ident: str) -> bool:
        return len(ident) <= _ID_MAX and "\x00" not in ident

    @staticmethod
    def _young(decision_id: str) -> bool:
        match = _DECISION_ID.match(decision_id)
        if match is None:
            return False
        made = int(match[1], 16) / 1000
        return -60 <= time.time() - made <= RECENT_ID_AGE

    async def rate(
        self, decision: DecisionView, *, score: float, principal: str, comment: str | None, response_id: str | None
    ) -> int:
        """Store a user's rating (`score` in 0..1) of `decision`'s answer and show it to the learners at once;
        returns the feedback's id. A decision this replica remembers is written (or brought up to date) first,
        in the same transaction, so the rating never waits for the writer."""
        if decision.model is None:
            raise ValueError("a decision without a model cannot be rated")
        for attempt in (1, 2):
            try:
                ident = await self._store_rating(decision, score, principal, comment, response_id)
                break
            except IntegrityError:
                # the writer inserted the decision between our look-up and our insert: the second attempt merges
                if attempt == 2:
                    raise
        outcome = Outcome(decision_id=decision.id, model=decision.model, features=decision.features, rating=score)
        await self._learn(outcome)
        return ident

    async def _store_rating(
        self, decision: DecisionView, score: float, principal: str, comment: str | None, response_id: str | None
    ) -> int:
        entry = self.recent.get(decision.id)
        async with self.database.session() as session:
            if entry is not None:
                # Written or not, and maybe being written by the writer right now: merge is an upsert, and if
                # the writer's insert wins the race, the second attempt finds its row.
                await session.merge(RoutingDecisionRow(**entry.values()))
                await session.flush()
            row = FeedbackRow(
                decision_id=decision.id,
                response_id=clean(response_id or decision.response_id or decision.id, _ID_MAX),
                model=decision.model,
                rating=score,
                comment=clean(comment, 4000),
                principal=clean(principal, 200) or "",
            )
            session.add(row)
            await session.flush()
            ident = row.id
        if entry is not None:
            entry.written = True
            self.running.pop(decision.id, None)
        return ident

    async def ratings(self) -> list[Rating]:
        """Every rating stored (by any replica), with the category and start of the prompt it rates."""
        query = select(
            FeedbackRow.decision_id,
            FeedbackRow.model,
            FeedbackRow.rating,
            RoutingDecisionRow.features,
            RoutingDecisionRow.candidates,
        ).join(RoutingDecisionRow, FeedbackRow.decision_id == RoutingDecisionRow.id, isouter=True)
        async with self.database.session() as session:
            rows = (await session.execute(query)).all()
        found = []
        for decision_id, model, rating, features, candidates in rows:
            if model is None:
                continue
            features = features if isinstance(features, dict) else {}
            found.append(
                Rating(
                    decision_id=decision_id,
                    model=model,
                    name=_name_in(candidates, model) or model,
                    rating=float(rating),
                    category=str(features.get("category") or "general"),
                    text=str(features.get("text") or ""),
                )
            )
        return found

    async def ratings_count(self) -> int:
        """How many ratings are stored: a cheap way to know whether there are new ones."""
        async with self.database.session() as session:
            return (await session.execute(select(func.count(FeedbackRow.id)))).scalar() or 0

    # -- the writer ----------------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._write_forever(), name="routerd-decision-log")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._hold(self._drain(10**9), self._overdue(0.0))
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._flush()
        if self.held:
            log.warning("the gateway stops with %d decisions not written (the database is unavailable)", len(self.held))

    def _drain(self, limit: int = 500) -> list[_Entry]:
        batch = []
        while len(batch) < limit and not self.closed_queue.empty():
            batch.append(self.closed_queue.get_nowait())
        return batch

    def _overdue(self, age: float) -> list[_Entry]:
        """Requests running for longer than `age` seconds whose decision is not written yet."""
        now = time.monotonic()
        found = []
        for entry in self.running.values():
            if now - entry.opened_at < age:
                break  # in the order they were opened: the rest are younger
            found.append(entry)
        for entry in found:
            del self.running[entry.id]
        return found

    async def _write_forever(self) -> None:
        while True:
            first: list[_Entry] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(PENDING_AFTER):
                    first = [await self.closed_queue.get()]
            await self._learn_all(first)  # learners see an outcome at once, before any database work
            if first:
                await asyncio.sleep(0.05)  # let a burst gather into one transaction
            rest = self._drain()
            await self._learn_all(rest)
            self._hold([*first, *rest], self._overdue(PENDING_AFTER))
            if not self.held or time.monotonic() < self._retry_at:
                continue  # the database is down: the rows wait for the next attempt
            try:
                await self._flush()
            except Exception as exc:
                self._failed(exc)
            else:
                self._recovered()

    def _hold(self, closed: list[_Entry], pending: list[_Entry]) -> None:
        """Turn decisions into rows waiting for the database: a new row for a decision not written yet, an update
        for one written as pending before (or folded into its insert, when that still waits)."""
        for entry in [*pending, *closed]:
            values = entry.values()
            if not entry.written:
                entry.written = True
                self.held[entry.id] = (values, "insert")
            else:
                waiting = self.held.get(entry.id)
                self.held[entry.id] = (values, waiting[1] if waiting is not None else "update")
        bound = self.settings.outage_buffer
        if len(self.held) > bound:
            over = len(self.held) - bound
            for _ in range(over):
                self.held.popitem(last=False)
            self.dropped_held += over
            log.warning(
                "the database is unavailable and %d decisions wait for it (audit.outage_buffer): the oldest %d were "
                "dropped, %d so far",
                bound,
                over,
                self.dropped_held,
            )

    async def _flush(self) -> None:
        """Write every held row: one multi-row INSERT for the new rows, one UPDATE batch for rows written as pending
        before. When the database refuses a batch, its rows are written one by one and only the refused ones are
        dropped. An outage raises, the rows not written still held."""
        if not self.held:
            return
        inserts = [(ident, values) for ident, (values, kind) in self.held.items() if kind == "insert"]
        updates = [(ident, values) for ident, (values, kind) in self.held.items() if kind == "update"]
        try:
            if inserts:
                await self._insert([values for _, values in inserts])
                for ident, _ in inserts:
                    self.held.pop(ident, None)
            if updates:
                await self._update([values for _, values in updates])
                for ident, _ in updates:
                    self.held.pop(ident, None)
        except DBAPIError as exc:
            if is_outage(exc):
                raise
            for ident, (values, _) in list(self.held.items()):
                # one at a time: a row feedback wrote meanwhile is merged; a bad one dropped alone
                await self._one(values)
                self.held.pop(ident, None)

    def _failed(self, exc: Exception) -> None:
        """An attempt to write failed: an outage holds the rows and tries again later, doubling the wait up to
        `retry_max_seconds`; anything else loses the rows (and says so, without their values)."""
        now = time.monotonic()
        if not is_outage(exc):
            log.error("writing %d decisions failed (%s); they are lost", len(self.held), type(exc).__name__)
            self.held.clear()
            return
        if self.outage_since is None:
            self.outage_since = now
            log.warning(
                "the database is unavailable (%s): %d decisions are held and written when it is back",
                type(exc).__name__,
                len(self.held),
            )
        self._retry_delay = min(max(self._retry_delay * 2, 0.25), self.settings.retry_max_seconds)
        self._retry_at = now + self._retry_delay

    def _recovered(self) -> None:
        if self.outage_since is not None:
            log.warning(
                "the database is back after %.1f s; the decisions held meanwhile are written (%d dropped so far)",
                time.monotonic() - self.outage_since,
                self.dropped_held,
            )
        self.outage_since = None
        self._retry_delay = 0.0
        self._retry_at = 0.0

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        async with self.database.engine.begin() as connection:
            await connection.execute(insert(_TABLE), rows)

    async def _update(self, rows: list[dict[str, Any]]) -> None:
        changed = [c for c in _COLUMNS if c not in ("id", "created_at")]
        statement = update(_TABLE).where(_TABLE.c.id == bindparam("_id")).values({c: bindparam(c) for c in changed})
        params = [{"_id": values["id"], **{c: values[c] for c in changed}} for values in rows]
        async with self.database.engine.begin() as connection:
            await connection.execute(statement, params)

    async def _one(self, values: dict[str, Any]) -> None:
        try:
            async with self.database.session() as session:
                await session.merge(RoutingDecisionRow(**values))
        except DBAPIError as exc:
            if is_outage(exc):
                raise
            self.refused += 1
            log.error("the database refused decision %s (%s); it is not written", values["id"], type(exc).__name__)

    async def _learn_all(self, batch: list[_Entry]) -> None:
        for entry in batch:
            outcome, entry.outcome = entry.outcome, None
            if outcome is not None:
                await self._learn(outcome)

    async def _learn(self, outcome: Outcome) -> None:
        """Show `outcome` to every learner; one failing never stops the others."""
        for name, learner in list(self.learners.items()):
            try:
                await learner.learn(outcome)
            except Exception:
                log.exception("learner %s failed to learn", name)
