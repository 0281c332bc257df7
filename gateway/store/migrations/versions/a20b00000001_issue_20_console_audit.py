"""issue 20: the console's audit log (consoleaudit, 控制台审计)

On SQLite the entries go to a database file of their own (gateway/store/console_audit.py);
this table of the main file is made so both backends have one schema, and stays empty there.

Revision ID: a20b00000001
Revises: e20a00000001
Create Date: 2026-12-04 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'a20b00000001'
down_revision = 'e20a00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('consoleaudit',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.Column('action', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('user', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('department', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('route', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('subjects', sa.Text(), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_consoleaudit_action'), 'consoleaudit', ['action'], unique=False)
    op.create_index(op.f('ix_consoleaudit_at'), 'consoleaudit', ['at'], unique=False)
    op.create_index(op.f('ix_consoleaudit_department'), 'consoleaudit', ['department'], unique=False)
    op.create_index(op.f('ix_consoleaudit_user'), 'consoleaudit', ['user'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_consoleaudit_user'), table_name='consoleaudit')
    op.drop_index(op.f('ix_consoleaudit_department'), table_name='consoleaudit')
    op.drop_index(op.f('ix_consoleaudit_at'), table_name='consoleaudit')
    op.drop_index(op.f('ix_consoleaudit_action'), table_name='consoleaudit')
    op.drop_table('consoleaudit')
