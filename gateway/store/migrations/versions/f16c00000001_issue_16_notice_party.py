"""issue 16: the county's own notices for more cases: which party of a record (a marriage's husband or wife) a notice is about

Revision ID: f16c00000001
Revises: f16b00000001
Create Date: 2026-12-03 08:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'f16c00000001'
down_revision = 'f16b00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('outgoingnotice', schema=None) as batch_op:
        batch_op.add_column(sa.Column('party', sqlmodel.sql.sqltypes.AutoString(), nullable=False, server_default=''))
        batch_op.drop_constraint('uq_outgoingnotice_trigger', type_='unique')
        batch_op.create_unique_constraint('uq_outgoingnotice_trigger', ['record_id', 'category', 'party'])
    with op.batch_alter_table('outgoingnotice', schema=None) as batch_op:
        batch_op.alter_column('party', server_default=None)


def downgrade() -> None:
    with op.batch_alter_table('outgoingnotice', schema=None) as batch_op:
        batch_op.drop_constraint('uq_outgoingnotice_trigger', type_='unique')
        batch_op.create_unique_constraint('uq_outgoingnotice_trigger', ['record_id', 'category'])
        batch_op.drop_column('party')
