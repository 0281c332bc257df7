"""issue 16: the county's own notices (outgoingnotice, 通报 TBXX)

Revision ID: f16b00000001
Revises: f18a00000001
Create Date: 2026-12-02 07:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'f16b00000001'
down_revision = 'f18a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outgoingnotice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=False),
    sa.Column('category', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('to_division', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('feedback_required', sa.Boolean(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('due_rule', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('due_provisional', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('notice_xml', sa.Text(), nullable=True),
    sa.Column('send_attempts', sa.Integer(), nullable=False),
    sa.Column('send_error', sa.Text(), nullable=True),
    sa.Column('sent_date', sa.Date(), nullable=True),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('sent_by', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('exchange_id', sa.Integer(), nullable=True),
    sa.Column('answer_record_id', sa.Integer(), nullable=True),
    sa.Column('answered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['answer_record_id'], ['record.id'], ),
    sa.ForeignKeyConstraint(['exchange_id'], ['exchange.id'], ),
    sa.ForeignKeyConstraint(['record_id'], ['record.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id'),
    sa.UniqueConstraint('record_id', 'category', name='uq_outgoingnotice_trigger')
    )
    with op.batch_alter_table('outgoingnotice', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outgoingnotice_due_date'), ['due_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoingnotice_status'), ['status'], unique=False)
        batch_op.create_index('ix_outgoingnotice_status_due', ['status', 'due_date'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('outgoingnotice', schema=None) as batch_op:
        batch_op.drop_index('ix_outgoingnotice_status_due')
        batch_op.drop_index(batch_op.f('ix_outgoingnotice_status'))
        batch_op.drop_index(batch_op.f('ix_outgoingnotice_due_date'))
    op.drop_table('outgoingnotice')
