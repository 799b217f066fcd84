"""The schema. Alembic migrations (migrations/) build exactly this on SQLite and PostgreSQL;
a test compares the two."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, dt.datetime: DateTime(timezone=True)}


class CatalogModel(Base):
    """A model a backend serves (or served: `available` turns false when it vanishes)."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("backend", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    backend: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(400))
    parameters: Mapped[int | None] = mapped_column(BigInteger)
    context_window: Mapped[int | None] = mapped_column(Integer)
    capabilities: Mapped[dict[str, Any]] = mapped_column(default=dict)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    available: Mapped[bool] = mapped_column(default=True)
    first_seen: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_seen: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class ModelProfile(Base):
    """One profiling result for one model and category; rows are kept as history."""

    __tablename__ = "model_profiles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    suite_version: Mapped[str] = mapped_column(String(50))
    category: Mapped[str] = mapped_column(String(50))
    quality: Mapped[float | None] = mapped_column(Float)
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    tokens_per_second: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[int] = mapped_column(Integer, default=0)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    profiled_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now(), index=True)


class BenchmarkRecordRow(Base):
    """A public benchmark figure for a model, as one source published it."""

    __tablename__ = "benchmark_records"
    __table_args__ = (UniqueConstraint("source", "model", "benchmark"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(400), index=True)
    benchmark: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    fetched_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class RoutingDecisionRow(Base):
    """The audit log: one row per routing decision, with every scorer's contribution."""

    __tablename__ = "routing_decisions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now(), index=True)
    principal: Mapped[str] = mapped_column(String(200))
    tenant: Mapped[str] = mapped_column(String(200), default="default")
    requested_model: Mapped[str | None] = mapped_column(String(400))
    chosen_model: Mapped[str | None] = mapped_column(String(400), index=True)
    runner_up: Mapped[str | None] = mapped_column(String(400))
    features: Mapped[dict[str, Any]] = mapped_column(default=dict)
    candidates: Mapped[list[Any]] = mapped_column(default=list)
    status: Mapped[str] = mapped_column(String(50), default="pending")
    latency_ms: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    response_id: Mapped[str | None] = mapped_column(String(200), index=True)
    quality_preference: Mapped[float | None] = mapped_column(Float)
    dispatcher: Mapped[dict[str, Any] | None] = mapped_column()  # LLM dispatcher mode: what the model chose
    ttft_ms: Mapped[float | None] = mapped_column(Float)
    cache: Mapped[dict[str, Any] | None] = mapped_column()  # the cached answer that served the request
    skill_calls: Mapped[list[Any] | None] = mapped_column()  # the skills the gateway ran for it, in order


class FeedbackRow(Base):
    """A user's rating of one response."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    decision_id: Mapped[str | None] = mapped_column(ForeignKey("routing_decisions.id", ondelete="SET NULL"), index=True)
    response_id: Mapped[str] = mapped_column(String(200), index=True)
    model: Mapped[str | None] = mapped_column(String(400))
    rating: Mapped[float] = mapped_column(Float)
    comment: Mapped[str | None] = mapped_column(Text)
    principal: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())


class ApiKeyRow(Base):
    """An API key: only its SHA-256 hash and a short public prefix are stored, never the key."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(32), index=True)
    key_hash: Mapped[str] = mapped_column(String(128), unique=True)
    tenant: Mapped[str] = mapped_column(String(200), default="default")
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow, server_default=func.now())
    last_used_at: Mapped[dt.datetime | None] = mapped_column()
    revoked_at: Mapped[dt.datetime | None] = mapped_column()


class SyncStatusRow(Base):
    """The last run of each background sync (benchmark providers, discovery, ...)."""

    __tablename__ = "sync_status"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    started_at: Mapped[dt.datetime | None] = mapped_column()
    finished_at: Mapped[dt.datetime | None] = mapped_column()
    ok: Mapped[bool] = mapped_column(default=False)
    records: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
