"""initial schema

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-25 20:11:06.047644
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=128), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_api_keys_prefix"), ["prefix"], unique=False)

    op.create_table(
        "benchmark_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=400), nullable=False),
        sa.Column("benchmark", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_benchmark_records")),
        sa.UniqueConstraint(
            "source", "model", "benchmark", name=op.f("uq_benchmark_records_source_model_benchmark")
        ),
    )
    with op.batch_alter_table("benchmark_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_benchmark_records_model"), ["model"], unique=False)

    op.create_table(
        "models",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("backend", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=400), nullable=False),
        sa.Column("parameters", sa.BigInteger(), nullable=True),
        sa.Column("context_window", sa.Integer(), nullable=True),
        sa.Column("capabilities", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_models")),
        sa.UniqueConstraint("backend", "name", name=op.f("uq_models_backend_name")),
    )
    op.create_table(
        "routing_decisions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=False),
        sa.Column("tenant", sa.String(length=200), nullable=False),
        sa.Column("requested_model", sa.String(length=400), nullable=True),
        sa.Column("chosen_model", sa.String(length=400), nullable=True),
        sa.Column("runner_up", sa.String(length=400), nullable=True),
        sa.Column("features", sa.JSON(), nullable=False),
        sa.Column("candidates", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=50), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_decisions")),
    )
    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_routing_decisions_chosen_model"), ["chosen_model"], unique=False)
        batch_op.create_index(batch_op.f("ix_routing_decisions_created_at"), ["created_at"], unique=False)

    op.create_table(
        "sync_status",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_sync_status")),
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("decision_id", sa.String(length=64), nullable=True),
        sa.Column("response_id", sa.String(length=200), nullable=False),
        sa.Column("model", sa.String(length=400), nullable=True),
        sa.Column("rating", sa.Float(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("principal", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["routing_decisions.id"],
            name=op.f("fk_feedback_decision_id_routing_decisions"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_feedback_decision_id"), ["decision_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_response_id"), ["response_id"], unique=False)

    op.create_table(
        "model_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("suite_version", sa.String(length=50), nullable=False),
        sa.Column("category", sa.String(length=50), nullable=False),
        sa.Column("quality", sa.Float(), nullable=True),
        sa.Column("ttft_ms", sa.Float(), nullable=True),
        sa.Column("tokens_per_second", sa.Float(), nullable=True),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("profiled_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_profiles_model_id_models"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_profiles")),
    )
    with op.batch_alter_table("model_profiles", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_model_profiles_model_id"), ["model_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_model_profiles_profiled_at"), ["profiled_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("model_profiles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_profiles_profiled_at"))
        batch_op.drop_index(batch_op.f("ix_model_profiles_model_id"))

    op.drop_table("model_profiles")
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_feedback_response_id"))
        batch_op.drop_index(batch_op.f("ix_feedback_decision_id"))

    op.drop_table("feedback")
    op.drop_table("sync_status")
    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routing_decisions_created_at"))
        batch_op.drop_index(batch_op.f("ix_routing_decisions_chosen_model"))

    op.drop_table("routing_decisions")
    op.drop_table("models")
    with op.batch_alter_table("benchmark_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_benchmark_records_model"))

    op.drop_table("benchmark_records")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_prefix"))

    op.drop_table("api_keys")
