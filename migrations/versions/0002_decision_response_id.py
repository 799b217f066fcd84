"""routing decisions: the response id (feedback names it) and the quality preference used

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_id", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("quality_preference", sa.Float(), nullable=True))
        batch_op.create_index(batch_op.f("ix_routing_decisions_response_id"), ["response_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_routing_decisions_response_id"))
        batch_op.drop_column("quality_preference")
        batch_op.drop_column("response_id")
