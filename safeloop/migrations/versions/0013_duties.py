"""duties: recurring duties (履职任务) per kind, unit and period (issue 15)

Why: meetings, duty days, daily risk commitments, drills, major-hazard-source checks and plan
evaluations are tracked duties like the statistics report: created set-wise per kind and period,
unique per (kind, unit, period) so reruns create nothing twice; (unit_id, state, due_at) serves
the inbox and read scoping like the other unit-scoped tables (0010), (state, due_at) the sweep.

Revision ID: 0013_duties
Revises: 0010
Create Date: 2026-12-01 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0013_duties'
down_revision = '0012_scale_lean'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'duty',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('code', sqlmodel.sql.sqltypes.AutoString(length=160), nullable=False),
        sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column('enterprise_id', sa.Integer(), nullable=False),
        sa.Column('unit_id', sa.Integer(), nullable=False),
        sa.Column('period_key', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column('period_end', sa.DateTime(timezone=True), nullable=False),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('role', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('evidence_required', sa.Boolean(), nullable=False),
        sa.Column('state', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('escalation_level', sa.Integer(), nullable=False),
        sa.Column('reminded_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('done_by_id', sa.Integer(), nullable=True),
        sa.Column('late', sa.Boolean(), nullable=False),
        sa.Column('missed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('batch', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['done_by_id'], ['person.id'], ),
        sa.ForeignKeyConstraint(['enterprise_id'], ['enterprise.id'], ),
        sa.ForeignKeyConstraint(['unit_id'], ['unit.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('code'),
        sa.UniqueConstraint('kind', 'unit_id', 'period_key', name='uq_duty'),
    )
    with op.batch_alter_table('duty', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_duty_batch'), ['batch'], unique=False)
        batch_op.create_index(batch_op.f('ix_duty_enterprise_id'), ['enterprise_id'], unique=False)
        batch_op.create_index('ix_duty_unit_state', ['unit_id', 'state', 'due_at'], unique=False)
        batch_op.create_index('ix_duty_state_due', ['state', 'due_at'], unique=False)


def downgrade() -> None:
    op.drop_table('duty')
