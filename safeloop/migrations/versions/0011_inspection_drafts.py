"""inspection drafts: a checklist's answers saved item by item while the inspector fills it in

Why: on a phone the list is filled over minutes, with photos, on a flaky connection; each item is
kept server-side as it is saved so a reload shows it. Drafts are no business state (the engine
never reads them, the trail records only the ``submit`` event that carries the results), so they
live in their own table, one row per task and item.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('inspection_draft',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('item', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('outcome', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=False),
    sa.Column('evidence', sa.JSON(), nullable=True),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['task_id'], ['inspection_task.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('task_id', 'item', name='uq_draft_task_item')
    )


def downgrade() -> None:
    op.drop_table('inspection_draft')
