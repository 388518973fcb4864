"""Audit checkpoints: publish the chain's head (seq, hash) to a table, a file and the auditors.

Verification walks the chain from the start; a checkpoint adds an anchor outside the table, so
even a consistent rewrite of the whole trail (every hash recomputed) no longer matches what was
published. Every checkpoint names its chain (the id ``init`` gave it), so a file shared by several
databases is read for what it is: another chain's checkpoints are a warning, this chain's that no
longer match are a rewrite. An auditor's own anchors (``SEQ:HASH``, as the notification sent them)
catch what the database alone cannot: the rows after the last checkpoint deleted, or everything
inside the database rewritten, checkpoints and triggers included.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlmodel import Session

from core.errors import InvalidInput
from models.db import as_utc, utcnow
from models.tables import AUDIT_CHECKPOINT as CHECKPOINT
from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import OUTBOX
from states import audit

CHECKPOINT_FILE = "audit-checkpoints.jsonl"  # under the storage folder
_ANCHOR = re.compile(r"(\d{1,18}):([0-9a-fA-F]{64})")


@dataclass
class Checkpoint:
    seq: int
    hash: str
    taken_at: str
    flow_run_id: str | None = None
    chain_id: str | None = None  # None only in lines written before chains had ids

    def line(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False)


def take(session: Session, *, as_of: datetime | None = None, file: Path | None = None,
         flow_run_id: str | None = None) -> Checkpoint:
    """Record the current head in the table (with an auditors' notification) and the file.

    The file line is written before the commit, so a checkpoint row that says it went to a file
    did; a failed write rolls the row back.
    """
    moment = as_utc(as_of) or utcnow()
    written = str(file.resolve()) if file is not None else None
    try:
        conn = session.connection()
        seq, head = audit.lock_head(conn)
        point = Checkpoint(seq, head, audit.format_at(moment), flow_run_id, audit.chain_id(conn))
        conn.execute(insert(CHECKPOINT).values(**asdict(point), file=written))
        conn.execute(insert(OUTBOX).values(
            created_at=moment, audit_seq=seq, entity_type="audit", entity_id=0,
            event="checkpoint", recipient="role:auditor", template="audit.checkpoint",
            payload=point.line(), status="pending", attempts=0,
        ))
        if file is not None:
            file.parent.mkdir(parents=True, exist_ok=True)
            with file.open("a", encoding="utf-8") as handle:
                handle.write(point.line() + "\n")
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return point


def read_file(file: Path) -> list[Checkpoint]:
    points = []
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.strip():
            raw: dict[str, Any] = json.loads(line)
            points.append(Checkpoint(int(raw["seq"]), str(raw["hash"]), str(raw["taken_at"]),
                                     raw.get("flow_run_id"), raw.get("chain_id")))
    return points


def parse_anchor(text: str) -> tuple[int, str]:
    """``SEQ:HASH`` as an auditor holds it (e.g. from the checkpoint notification)."""
    match = _ANCHOR.fullmatch(text.strip())
    if match is None or int(match.group(1)) < 1:
        raise InvalidInput(f"锚点「{text}」格式不对：应为 序号:哈希，序号为正整数，哈希为 64 位"
                           "十六进制，例如 120:3f5a…（共 64 位）")
    return int(match.group(1)), match.group(2).lower()


@dataclass
class CheckpointReport:
    """What the published heads say about the chain: ``problems`` fail it (a rewrite, a missing
    file that was written to, an anchor not matched); ``warnings`` do not (another chain's
    checkpoints, an unconfigured file that does not exist)."""

    chain_id: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    checked: int = 0  # checkpoints and anchors of this chain that were compared
    # each checkpoint compared: (where it was published, seq, taken_at, agrees with the chain)
    compared: list[tuple[str, int, str, bool]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check(session: Session, file: Path | None = None,
          anchors: list[tuple[int, str]] | None = None,
          verified: audit.VerifyResult | None = None) -> CheckpointReport:
    """Compare every checkpoint (table and file) and anchor with the chain as it is now.

    ``verified`` (the chain's verify result) limits the anchors to the rows verify vouched for.
    """
    conn = session.connection()
    try:
        report = CheckpointReport(audit.chain_id(conn))
        rows = conn.execute(select(CHECKPOINT).order_by(CHECKPOINT.c.id)).mappings().all()
        for row in rows:
            point = Checkpoint(row["seq"], row["hash"], row["taken_at"], row["flow_run_id"],
                               row["chain_id"])
            if point.chain_id != report.chain_id:
                report.problems.append(
                    f"检查点表中 {point.taken_at} 的检查点属于另一条链（{point.chain_id}），"
                    f"而本库的链标识是 {report.chain_id}：链标识或检查点表被改动")
                continue
            _compare(conn, report, point, "检查点表中")
        if file is not None:
            _check_file(conn, report, file, [r["file"] for r in rows
                                             if r["chain_id"] == report.chain_id])
        for seq, digest in anchors or ():
            _check_anchor(conn, report, seq, digest, verified)
    finally:
        session.rollback()
    return report


def verify_checkpoints(session: Session, file: Path | None = None) -> list[str]:
    """Problems (zh-CN) where a published head no longer matches the chain; empty if none."""
    return check(session, file).problems


def _compare(conn: Connection, report: CheckpointReport, point: Checkpoint, where: str) -> None:
    if point.seq == 0:
        return
    report.checked += 1
    actual = conn.execute(select(AUDIT.c.hash).where(AUDIT.c.seq == point.seq)).scalar()
    report.compared.append((where, point.seq, point.taken_at, actual == point.hash))
    if actual != point.hash:
        report.problems.append(f"{where}{point.taken_at} 发布的检查点（第 {point.seq} 条，"
                               f"{point.hash[:16]}…）与当前审计链不符：链在此之前被改写")


def _check_file(conn: Connection, report: CheckpointReport, file: Path,
                written: list[str | None]) -> None:
    """The configured file and every other file this chain's checkpoints were written to: this
    chain's lines must match and other chains' are a warning; a missing file is a problem when
    this chain's checkpoints were written to it, else a warning."""
    configured = str(file.resolve())
    paths = [configured, *sorted({w for w in written if w and w != configured})]
    for path in paths:
        count = sum(1 for w in written if w == path)
        shown = file if path == configured else Path(path)
        if not shown.exists():
            if count:
                report.problems.append(f"检查点文件 {shown} 不存在，但本链有 {count} 个检查点"
                                       "写入过它：文件被删除或移走")
            else:
                elsewhere = "、".join(paths[1:])
                report.warnings.append(
                    f"检查点文件 {shown} 不存在（本链的检查点从未写入该文件"
                    + (f"，写入的是 {elsewhere}" if elsewhere else "") + "）")
            continue
        _check_lines(conn, report, shown)


def _check_lines(conn: Connection, report: CheckpointReport, file: Path) -> None:
    try:
        points = read_file(file)
    except (ValueError, KeyError, TypeError, OSError) as exc:
        report.problems.append(f"检查点文件 {file} 无法读取或解析（{exc}）：文件被改动")
        return
    others: dict[str, int] = {}
    for point in points:
        if point.chain_id is None:
            _compare(conn, report, point, f"检查点文件 {file} 中未注明所属链的（旧格式）")
        elif point.chain_id == report.chain_id:
            _compare(conn, report, point, f"检查点文件 {file} 中")
        else:
            others[point.chain_id] = others.get(point.chain_id, 0) + 1
    for other, count in sorted(others.items()):
        report.warnings.append(f"检查点文件 {file} 中有 {count} 个检查点属于另一条链（{other}），"
                               "与本链无关，未用于校验本链")


def _check_anchor(conn: Connection, report: CheckpointReport, seq: int, digest: str,
                  verified: audit.VerifyResult | None) -> None:
    """An auditor's (seq, hash): that row must exist in the verified chain with that hash."""
    report.checked += 1
    actual = conn.execute(select(AUDIT.c.hash).where(AUDIT.c.seq == seq)).scalar()
    label = f"锚点 {seq}:{digest[:16]}…"
    if actual is None:
        report.problems.append(f"{label}：审计链中没有第 {seq} 条，链在此之前或此处被截断"
                               "（末尾记录被删除）")
    elif actual != digest:
        report.problems.append(f"{label}：第 {seq} 条的哈希是 {actual[:16]}…，与锚点不符："
                               "链被改写")
    elif verified is not None and not verified.ok and seq > verified.count:
        report.problems.append(f"{label}：第 {seq} 条在校验失败处之后，无法由完整的链证明")
