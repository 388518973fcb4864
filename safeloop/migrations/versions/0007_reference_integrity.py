"""reference integrity: at most one open (not delisted) listing per hazard

Revision ID: 0007
Revises: 0005
Create Date: 2026-11-30 21:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

OPEN_LISTING = sa.text("state <> 'delisted'")


def upgrade() -> None:
    with op.batch_alter_table('listing', schema=None) as batch_op:
        batch_op.create_index('uq_listing_open_hazard', ['hazard_id'], unique=True,
                              postgresql_where=OPEN_LISTING, sqlite_where=OPEN_LISTING)


def downgrade() -> None:
    with op.batch_alter_table('listing', schema=None) as batch_op:
        batch_op.drop_index('uq_listing_open_hazard')
