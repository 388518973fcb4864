"""Audit checkpoints: publish the chain's head (seq, hash) to a table, a file and the auditors.

Verification walks the chain from the start; a checkpoint adds an anchor outside the table, so
even a consistent rewrite of the whole trail (every hash recomputed) no longer matches what was
published. ``verify_checkpoints`` compares each published head with the chain as it is now.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session

from models import AuditCheckpoint, AuditEntry, OutboxMessage
from models.db import as_utc, utcnow
from states import audit

CHECKPOINT_FILE = "audit-checkpoints.jsonl"  # under the storage folder
CHECKPOINT = AuditCheckpoint.__table__  # type: ignore[attr-defined]
AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]


@dataclass
class Checkpoint:
    seq: int
    hash: str
    taken_at: str
    flow_run_id: str | None = None


def take(session: Session, *, as_of: datetime | None = None, file: Path | None = None,
         flow_run_id: str | None = None) -> Checkpoint:
    """Record the current head in the table (with an auditors' notification) and the file."""
    moment = as_utc(as_of) or utcnow()
    try:
        conn = session.connection()
        seq, head = audit.lock_head(conn)
        point = Checkpoint(seq, head, audit.format_at(moment), flow_run_id)
        conn.execute(insert(CHECKPOINT).values(point.__dict__))
        conn.execute(insert(OUTBOX).values(
            created_at=moment, audit_seq=seq, entity_type="audit", entity_id=0,
            event="checkpoint", recipient="role:auditor", template="audit.checkpoint",
            payload=json.dumps(point.__dict__, ensure_ascii=False), status="pending", attempts=0,
        ))
        session.commit()
    except BaseException:
        session.rollback()
        raise
    if file is not None:
        file.parent.mkdir(parents=True, exist_ok=True)
        with file.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(point.__dict__, ensure_ascii=False) + "\n")
    return point


def read_file(file: Path) -> list[Checkpoint]:
    points = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw: dict[str, Any] = json.loads(line)
            points.append(Checkpoint(int(raw["seq"]), str(raw["hash"]), str(raw["taken_at"]),
                                     raw.get("flow_run_id")))
    return points


def verify_checkpoints(session: Session, file: Path | None = None) -> list[str]:
    """Problems (zh-CN) where a published head no longer matches the chain; empty if none."""
    conn = session.connection()
    points = [Checkpoint(r.seq, r.hash, r.taken_at, r.flow_run_id)
              for r in conn.execute(select(CHECKPOINT).order_by(CHECKPOINT.c.id))]
    if file is not None and file.exists():
        points += read_file(file)
    problems = []
    for point in points:
        if point.seq == 0:
            continue
        actual = conn.execute(select(AUDIT.c.hash).where(AUDIT.c.seq == point.seq)).scalar()
        if actual != point.hash:
            problems.append(f"{point.taken_at} 发布的检查点（第 {point.seq} 条，"
                            f"{point.hash[:16]}…）与当前审计链不符：链在此之前被改写")
    session.rollback()
    return problems
