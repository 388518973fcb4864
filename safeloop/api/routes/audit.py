"""Audit endpoints for auditors: filtered query, streamed export, chain verification.

Only people holding the auditor role may call them (403 otherwise), and they read the rows their
scope covers (``Scope.audit_where``). Export streams in seq order in short transactions of
``BATCH`` rows, so a long export never holds the database; it stops at the head it saw first.
Verification is the CLI's: ``states.audit.verify`` then the checkpoint comparison
(``states.jobs.checkpoint.check``) against the table and the checkpoint file.
"""

# No ``from __future__ import annotations``: the handlers' annotations use values of mount().
import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Engine

from core.settings import Settings
from models.enums import Role
from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import ROLE_GRANT
from safeloop.api import paging
from safeloop.api.deps import Caller, CurrentPrincipal, DbSession, Visibility
from safeloop.api.errors import ApiError
from safeloop.api.jsonout import answer, loads_data
from safeloop.api.queries import stamp
from safeloop.api.routes import Prefixed
from states import audit as chain
from states.audit import HASHED_FIELDS, V2_FIELDS, format_at
from states.jobs import checkpoint
from states.jobs.checkpoint import CHECKPOINT_FILE

# The CLI's export columns, in its order (version 1's first), so both exports are one format.
EXPORT_FIELDS = (*HASHED_FIELDS, "hash", "hash_version", *V2_FIELDS)
BATCH = 2_000
AUDITORS_ONLY = "仅审计人员可以查询、导出和校验审计日志"


def _require_auditor(session: Any, caller: Caller) -> None:
    require_auditor(session, caller.person_id)


def require_auditor(session: Any, person_id: int) -> None:
    """403 unless the person holds the auditor role somewhere (the pages call it too)."""
    held = session.connection().execute(
        select(func.count()).select_from(ROLE_GRANT).where(
            ROLE_GRANT.c.person_id == person_id,
            ROLE_GRANT.c.role == Role.auditor.value)).scalar()
    if not held:
        raise ApiError(403, "permission_denied", AUDITORS_ONLY)


def filters(entity: str | None, entity_type: str | None, person: str | None, event: str | None,
             since: datetime | None, until: datetime | None,
             scope: ColumnElement[bool] | None) -> list[ColumnElement[bool]]:
    found: list[ColumnElement[bool]] = []
    if entity is not None:
        found.append(AUDIT.c.entity_code == entity)
    if entity_type is not None:
        found.append(AUDIT.c.entity_type == entity_type)
    if person is not None:
        found.append(AUDIT.c.actor == person)
    if event is not None:
        found.append(AUDIT.c.event == event)
    if since is not None:
        found.append(AUDIT.c.at >= format_at(_aware(since, "since")))
    if until is not None:
        found.append(AUDIT.c.at < format_at(_aware(until, "until")))
    if scope is not None:
        found.append(scope)
    return found


def _aware(moment: datetime, field: str) -> datetime:
    if moment.tzinfo is None:
        raise ApiError(422, "invalid_input", f"{field} 须带时区偏移，如 2026-11-02T10:00:00+08:00",
                       field=field)
    return moment


