"""audit chain: hash version 2 columns, a chain id, a forward-only head, append-only checkpoints

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 21:40:00.000000
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

HEAD_REFUSED = "audit_head only moves forward to an existing audit_entry row"
CHECKPOINT_REFUSED = "audit_checkpoint is append-only"


def upgrade() -> None:
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.add_column(sa.Column('hash_version', sa.SmallInteger(), server_default='1',
                                      nullable=False))
        batch_op.add_column(sa.Column('recorded_at', sqlmodel.sql.sqltypes.AutoString(length=32),
                                      nullable=True))
        batch_op.add_column(sa.Column('channel', sqlmodel.sql.sqltypes.AutoString(length=16),
                                      nullable=True))
        batch_op.add_column(sa.Column('credential', sqlmodel.sql.sqltypes.AutoString(length=64),
                                      nullable=True))
        batch_op.add_column(sa.Column('simulated', sa.Boolean(), nullable=True))
    chain_id = str(uuid.uuid4())
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_id', sqlmodel.sql.sqltypes.AutoString(length=36),
                                      nullable=True))
    op.execute(f"UPDATE audit_head SET chain_id = '{chain_id}'")
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.alter_column('chain_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=36),
                              nullable=False)
    with op.batch_alter_table('audit_checkpoint', schema=None) as batch_op:
        batch_op.add_column(sa.Column('chain_id', sqlmodel.sql.sqltypes.AutoString(length=36),
                                      nullable=True))
        batch_op.add_column(sa.Column('file', sa.Text(), nullable=True))
    # checkpoints taken before this revision were taken of this database's chain
    op.execute(f"UPDATE audit_checkpoint SET chain_id = '{chain_id}'")
    with op.batch_alter_table('audit_checkpoint', schema=None) as batch_op:
        batch_op.alter_column('chain_id', existing_type=sqlmodel.sql.sqltypes.AutoString(length=36),
                              nullable=False)
    if op.get_bind().dialect.name == "sqlite":
        _sqlite_triggers()
    else:
        _postgresql_triggers()


# The head may stay as it is (a no-op write) or move to a later seq whose row exists with that
# hash; its id and chain id never change; there is one head row and it is never deleted.
_SQLITE_HEAD_REFUSED = (
    "NEW.id IS NOT OLD.id OR NEW.chain_id IS NOT OLD.chain_id OR NOT ("
    "(NEW.seq = OLD.seq AND NEW.hash IS OLD.hash) OR (NEW.seq > OLD.seq AND EXISTS ("
    "SELECT 1 FROM audit_entry WHERE audit_entry.seq = NEW.seq AND audit_entry.hash = NEW.hash)))"
)


def _sqlite_triggers() -> None:
    op.execute(f"CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head "
               f"WHEN {_SQLITE_HEAD_REFUSED} "
               f"BEGIN SELECT RAISE(ABORT, '{HEAD_REFUSED}: UPDATE refused'); END")
    op.execute("CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head "
               f"BEGIN SELECT RAISE(ABORT, '{HEAD_REFUSED}: DELETE refused'); END")
    op.execute("CREATE TRIGGER audit_head_single_row BEFORE INSERT ON audit_head "
               "WHEN EXISTS (SELECT 1 FROM audit_head) "
               f"BEGIN SELECT RAISE(ABORT, '{HEAD_REFUSED}: INSERT refused'); END")
    for action in ("UPDATE", "DELETE"):
        op.execute(f"CREATE TRIGGER audit_checkpoint_no_{action.lower()} BEFORE {action} "
                   f"ON audit_checkpoint "
                   f"BEGIN SELECT RAISE(ABORT, '{CHECKPOINT_REFUSED}: {action} refused'); END")


def _postgresql_triggers() -> None:
    op.execute(
        "CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        "IF TG_OP = 'UPDATE' AND NEW.id IS NOT DISTINCT FROM OLD.id "
        "AND NEW.chain_id IS NOT DISTINCT FROM OLD.chain_id AND ("
        "(NEW.seq = OLD.seq AND NEW.hash IS NOT DISTINCT FROM OLD.hash) OR (NEW.seq > OLD.seq "
        "AND EXISTS (SELECT 1 FROM audit_entry e WHERE e.seq = NEW.seq AND e.hash = NEW.hash))) "
        "THEN RETURN NEW; END IF; "
        "IF TG_OP = 'INSERT' AND NOT EXISTS (SELECT 1 FROM audit_head) THEN RETURN NEW; END IF; "
        f"RAISE EXCEPTION '{HEAD_REFUSED}: % refused', TG_OP; END $$"
    )
    op.execute("CREATE TRIGGER audit_head_forward_only BEFORE INSERT OR UPDATE OR DELETE "
               "ON audit_head FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only()")
    op.execute("CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head "
               "FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward_only()")
    op.execute(
        "CREATE FUNCTION audit_checkpoint_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"BEGIN RAISE EXCEPTION '{CHECKPOINT_REFUSED}: % refused', TG_OP; END $$"
    )
    op.execute("CREATE TRIGGER audit_checkpoint_no_change BEFORE UPDATE OR DELETE "
               "ON audit_checkpoint FOR EACH ROW EXECUTE FUNCTION audit_checkpoint_append_only()")
    op.execute("CREATE TRIGGER audit_checkpoint_no_truncate BEFORE TRUNCATE ON audit_checkpoint "
               "FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoint_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trigger in ("audit_head_forward_only", "audit_head_no_delete", "audit_head_single_row",
                        "audit_checkpoint_no_update", "audit_checkpoint_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_head_no_truncate ON audit_head")
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoint_no_change ON audit_checkpoint")
        op.execute("DROP TRIGGER IF EXISTS audit_checkpoint_no_truncate ON audit_checkpoint")
        op.execute("DROP FUNCTION IF EXISTS audit_head_forward_only()")
        op.execute("DROP FUNCTION IF EXISTS audit_checkpoint_append_only()")
    with op.batch_alter_table('audit_checkpoint', schema=None) as batch_op:
        batch_op.drop_column('file')
        batch_op.drop_column('chain_id')
    with op.batch_alter_table('audit_head', schema=None) as batch_op:
        batch_op.drop_column('chain_id')
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_column('simulated')
        batch_op.drop_column('credential')
        batch_op.drop_column('channel')
        batch_op.drop_column('recorded_at')
        batch_op.drop_column('hash_version')
