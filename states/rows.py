"""Reading and writing a workflow's rows and the outbox, for the engine's transactions.

Rows are loaded (locked on PostgreSQL) with the paths role checks need, written back with a
version check, and each event's notifications become outbox rows in the same transaction. The
hot statements run on the driver's cursor (``states.rawdb``) where it can.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    RowMapping,
    Select,
    String,
    Update,
    any_,
    bindparam,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session

from core.errors import ConcurrentUpdate, NotFound
from models.db import as_utc
from models.tables import ENTERPRISE, JURISDICTION, OUTBOX, UNIT
from states import audit, rawdb
from states.workflow import Context, EventRule, Subject, Workflow

CHUNK = 500  # keys per expanding IN
_COPY_MIN = 64  # rows from which COPY beats executemany (PostgreSQL)
_INSERT_OUTBOX = insert(OUTBOX)
OUTBOX_COLUMNS = ("created_at", "audit_seq", "entity_type", "entity_id", "event", "recipient",
                  "template", "payload", "status", "attempts")
_OUTBOX_VALUES = itemgetter(*OUTBOX_COLUMNS)
_PAYLOAD_DUMPS = audit.fast_encode(json.JSONEncoder(ensure_ascii=False))  # json.dumps(…, ensure_ascii=False)


@cache
def loaders(table: Any, lock: bool) -> tuple[Select[Any], Select[Any], Select[Any]]:
    """(base, by id, by code) statements for a workflow table, built once per table and dialect.

    Unit-scoped rows bring their unit's and jurisdiction's paths (for role coverage);
    jurisdiction-scoped rows (no unit_id) only their jurisdiction's.
    """
    if "unit_id" in table.c:
        stmt = (
            select(table, UNIT.c.path.label("_unit_path"), JURISDICTION.c.path.label("_jur_path"),
                   ENTERPRISE.c.industry.label("_industry"))
            .join(UNIT, UNIT.c.id == table.c.unit_id)
            .join(ENTERPRISE, ENTERPRISE.c.id == table.c.enterprise_id)
            .join(JURISDICTION, JURISDICTION.c.id == ENTERPRISE.c.jurisdiction_id)
        )
    else:
        stmt = select(table, literal("").label("_unit_path"),
                      JURISDICTION.c.path.label("_jur_path"),
                      literal(None).label("_industry")).join(
            JURISDICTION, JURISDICTION.c.id == table.c.jurisdiction_id)
    if lock:
        stmt = stmt.with_for_update(of=table)
    keys = bindparam("keys", expanding=True)
    return (stmt, stmt.where(table.c.id.in_(keys)).order_by(table.c.id),
            stmt.where(table.c.code.in_(keys)).order_by(table.c.id))


@cache
def load_one(table: Any, lock: bool, by_code: bool) -> Select[Any]:
    """The loader for a single id (or code): ``=`` instead of an expanding ``IN``."""
    base, _, _ = loaders(table, lock)
    return base.where((table.c.code if by_code else table.c.id) == bindparam("key"))


def load_rows(
    workflow: Workflow, conn: Connection, refs: Sequence[int | str]
) -> dict[int | str, dict[str, Any]]:
    """Load (and lock) the rows a batch touches; keyed by both id and code."""
    ids = sorted({r for r in refs if isinstance(r, int)})
    codes = sorted({r for r in refs if isinstance(r, str)})
    _, by_id, by_code = loaders(workflow.table, conn.dialect.name != "sqlite")
    found: dict[int | str, dict[str, Any]] = {}
    for stmt, keys in ((by_id, ids), (by_code, codes)):
        for start in range(0, len(keys), CHUNK):
            if len(keys) == 1:  # the interactive case: no expanding IN to render per call
                one = load_one(workflow.table, conn.dialect.name != "sqlite", stmt is by_code)
                records = rawdb.records(conn, one, keys[0])
                if records is None:
                    result = conn.execute(one, {"key": keys[0]})
                    names = list(result.keys())
                    records = [dict(zip(names, row, strict=True)) for row in result]
            else:
                result = conn.execute(stmt, {"keys": keys[start : start + CHUNK]})
                names = list(result.keys())
                records = [dict(zip(names, row, strict=True)) for row in result.all()]
            for record in records:
                found[record["id"]] = record
                found[record["code"]] = record
    return found


@cache
def set_loader(table: Any, dialect_name: str, by_code: bool) -> Select[Any]:
    """The loader for a whole set of ids (or codes) in one statement with one parameter ``key``:
    ``IN (SELECT value FROM json_each(:key))`` on SQLite (the keys as one JSON array), ``= ANY
    (:key)`` on PostgreSQL (an array; rows locked). No chunks, nothing rendered per call.
    Unit-scoped rows come alone: their places (``PLACES``) are read once per distinct unit."""
    if "unit_id" in table.c:
        base = select(table)
        if dialect_name != "sqlite":
            base = base.with_for_update(of=table)
    else:
        base, _, _ = loaders(table, dialect_name != "sqlite")
    column = table.c.code if by_code else table.c.id
    return base.where(_in_keys(column, dialect_name, String if by_code else Integer))


def _in_keys(column: Any, dialect_name: str, key_type: Any = Integer) -> Any:
    """``column`` is one of the keys given as the one parameter ``key``: a JSON array through
    ``json_each`` on SQLite, an array with ``= ANY`` on PostgreSQL."""
    if dialect_name == "sqlite":
        keys = func.json_each(bindparam("key", type_=String)).table_valued("value")
        return column.in_(select(keys.c.value))
    return column == any_(bindparam("key", type_=ARRAY(key_type)))


# A row's place, as ``loaders`` joins it: its unit's path; its enterprise's jurisdiction path and
# industry (by the row's own enterprise_id, as the join).
_UNIT_PATHS = select(UNIT.c.id, UNIT.c.path)
_ENTERPRISE_PLACES = select(ENTERPRISE.c.id, JURISDICTION.c.path, ENTERPRISE.c.industry).join(
    JURISDICTION, JURISDICTION.c.id == ENTERPRISE.c.jurisdiction_id)


@cache
def _places_loader(dialect_name: str, units: bool) -> Select[Any]:
    if units:
        return _UNIT_PATHS.where(_in_keys(UNIT.c.id, dialect_name))
    return _ENTERPRISE_PLACES.where(_in_keys(ENTERPRISE.c.id, dialect_name))


def _places(conn: Connection, units: bool, keys: list[int]) -> dict[int, tuple[Any, ...]]:
    stmt = _places_loader(conn.dialect.name, units)
    param: Any = json.dumps(keys) if conn.dialect.name == "sqlite" else keys
    found = rawdb.query(conn, stmt, param)
    if found is None:
        found = list(conn.execute(stmt, {"key": param}).all())
    return {row[0]: tuple(row[1:]) for row in found}


def _with_places(conn: Connection, records: list[dict[str, Any]]) -> None:
    """Add ``_unit_path``, ``_jur_path`` and ``_industry`` to unit-scoped rows, one read for all
    their units and one for their enterprises (a batch touches few): what ``loaders`` joins to
    every row, without the join per row."""
    units = _places(conn, True, sorted({r["unit_id"] for r in records}))
    enterprises = _places(conn, False, sorted({r["enterprise_id"] for r in records}))
    for record in records:
        jur_path, industry = enterprises[record["enterprise_id"]]
        record["_unit_path"] = units[record["unit_id"]][0]
        record["_jur_path"] = jur_path
        record["_industry"] = industry


def load_set(
    workflow: Workflow, conn: Connection, refs: Sequence[int | str]
) -> dict[int | str, dict[str, Any]]:
    """``load_rows`` for a big batch: one statement per kind of key (ids, codes), whatever the
    number of keys, and one for the units' places; keyed by both id and code."""
    found: dict[int | str, dict[str, Any]] = {}
    ids = [r for r in refs if isinstance(r, int)]
    codes = [r for r in refs if isinstance(r, str)]
    sqlite = conn.dialect.name == "sqlite"
    scoped = "unit_id" in workflow.table.c
    for keys, by_code in ((ids, False), (codes, True)):
        if not keys:
            continue
        stmt = set_loader(workflow.table, conn.dialect.name, by_code)
        param: Any = json.dumps(keys, ensure_ascii=False) if sqlite else keys
        records = rawdb.records(conn, stmt, param)
        if records is None:
            result = conn.execute(stmt, {"key": param})
            names = list(result.keys())
            records = [dict(zip(names, row, strict=True)) for row in result.all()]
        if scoped and records:
            _with_places(conn, records)
        for record in records:
            found[record["id"]] = record
            found[record["code"]] = record
    return found


