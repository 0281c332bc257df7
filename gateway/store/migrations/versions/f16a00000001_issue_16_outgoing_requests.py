"""issue 16: the county's own assist-check requests (outgoingrequest); feedback sent for notices

Revision ID: f16a00000001
Revises: e10f2a3b4c51
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'f16a00000001'
down_revision = 'f14a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('outgoingrequest',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('to_division', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('urgency', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('categories', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sent_date', sa.Date(), nullable=False),
    sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('created_by', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('due_rule', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('due_provisional', sa.Boolean(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('request_xml', sa.Text(), nullable=False),
    sa.Column('send_attempts', sa.Integer(), nullable=False),
    sa.Column('send_error', sa.Text(), nullable=True),
    sa.Column('sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('exchange_id', sa.Integer(), nullable=True),
    sa.Column('answer_record_id', sa.Integer(), nullable=True),
    sa.Column('answer_result', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('answered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('answer_received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['answer_record_id'], ['record.id'], ),
    sa.ForeignKeyConstraint(['exchange_id'], ['exchange.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('outgoingrequest', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outgoingrequest_due_date'), ['due_date'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoingrequest_status'), ['status'], unique=False)
        batch_op.create_index('ix_outgoingrequest_status_due', ['status', 'due_date'], unique=False)
    with op.batch_alter_table('noticeitem', schema=None) as batch_op:
        batch_op.add_column(sa.Column('feedback_xml', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('feedback_sent_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('feedback_exchange_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('send_error', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('noticeitem', schema=None) as batch_op:
        batch_op.drop_column('send_error')
        batch_op.drop_column('feedback_exchange_id')
        batch_op.drop_column('feedback_sent_at')
        batch_op.drop_column('feedback_xml')
    with op.batch_alter_table('outgoingrequest', schema=None) as batch_op:
        batch_op.drop_index('ix_outgoingrequest_status_due')
        batch_op.drop_index(batch_op.f('ix_outgoingrequest_status'))
        batch_op.drop_index(batch_op.f('ix_outgoingrequest_due_date'))
    op.drop_table('outgoingrequest')
