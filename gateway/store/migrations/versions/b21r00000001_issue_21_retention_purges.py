"""issue 21: retention purges (保存期限): what was purged, when, under which rule

Revision ID: b21r00000001
Revises: c21a00000001
Create Date: 2026-12-06 20:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'b21r00000001'
down_revision = 'c21a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'retentionpurge',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('exchange_id', sa.Integer(), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=True),
        sa.Column('leaf_index', sa.Integer(), nullable=True),
        sa.Column('leaf_hash', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column('contract', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('rule', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.Column('purged_on', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['exchange_id'], ['exchange.id']),
        sa.ForeignKeyConstraint(['record_id'], ['record.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_retentionpurge_exchange', 'retentionpurge', ['exchange_id', 'kind'])
    op.create_index('ix_retentionpurge_record', 'retentionpurge', ['record_id'])


def downgrade() -> None:
    op.drop_index('ix_retentionpurge_record', table_name='retentionpurge')
    op.drop_index('ix_retentionpurge_exchange', table_name='retentionpurge')
    op.drop_table('retentionpurge')
