"""lean schema: seq is the audit table's rowid, no UNIQUE on the audit hash, no prefix-duplicate indexes

Why (issue 16, bench/fire_batch with ``--prior-audit``): with a long trail every audit INSERT paid
for a random insert into the UNIQUE(hash) index and a second b-tree for a ``BIGINT PRIMARY KEY``
that was not SQLite's rowid. The chain and ``safeloop audit verify`` already prove the hashes; the
seq order is the table's own order. On SQLite the table is rebuilt with ``seq INTEGER PRIMARY KEY``
(the rowid alias) and the rows copied in seq order; its append-only triggers and the head's
forward-only trigger (which reads it) are created again. On PostgreSQL only the unique constraint
goes (seq already is the bigint primary key).

An index whose columns are the leading columns of another index or unique key on the same table
only costs writes (the longer one answers the same lookups): the single-column ``state`` indexes of
hazard, inspection_task and risk_point (state changes on most events), outbox ``status``, and the
cold tables' few of the same kind are dropped.

The overdue sweep gets a partial index of the hazards it may still escalate (below the top level,
by state and deadline): a backlog of hazards already at the top level no longer lengthens its scan.

Revision ID: 0012_scale_lean
Revises: 0011
Create Date: 2026-12-01 05:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0012_scale_lean'
down_revision = '0011'
branch_labels = None
depends_on = None

# (table, index, columns): each the prefix of a longer index or unique key on its table
PREFIX_INDEXES = (
    ("hazard", "ix_hazard_state", ["state"]),
    ("inspection_task", "ix_inspection_task_state", ["state"]),
    ("risk_point", "ix_risk_point_state", ["state"]),
    ("outbox", "ix_outbox_status", ["status"]),
    ("checklist_template", "ix_checklist_template_key", ["key"]),
    ("checklist_item", "ix_checklist_item_template_id", ["template_id"]),
    ("annual_plan", "ix_annual_plan_jurisdiction_id", ["jurisdiction_id"]),
    ("site_area", "ix_site_area_enterprise_id", ["enterprise_id"]),
    ("role_grant", "ix_role_grant_person_id", ["person_id"]),
    ("stat_report", "ix_stat_report_enterprise_id", ["enterprise_id"]),
)

AUDIT_COLUMNS = (
    "seq", "entity_type", "entity_id", "entity_code", "event", "from_state", "to_state", "actor",
    "actor_role", "at", "comment", "data", "flow_run_id", "prev_hash", "hash", "hash_version",
    "recorded_at", "channel", "credential", "simulated",
)

# as models.hazard.OVERDUE_CANDIDATES (a migration keeps its own copy of what it created)
OVERDUE_CANDIDATES = "escalation_level < 3"

HEAD_REFUSED = "audit_head only moves forward to an existing audit_entry row"  # as in 0006
_SQLITE_HEAD_REFUSED = (
    "NEW.id IS NOT OLD.id OR NEW.chain_id IS NOT OLD.chain_id OR NOT ("
    "(NEW.seq = OLD.seq AND NEW.hash IS OLD.hash) OR (NEW.seq > OLD.seq AND EXISTS ("
    "SELECT 1 FROM audit_entry WHERE audit_entry.seq = NEW.seq AND audit_entry.hash = NEW.hash)))"
)


def _audit_columns(seq_type: sa.types.TypeEngine) -> list[sa.Column]:  # type: ignore[type-arg]
    auto = sqlmodel.sql.sqltypes.AutoString
    return [
        sa.Column('seq', seq_type, autoincrement=False, nullable=False),
        sa.Column('entity_type', auto(length=32), nullable=False),
        sa.Column('entity_id', sa.Integer(), nullable=False),
        sa.Column('entity_code', auto(length=64), nullable=False),
        sa.Column('event', auto(length=32), nullable=False),
        sa.Column('from_state', auto(length=32), nullable=True),
        sa.Column('to_state', auto(length=32), nullable=True),
        sa.Column('actor', auto(length=64), nullable=False),
        sa.Column('actor_role', auto(length=32), nullable=False),
        sa.Column('at', auto(length=32), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('flow_run_id', auto(length=64), nullable=True),
        sa.Column('prev_hash', auto(length=64), nullable=False),
        sa.Column('hash', auto(length=64), nullable=False),
        sa.Column('hash_version', sa.SmallInteger(), server_default='1', nullable=False),
        sa.Column('recorded_at', auto(length=32), nullable=True),
        sa.Column('channel', auto(length=16), nullable=True),
        sa.Column('credential', auto(length=64), nullable=True),
        sa.Column('simulated', sa.Boolean(), nullable=True),
    ]


def _rebuild_sqlite_audit(seq_type: sa.types.TypeEngine, unique_hash: bool) -> None:  # type: ignore[type-arg]
    """Copy audit_entry into a table of the new shape, in seq order, and put it in its place."""
    op.execute("DROP TRIGGER IF EXISTS audit_head_forward_only")  # it reads audit_entry
    constraints: list[sa.Constraint] = [sa.PrimaryKeyConstraint('seq')]
    if unique_hash:
        constraints.append(sa.UniqueConstraint('hash'))
    op.create_table('audit_entry_rebuilt', *_audit_columns(seq_type), *constraints)
    columns = ", ".join(AUDIT_COLUMNS)
    op.execute(f"INSERT INTO audit_entry_rebuilt ({columns}) "
               f"SELECT {columns} FROM audit_entry ORDER BY seq")
    op.drop_table('audit_entry')  # its index and triggers go with it (DROP fires no trigger)
    op.rename_table('audit_entry_rebuilt', 'audit_entry')
    op.create_index('ix_audit_entity', 'audit_entry', ['entity_type', 'entity_id', 'seq'],
                    unique=False)
    for action in ("UPDATE", "DELETE"):  # as in 0001
        op.execute(
            f"CREATE TRIGGER audit_entry_no_{action.lower()} BEFORE {action} ON audit_entry "
            f"BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only: {action} refused'); END"
        )
    op.execute(f"CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head "
               f"WHEN {_SQLITE_HEAD_REFUSED} "
               f"BEGIN SELECT RAISE(ABORT, '{HEAD_REFUSED}: UPDATE refused'); END")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        _rebuild_sqlite_audit(sa.Integer(), unique_hash=False)
    else:
        for constraint in sa.inspect(bind).get_unique_constraints('audit_entry'):
            if constraint["column_names"] == ["hash"]:
                op.drop_constraint(constraint["name"], 'audit_entry', type_='unique')
    for table, index, _columns in PREFIX_INDEXES:
        op.drop_index(index, table_name=table)
    op.create_index('ix_hazard_overdue', 'hazard', ['state', 'deadline'], unique=False,
                    sqlite_where=sa.text(OVERDUE_CANDIDATES),
                    postgresql_where=sa.text(OVERDUE_CANDIDATES))


def downgrade() -> None:
    op.drop_index('ix_hazard_overdue', table_name='hazard')
    for table, index, columns in PREFIX_INDEXES:
        op.create_index(index, table, columns, unique=False)
    if op.get_bind().dialect.name == "sqlite":
        _rebuild_sqlite_audit(sa.BigInteger(), unique_hash=True)
    else:
        op.create_unique_constraint('audit_entry_hash_key', 'audit_entry', ['hash'])
