"""issue 22: the population office's mailbox (mail messages and their attachments)

Revision ID: d22m00000001
Revises: b21r00000001
Create Date: 2026-12-06 20:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'd22m00000001'
down_revision = 'b21r00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('mailmessage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('subject', sa.Text(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('replied_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id', name='uq_mailmessage_message_id')
    )
    with op.batch_alter_table('mailmessage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mailmessage_status'), ['status'], unique=False)

    op.create_table('mailattachment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('exchange_id', sa.Integer(), nullable=True),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.ForeignKeyConstraint(['exchange_id'], ['exchange.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('message_id', 'position', 'sha256', name='uq_mailattachment')
    )
    with op.batch_alter_table('mailattachment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mailattachment_message_id'), ['message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('mailattachment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mailattachment_message_id'))
    op.drop_table('mailattachment')
    with op.batch_alter_table('mailmessage', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mailmessage_status'))
    op.drop_table('mailmessage')
