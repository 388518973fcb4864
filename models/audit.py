"""The audit trail: append-only, hash-chained rows (the database refuses UPDATE and DELETE).

``at`` is the UTC time as the exact ISO text that was hashed, and ``data`` the exact canonical JSON
text that was hashed, so verification never depends on how a database round-trips timestamps or
JSON. ``AuditHead`` is the single row holding the chain's head; locking it serialises appends.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Index, Integer, SmallInteger, Text
from sqlmodel import Field, SQLModel


class AuditEntry(SQLModel, table=True):
    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entity", "entity_type", "entity_id", "seq"),)

    # INTEGER PRIMARY KEY on SQLite: seq is the rowid, so an append goes to the b-tree's end and
    # there is no second index to keep (issue 16: 0.60x with 500,000 older rows otherwise).
    seq: int = Field(primary_key=True, sa_type=BigInteger().with_variant(Integer(), "sqlite"),
                     sa_column_kwargs={"autoincrement": False})
    entity_type: str = Field(max_length=32)
    entity_id: int
    entity_code: str = Field(max_length=64)
    event: str = Field(max_length=32)
    from_state: str | None = Field(default=None, max_length=32)
    to_state: str | None = Field(default=None, max_length=32)
    actor: str = Field(max_length=64)
    actor_role: str = Field(max_length=32)
    at: str = Field(max_length=32)
    comment: str | None = Field(default=None, sa_type=Text)
    data: str = Field(default="{}", sa_type=Text)
    flow_run_id: str | None = Field(default=None, max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)  # no index: the chain and ``verify`` prove it, not a UNIQUE
    hash_version: int = Field(default=1, sa_type=SmallInteger,
                              sa_column_kwargs={"server_default": "1"})
    recorded_at: str | None = Field(default=None, max_length=32)
    channel: str | None = Field(default=None, max_length=16)  # cli, web, api, flow
    credential: str | None = Field(default=None, max_length=64)  # session/token id, never a secret
    simulated: bool | None = Field(default=None)  # business time allowed in the past (demo, import)


class AuditHead(SQLModel, table=True):
    __tablename__ = "audit_head"

    id: int = Field(default=1, primary_key=True)
    seq: int = Field(default=0, sa_type=BigInteger)
    hash: str = Field(max_length=64)
    chain_id: str = Field(max_length=36)  # a uuid given at init; checkpoints name it


class AuditCheckpoint(SQLModel, table=True):
    """A published (seq, head hash): a later verify proves nothing up to it was rewritten."""

    __tablename__ = "audit_checkpoint"

    id: int | None = Field(default=None, primary_key=True)
    seq: int = Field(sa_type=BigInteger)
    hash: str = Field(max_length=64)
    taken_at: str = Field(max_length=32)
    flow_run_id: str | None = Field(default=None, max_length=64)
    chain_id: str = Field(max_length=36)
    file: str | None = Field(default=None, sa_type=Text)  # where it was also written, if anywhere