def row_of(session: Session, workflow: Workflow, entity: int | str) -> RowMapping:
    """Read one entity's row by id or code (no lock); NotFound if absent."""
    table = workflow.table
    column = table.c.id if isinstance(entity, int) else table.c.code
    row = session.connection().execute(select(table).where(column == entity)).mappings().first()
    if row is None:
        raise NotFound(f"{workflow.label}「{entity}」不存在", entity=entity)
    return row


def insert_new(conn: Connection, workflow: Workflow, values: Mapping[str, Any]) -> tuple[int, str]:
    """Insert a new entity's row (its code a placeholder until its id is known); (id, code)."""
    table = workflow.table
    new_id = conn.execute(insert(table).values(values).returning(table.c.id)).scalar_one()
    code = f"{workflow.code_prefix}-{new_id:06d}"
    conn.execute(update(table).where(table.c.id == new_id).values(code=code))
    return new_id, code


def write_rows(
    workflow: Workflow,
    conn: Connection,
    rows: dict[int | str, dict[str, Any]],
    originals: dict[int, int],
    moment: datetime,
) -> None:
    """One UPDATE per touched row with a version check, grouped by column set for executemany.

    ``state`` is written only when an event moved it: SET-ting an indexed column, even to its
    own value, makes SQLite rewrite that row's entries in every index holding it (two on hazard).
    """
    table = workflow.table
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    getters: dict[tuple[str, ...], Callable[[Any], tuple[Any, ...]]] = {}
    for entity_id, old_version in originals.items():
        row = rows[entity_id]
        columns = tuple(sorted(row.pop("_dirty", set()) | {"version", "updated_at"}))
        getter = getters.get(columns) or getters.setdefault(columns, itemgetter(*columns))
        groups.setdefault(columns, []).append((*getter(row), entity_id, old_version))
    for columns, params in groups.items():
        done = rawdb.executemany(conn, table, columns, ("id", "version"), params)
        if done is None:  # a driver without positional marks: through SQLAlchemy
            done = versioned_update(conn, table, columns, params)
        if done != len(params):
            raise ConcurrentUpdate(
                f"{workflow.label}已被他人同时修改（{len(params) - done} 条），本次操作未生效，请重试"
            )


