"""routing decisions: time to first token, the cached answer a request got, the skills it ran

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ttft_ms", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("cache", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("skill_calls", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("routing_decisions", schema=None) as batch_op:
        batch_op.drop_column("skill_calls")
        batch_op.drop_column("cache")
        batch_op.drop_column("ttft_ms")
