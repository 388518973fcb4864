"""unit/state indexes: each unit-scoped workflow table's (unit_id) index becomes (unit_id, state)

Why: the inbox and read scoping select "rows of these units in these states" (``unit_id IN
(units below a grant) AND state IN (...)``). With only (unit_id) and (state) indexes, SQLite
walked every row in the states and filtered by unit (bench/api.py: the inbox of a principal with
5,000 open hazards among 100,000 took 56 ms, 24 ms with this index). (unit_id) alone is the new
index's prefix, so it is dropped rather than kept twice.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 02:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# table, its old single-column index, the new composite one
TABLES = (
    ("hazard", "ix_hazard_unit_id", "ix_hazard_unit_state"),
    ("inspection_task", "ix_inspection_task_unit_id", "ix_inspection_task_unit_state"),
    ("risk_point", "ix_risk_point_unit_id", "ix_risk_point_unit_state"),
    ("listing", "ix_listing_unit_id", "ix_listing_unit_state"),
    ("suspension_order", "ix_suspension_order_unit_id", "ix_suspension_order_unit_state"),
)


def upgrade() -> None:
    for table, old, new in TABLES:
        op.create_index(new, table, ["unit_id", "state"], unique=False)
        op.drop_index(old, table_name=table)


def downgrade() -> None:
    for table, old, new in TABLES:
        op.create_index(old, table, ["unit_id"], unique=False)
        op.drop_index(new, table_name=table)