def versioned_update(conn: Connection, table: Any, columns: tuple[str, ...],
                     params: list[tuple[Any, ...]]) -> int:
    """The versioned UPDATE through SQLAlchemy (drivers without positional marks); rowcount."""
    named = [{**{f"v_{c}": v for c, v in zip(columns, p, strict=False)},
              "b_id": p[-2], "b_version": p[-1]} for p in params]
    return int(conn.execute(_versioned_update(table, columns), named).rowcount)


@cache
def _versioned_update(table: Any, columns: tuple[str, ...]) -> Update:
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values({c: bindparam(f"v_{c}") for c in columns})
    )


def outbox_rows(
    workflow: Workflow,
    rule: EventRule,
    subject: Subject,
    ctx: Context,
    row: Mapping[str, Any],
    to_state: str,
    audit_seq: int,
) -> list[dict[str, Any]]:
    return [dict(zip(OUTBOX_COLUMNS, values, strict=True))
            for values in outbox_tuples(workflow, rule, subject, ctx, row, to_state, audit_seq)]


def outbox_tuples(
    workflow: Workflow,
    rule: EventRule,
    subject: Subject,
    ctx: Context,
    row: Mapping[str, Any],
    to_state: str,
    audit_seq: int,
) -> list[tuple[Any, ...]]:
    """An event's outbox rows as OUTBOX_COLUMNS tuples, one per recipient its rule names."""
    if rule.notify is None:
        return []
    recipients = rule.notify(subject, ctx)
    if not recipients:
        return []
    payload = _PAYLOAD_DUMPS(
        {
            "code": row["code"],
            "title": row.get("title") or row.get("name"),
            "event": rule.name,
            "event_label": rule.label,
            "state": to_state,
            "state_label": workflow.state_label(to_state),
            "actor": ctx.actor,
            "deadline": _iso(row.get("deadline")),
            **workflow.payload_labels(rule, subject.data),
        }
    )
    template = f"{workflow.name}.{rule.name}"
    return [(ctx.as_of, audit_seq, workflow.name, row["id"], rule.name, recipient, template,
             payload, "pending", 0) for recipient in recipients]


def _iso(value: Any) -> str | None:
    return _iso_moment(value) if isinstance(value, datetime) else None


@lru_cache(maxsize=4096)
def _iso_moment(value: datetime) -> str:
    """A deadline as payload text; batches share few distinct deadlines (a sweep's are days)."""
    return as_utc(value).isoformat()


def insert_outbox(conn: Connection, outbox: list[dict[str, Any]]) -> None:
    insert_outbox_tuples(conn, list(map(_OUTBOX_VALUES, outbox)))


def insert_outbox_tuples(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
    """Insert outbox rows given as OUTBOX_COLUMNS tuples: COPY on PostgreSQL for a big set,
    else the driver's executemany, else SQLAlchemy."""
    if len(rows) >= _COPY_MIN and conn.dialect.name == "postgresql":
        found = rawdb.cursor(conn)
        if found is not None:
            with found:
                if rawdb.copy_rows(found, "outbox", OUTBOX_COLUMNS, rows):
                    return
    if rawdb.executemany(conn, OUTBOX, OUTBOX_COLUMNS, (), rows) is None:
        conn.execute(_INSERT_OUTBOX, [dict(zip(OUTBOX_COLUMNS, r, strict=True)) for r in rows])