def _row_json(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["at"], out["recorded_at"] = stamp(out.get("at")), stamp(out.get("recorded_at"))
    out["data"] = loads_data(out.get("data"))
    return out


Text = Annotated[str | None, Query(max_length=200)]
Since = Annotated[datetime | None, Query(description="起始时间（含），带时区偏移")]
Until = Annotated[datetime | None, Query(description="截止时间（不含），带时区偏移")]


def mount(router: Prefixed, settings: Settings) -> None:
    def audit_query(
        caller: CurrentPrincipal, session: DbSession, scope: Visibility,
        entity: Annotated[str | None, Query(max_length=64, description="实体编号")] = None,
        entity_type: Annotated[str | None, Query(max_length=64, description="实体类型")] = None,
        person: Annotated[str | None, Query(max_length=64, description="操作人编号")] = None,
        event: Annotated[str | None, Query(max_length=64, description="操作名")] = None,
        since: Since = None, until: Until = None,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
        limit: Annotated[int, Query(ge=1, le=settings.api_page_max)] = settings.api_page_size,
    ) -> JSONResponse:
        _require_auditor(session, caller)
        where = filters(entity, entity_type, person, event, since, until, scope.audit_where(AUDIT))
        return answer(query_page(session, where, cursor, limit))

    def audit_export(
        request: Request, caller: CurrentPrincipal, session: DbSession, scope: Visibility,
        format: Annotated[Literal["jsonl", "csv"], Query(description="jsonl 或 csv")] = "jsonl",
        entity: Text = None, person: Text = None, event: Text = None,
        since: Since = None, until: Until = None,
    ) -> StreamingResponse:
        _require_auditor(session, caller)
        where = filters(entity, None, person, event, since, until, scope.audit_where(AUDIT))
        return export_response(request.app.state.read_engine, session, where, format)

    def audit_verify(caller: CurrentPrincipal, session: DbSession,
                     scope: Visibility) -> dict[str, Any]:
        _require_auditor(session, caller)
        verified, _ = verify_with_checkpoints(session, settings.storage_dir)
        return verified

    tags = ["审计"]
    router.add_api_route("/audit", audit_query, methods=["GET"], tags=tags, operation_id="audit_query",
                         response_model=dict[str, Any],
                         summary="查询审计记录（按实体、人员、操作、时间段；游标分页）")
    router.add_api_route("/audit/export", audit_export, methods=["GET"], tags=tags,
                         operation_id="audit_export", summary="导出审计记录（jsonl 或 csv，流式）",
                         response_class=StreamingResponse)
    router.add_api_route("/audit/verify", audit_verify, methods=["GET"], tags=tags,
                         operation_id="audit_verify", summary="校验哈希链并对照检查点")


def query_page(session: Any, where: list[ColumnElement[bool]], cursor: str | None,
               limit: int) -> dict[str, Any]:
    """One page of audit rows matching ``where`` after ``cursor``, in seq order."""
    where = list(where)
    if cursor:
        _, last = paging.decode(cursor, "seq")
        where.append(AUDIT.c.seq > last)
    rows = session.connection().execute(
        select(*(AUDIT.c[f] for f in EXPORT_FIELDS)).where(*where).order_by(AUDIT.c.seq)
        .limit(limit + 1)).mappings().all()
    items = [_row_json(r) for r in rows[:limit]]
    more = len(rows) > limit
    return {"items": items, "limit": limit,
            "next_cursor": paging.encode("seq", None, items[-1]["seq"]) if more else None}


def export_response(read_engine: Engine, session: Any, where: list[ColumnElement[bool]],
                    fmt: str) -> StreamingResponse:
    """The rows matching ``where`` up to the head seen now, streamed on the read-only engine
    (a long read never holds the write lock)."""
    head = session.connection().execute(select(func.max(AUDIT.c.seq))).scalar() or 0
    session.rollback()
    media = "application/x-ndjson" if fmt == "jsonl" else "text/csv; charset=utf-8"
    return StreamingResponse(
        _export(read_engine, where, head, fmt), media_type=media,
        headers={"Content-Disposition": f'attachment; filename="audit.{fmt}"'})


def verify_with_checkpoints(session: Any, storage_dir: Path) -> tuple[dict[str, Any],
                                                                       checkpoint.CheckpointReport]:
    """The CLI's verification: the chain, then every published checkpoint against it."""
    result = chain.verify(session.connection())
    session.rollback()
    file = storage_dir / CHECKPOINT_FILE
    report = checkpoint.check(session, file if file.exists() else None, [], result)
    ok = result.ok and report.ok
    return ({**result.to_dict(), "ok": ok, "chain_id": report.chain_id,
             "checked": report.checked, "checkpoint_problems": report.problems,
             "checkpoint_warnings": report.warnings}, report)


def _export(engine: Engine, where: list[ColumnElement[bool]], head: int, fmt: str) -> Iterator[bytes]:
    """The rows up to ``head`` in seq order, a batch per short transaction."""
    columns = [AUDIT.c[f] for f in EXPORT_FIELDS]
    if fmt == "csv":
        yield _csv_line(EXPORT_FIELDS)
    last = 0
    while True:
        with engine.connect() as conn:
            rows = conn.execute(select(*columns).where(*where, AUDIT.c.seq > last,
                                                       AUDIT.c.seq <= head)
                                .order_by(AUDIT.c.seq).limit(BATCH)).all()
            conn.rollback()
        if not rows:
            return
        chunk = [(_csv_line(row) if fmt == "csv" else
                  (json.dumps(dict(zip(EXPORT_FIELDS, row, strict=True)), ensure_ascii=False) + "\n")
                  .encode("utf-8")) for row in rows]
        yield b"".join(chunk)
        last = rows[-1][0]


def _csv_line(values: Any) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue().encode("utf-8")
