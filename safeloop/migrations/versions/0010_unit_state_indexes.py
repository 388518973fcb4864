"""unit/state indexes: each unit-scoped workflow table gets (unit_id, state, <its due column>)

Why: the inbox and read scoping select "rows of these units in these states, soonest due first,
and how many are overdue" (``unit_id IN (units below a grant) AND state IN (...)``). With only
(unit_id) and (state) indexes, SQLite walked every row in the states and filtered by unit; with
the due column in the index the inbox's ordering and counts read the index alone (bench/api.py,
a principal with 5,000 open hazards among 100,000, in-process: the inbox 56 ms -> 24 ms with
(unit_id, state), -> ~5 ms with the due column). (unit_id) alone is the new index's prefix, so
it is dropped rather than kept twice.

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

# table, its old single-column index (None: it had none), the new one, its columns
TABLES = (
    ("hazard", "ix_hazard_unit_id", "ix_hazard_unit_state", ["unit_id", "state", "deadline"]),
    ("inspection_task", "ix_inspection_task_unit_id", "ix_inspection_task_unit_state",
     ["unit_id", "state", "period_end"]),
    ("risk_point", "ix_risk_point_unit_id", "ix_risk_point_unit_state",
     ["unit_id", "state", "review_due"]),
    ("listing", "ix_listing_unit_id", "ix_listing_unit_state", ["unit_id", "state", "deadline"]),
    ("suspension_order", "ix_suspension_order_unit_id", "ix_suspension_order_unit_state",
     ["unit_id", "state"]),
    ("stat_report", None, "ix_stat_report_unit_state", ["unit_id", "state", "due_at"]),
)


def upgrade() -> None:
    for table, old, new, columns in TABLES:
        op.create_index(new, table, columns, unique=False)
        if old is not None:
            op.drop_index(old, table_name=table)


def downgrade() -> None:
    for table, old, new, _columns in TABLES:
        if old is not None:
            op.create_index(old, table, ["unit_id"], unique=False)
        op.drop_index(new, table_name=table)
