"""notifications: delivery records, outbox leases and digests, people's own channels

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('notification_delivery',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('outbox_id', sa.Integer(), nullable=False),
    sa.Column('covers', sa.Text(), nullable=True),
    sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('scheme', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('first_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('notification_delivery', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_notification_delivery_outbox_id'), ['outbox_id'], unique=False)

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column('leased_until', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('digest_of', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_outbox_digest_of'), ['digest_of'], unique=False)
        # the dispatcher's claim: pending rows that are due, oldest first
        batch_op.create_index('ix_outbox_due', ['status', 'next_attempt_at'], unique=False)

    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channels', sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('channels')

    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_due')
        batch_op.drop_index(batch_op.f('ix_outbox_digest_of'))
        batch_op.drop_column('digest_of')
        batch_op.drop_column('sent_at')
        batch_op.drop_column('leased_until')
        batch_op.drop_column('lease_owner')

    with op.batch_alter_table('notification_delivery', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notification_delivery_outbox_id'))

    op.drop_table('notification_delivery')
