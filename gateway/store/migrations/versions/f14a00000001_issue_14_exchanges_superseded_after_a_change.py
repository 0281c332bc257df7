"""issue 14: an inbox file that changed after it was staged, and the exchange that supersedes it

Revision ID: f14a00000001
Revises: e10f2a3b4c51
Create Date: 2026-12-02 06:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = 'f14a00000001'
down_revision = 'e10f2a3b4c51'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.add_column(sa.Column('left_changed', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('supersedes', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_exchange_supersedes', 'exchange', ['supersedes'], ['id'])
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.alter_column('left_changed', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('exchange', schema=None) as batch_op:
        batch_op.drop_constraint('fk_exchange_supersedes', type_='foreignkey')
        batch_op.drop_column('supersedes')
        batch_op.drop_column('left_changed')
