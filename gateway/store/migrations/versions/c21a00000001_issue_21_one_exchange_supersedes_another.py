"""issue 21: at most one exchange supersedes another (reprocessing, 重新处理)

Revision ID: c21a00000001
Revises: a20b00000001
Create Date: 2026-12-04 18:20:00
"""

from __future__ import annotations

from alembic import op


revision = 'c21a00000001'
down_revision = 'a20b00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.create_index('uq_exchange_supersedes', ['supersedes'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.drop_index('uq_exchange_supersedes')
