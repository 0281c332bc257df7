"""issue 17: reconciliation items as obligations (reconciliationitem, 补报核对)

Revision ID: f17b00000001
Revises: f16c00000001
Create Date: 2026-12-03 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'f17b00000001'
down_revision = 'f16c00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('reconciliationitem',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('subject_key', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('event_date', sa.Date(), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('owed_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('first_seen_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['record.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('rule', 'subject_key', name='uq_reconciliation_item')
    )


def downgrade() -> None:
    op.drop_table('reconciliationitem')
