"""issue 20: sign-in back-off by client and name (signinbackoff, 登录退避)

Revision ID: e20a00000001
Revises: d19b00000001
Create Date: 2026-12-03 14:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision = 'e20a00000001'
down_revision = 'd19b00000001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signinbackoff',
    sa.Column('client', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('name_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('strikes', sa.Integer(), nullable=False),
    sa.Column('blocked_until', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
    sa.Column('last_failure_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('client', 'name_sha256')
    )
    op.create_index(op.f('ix_signinbackoff_name_sha256'), 'signinbackoff', ['name_sha256'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_signinbackoff_name_sha256'), table_name='signinbackoff')
    op.drop_table('signinbackoff')
