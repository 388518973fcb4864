"""The one way to change a workflow's state.

``fire`` / ``fire_many`` load the rows (locked on PostgreSQL), check event, role and guards, let the
workflow's single ``transitions`` Machine pick the destination, write the row with a version check,
append the chained audit rows and the outbox rows, and commit -- or raise a typed error from
``core.errors`` with nothing changed. ``create`` does the same for an entity's first event.
"""

from __future__ import annotations

import gc
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, lru_cache
from operator import itemgetter
from typing import Any

from sqlalchemy import (
    Connection,
    RowMapping,
    Select,
    Update,
    bindparam,
    insert,
    literal,
    select,
    update,
)
from sqlmodel import Session

from core.errors import (
    ConcurrentUpdate,
    GuardFailed,
    InvalidInput,
    NotFound,
    PermissionDenied,
    SafeloopError,
    TransitionNotAllowed,
)
from models.db import as_utc, utcnow
from models.enums import Role
from models.tables import DEPARTMENT, ENTERPRISE, EVIDENCE, JURISDICTION, OUTBOX, PERSON, UNIT
from models.tables import ROLE_GRANT as GRANT
from states import audit
from states.notice_labels import payload_labels
from states.workflow import (
    ANY_OTHER,
    Context,
    EventRule,
    EvidenceRef,
    Subject,
    Workflow,
    validate_params,
)

SYSTEM_ACTOR = "system"
# Actors that are no person: only flows and the engine's own cascades may act as them.
INTERNAL_ACTORS = frozenset({SYSTEM_ACTOR})
# Channels through which a person acts; everything else is the product's own code (flows).
PERSON_CHANNELS = frozenset({"cli", "web", "api"})
_CHUNK = 500
_GC_PAUSE_MIN = 256  # batches at least this big run with the cyclic collector paused


# Statements built once: building a Select costs more than executing it (see bench/).
# A grant's department comes with its industries ("" = a department without a list; NULL = a
# regulator without a department, i.e. comprehensive supervision of the jurisdiction).
_ACTOR = (
    select(PERSON.c.id, GRANT.c.role, GRANT.c.unit_id, GRANT.c.jurisdiction_id,
           GRANT.c.department_id, DEPARTMENT.c.industries)
    .select_from(PERSON.outerjoin(GRANT, GRANT.c.person_id == PERSON.c.id)
                 .outerjoin(DEPARTMENT, DEPARTMENT.c.id == GRANT.c.department_id))
    .where(PERSON.c.key == bindparam("key"))
)
_PERSON_ID = select(PERSON.c.id).where(PERSON.c.key == bindparam("key"))
_INSERT_OUTBOX = insert(OUTBOX)
_OUTBOX_COLUMNS = ("created_at", "audit_seq", "entity_type", "entity_id", "event", "recipient",
                   "template", "payload", "status", "attempts")
_OUTBOX_VALUES = itemgetter(*_OUTBOX_COLUMNS)
_PAYLOAD_DUMPS = audit.fast_encode(json.JSONEncoder(ensure_ascii=False))  # json.dumps(…, ensure_ascii=False)


@dataclass(frozen=True)
class Origin:
    """How the person behind a session is identified, and whether its times may be simulated.

    The shell puts one on each session (``set_origin``): the CLI says ``cli``, the web and API
    their channel and the session or token id. A session without one is the product's own code
    (flows, jobs, tests of the engine): channel ``flow``, times as given.
    """

    channel: str = "flow"
    credential: str | None = None  # session or token id, never the secret
    # A person's event is recorded at the real clock: its business time may differ from it by
    # ``tolerance`` at most, unless ``simulate`` is set (demo, imports), which the trail records.
    simulate: bool = False
    tolerance: timedelta = timedelta(minutes=5)

    @property
    def by_person(self) -> bool:
        return self.channel in PERSON_CHANNELS


FLOW_ORIGIN = Origin()


def set_origin(session: Session, origin: Origin) -> None:
    session.info["origin"] = origin


def origin_of(session: Session) -> Origin:
    found = session.info.get("origin")
    return found if isinstance(found, Origin) else FLOW_ORIGIN


@dataclass(frozen=True)
class Clock:
    """An event's times: ``moment`` is its business time (audit ``at``), ``reference`` what rules
    compare deadlines with, ``simulated`` whether the business time left the real clock."""

    moment: datetime
    reference: datetime
    simulated: bool
    channel: str = "flow"  # how the actor came, for the audit row
    credential: str | None = None


def clock_for(origin: Origin, as_of: datetime | None) -> Clock:
    """Check a requested business time against the real clock; refuse a person's backdating."""
    real = utcnow()
    moment = as_utc(as_of) or real
    off = abs(moment - real) > origin.tolerance
    if off and origin.by_person and not origin.simulate:
        minutes = int(origin.tolerance.total_seconds() // 60)
        raise InvalidInput(
            f"操作时间 {moment:%Y-%m-%d %H:%M} UTC 与当前时间 {real:%Y-%m-%d %H:%M} UTC 相差超过 "
            f"{minutes} 分钟：人员的操作按实际时间记录，不能倒签或预签（演示、导入等模拟须显式开启 "
            f"SAFELOOP_SIMULATE_TIME=true，并记入审计日志）", as_of=moment.isoformat())
    reference = moment if (origin.simulate or not origin.by_person) else max(moment, real)
    return Clock(moment, reference, off, origin.channel, origin.credential)


# (workflow, rule, subject, context, row, from_state, to_state) of one decided event
Planned = tuple[Workflow, EventRule, Subject, Context, dict[str, Any], str | None, str]


@dataclass(frozen=True)
class FireRequest:
    entity: int | str  # id, or the entity's code
    event: str
    actor: str
    role: str | None = None
    comment: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    expected_version: int | None = None


@dataclass(frozen=True)
class FireResult:
    entity_id: int
    code: str
    event: str
    from_state: str | None
    to_state: str
    version: int
    role: str
    audit_seq: int


@dataclass
class BatchResult:
    applied: list[FireResult] = field(default_factory=list)
    refused: list[tuple[FireRequest, SafeloopError]] = field(default_factory=list)


@dataclass(frozen=True)
class Grant:
    """One role a person holds: in a unit subtree, or in a jurisdiction tree through a department."""

    role: str
    unit_id: int | None
    jurisdiction_id: int | None
    department_id: int | None = None
    industries: frozenset[str] | None = None  # None: no department (comprehensive supervision)

    def in_jurisdiction(self, jurisdiction_path: str) -> bool:
        return self.jurisdiction_id is not None and f"/{self.jurisdiction_id}/" in jurisdiction_path


@dataclass(frozen=True)
class Actor:
    key: str
    id: int | None
    grants: tuple[Grant, ...]

    def roles_at(self, row: Mapping[str, Any]) -> set[str]:
        """Roles held where an entity lives: granted in its unit or an ancestor unit, or -- for
        regulators -- in its jurisdiction tree through a department that oversees the
        enterprise's industry (or, for a jurisdiction's own entities, is the entity's department).

        This is the one check of regulator scope: every workflow's role test goes through it.
        """
        if self.key in INTERNAL_ACTORS:
            return {Role.system.value}
        unit_path, jurisdiction_path = row["_unit_path"], row["_jur_path"]
        held = set()
        for grant in self.grants:
            in_unit = grant.unit_id is not None and f"/{grant.unit_id}/" in unit_path
            if in_unit or (grant.in_jurisdiction(jurisdiction_path)
                           and department_covers(grant, row)):
                held.add(grant.role)
        return held

    def outside_department(self, row: Mapping[str, Any]) -> str:
        """Why a regulator of the right jurisdiction holds no role here: their department."""
        for grant in self.grants:
            if (grant.role == Role.regulator.value and grant.in_jurisdiction(row["_jur_path"])
                    and not department_covers(grant, row)):
                if row.get("_industry") is not None:
                    return f"（其所在监管部门不负责「{row['_industry']}」行业）"
                return "（该计划属于其他监管部门）"
        return ""


def department_covers(grant: Grant, row: Mapping[str, Any]) -> bool:
    """A regulator's department covers an enterprise's industry, or is the plan's own department.

    Auditors (and a regulator without a department) are not limited by industry.
    """
    if grant.role != Role.regulator.value or grant.industries is None:
        return True
    industry = row.get("_industry")
    if industry is not None:
        return industry in grant.industries
    department = row.get("department_id")
    return department is None or department == grant.department_id


class _Lookups:
    """Per-transaction caches of actors and people so a batch queries each once."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.actors: dict[str, Actor] = {}
        self.people: dict[str, int] = {}
        self.memo: dict[Any, Any] = {}

    def actor(self, key: str) -> Actor:
        if key in self.actors:
            return self.actors[key]
        if key == SYSTEM_ACTOR:
            found = Actor(key, None, ())
        else:
            rows = _driver_query(self.conn, _ACTOR, key)
            if rows is None:
                rows = self.conn.execute(_ACTOR, {"key": key}).all()
            if not rows:
                raise NotFound(f"人员「{key}」不存在", key=key)
            grants = tuple(
                Grant(r[1], r[2], r[3], r[4],
                      None if r[4] is None else frozenset(i for i in (r[5] or "").split(",") if i))
                for r in rows if r[1] is not None)
            found = Actor(key, rows[0][0], grants)
        self.actors[key] = found
        return found

    def person_id(self, key: str) -> int:
        if key not in self.people:
            pid = self.conn.execute(_PERSON_ID, {"key": key}).scalar()
            if pid is None:
                raise NotFound(f"人员「{key}」不存在", key=key)
            self.people[key] = pid
        return self.people[key]


@cache
def _loaders(table: Any, lock: bool) -> tuple[Select[Any], Select[Any], Select[Any]]:
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
def _load_one(table: Any, lock: bool, by_code: bool) -> Select[Any]:
    """The loader for a single id (or code): ``=`` instead of an expanding ``IN``."""
    base, _, _ = _loaders(table, lock)
    return base.where((table.c.code if by_code else table.c.id) == bindparam("key"))


def _load_rows(
    workflow: Workflow, conn: Connection, refs: Sequence[int | str]
) -> dict[int | str, dict[str, Any]]:
    """Load (and lock) the rows a batch touches; keyed by both id and code."""
    ids = sorted({r for r in refs if isinstance(r, int)})
    codes = sorted({r for r in refs if isinstance(r, str)})
    _, by_id, by_code = _loaders(workflow.table, conn.dialect.name != "sqlite")
    found: dict[int | str, dict[str, Any]] = {}
    for stmt, keys in ((by_id, ids), (by_code, codes)):
        for start in range(0, len(keys), _CHUNK):
            if len(keys) == 1:  # the interactive case: no expanding IN to render per call
                one = _load_one(workflow.table, conn.dialect.name != "sqlite", stmt is by_code)
                records = _driver_records(conn, one, keys[0])
                if records is None:
                    result = conn.execute(one, {"key": keys[0]})
                    names = list(result.keys())
                    records = [dict(zip(names, row, strict=True)) for row in result]
            else:
                result = conn.execute(stmt, {"keys": keys[start : start + _CHUNK]})
                names = list(result.keys())
                records = [dict(zip(names, row, strict=True)) for row in result.all()]
            for record in records:
                found[record["id"]] = record
                found[record["code"]] = record
    return found


def _label(workflow: Workflow, row: Mapping[str, Any]) -> str:
    return f"{workflow.label} {row['code']}"


def _allowed_now(workflow: Workflow, state: str | None, roles: set[str]) -> list[EventRule]:
    return [r for r in workflow.events_from(state) if roles.intersection(r.roles)]


def _describe(rules: Sequence[EventRule]) -> str:
    return "、".join(f"{r.label}({r.name})" for r in rules) or "无"


def _decide(
    workflow: Workflow,
    rule: EventRule,
    row: Mapping[str, Any],
    state: str | None,
    req_role: str | None,
    actor: Actor,
    comment: str | None,
    data: Mapping[str, Any],
    lookups: _Lookups,
    clock: Clock,
    what: str,
    trusted: bool = False,
) -> tuple[Subject, Context, str, dict[str, Any]]:
    """Check role, reason, input and guards; return the subject, context, role and audit data.

    ``trusted`` input comes from the engine itself (an entity spawned by another event): it may
    carry the facts a rule declares ``computed``, which a person's input never may."""
    held = actor.roles_at(row)
    candidates = [r for r in rule.roles if r in held]
    if req_role is not None:
        candidates = [r for r in candidates if r == req_role]
    if not candidates:
        needed = "、".join(Role(r).label for r in rule.roles)
        mine = "、".join(Role(r).label for r in sorted(held)) or "无"
        raise PermissionDenied(
            f"{actor.key} 无权对{what}执行「{rule.label}」：需要角色 {needed}，"
            f"其在该单位的角色为 {mine}{actor.outside_department(row)}",
            event=rule.name,
            roles=sorted(held),
        )
    role = candidates[0]
    if rule.requires_reason and not (comment or "").strip():
        raise InvalidInput(f"执行「{rule.label}」必须填写原因（--reason）", event=rule.name)
    forged = [] if trusted else sorted(set(data).intersection(rule.computed))
    if forged:
        raise InvalidInput(
            f"「{'、'.join(forged)}」由系统计算并记入审计日志，不能由操作人提供", fields=forged)
    params = validate_params(rule, data)
    if params is not None:
        _check_evidence(lookups.conn, params)
    values = params.model_dump() if params is not None else {}
    subject = Subject(state=state, row=row, data=values, comment=comment)
    ctx = Context(actor.key, actor.id, role, clock.moment, lookups.person_id, lookups.conn,
                  lookups.memo, roles_of=lambda key: lookups.actor(key).roles_at(row),
                  reference_time=clock.reference)
    for guard in rule.guards:
        refusal = guard(subject, ctx)
        if refusal:
            raise GuardFailed(f"{what}不能「{rule.label}」：{refusal}", event=rule.name)
    audit_data = params.model_dump(mode="json", exclude_none=True) if params is not None else {}
    if rule.annotate is not None:
        audit_data.update(rule.annotate(subject, ctx))
    return subject, ctx, role, audit_data


@cache
def _evidence_fields(params_type: type[Any]) -> tuple[str, ...]:
    """The fields of a params model that hold evidence references (checked once per model)."""
    fields = []
    for name, info in params_type.model_fields.items():
        if "EvidenceRef" in repr(info.annotation):
            fields.append(name)
    return tuple(fields)


def _check_evidence(conn: Connection, params: Any) -> None:
    """Every evidence reference must name a file in the evidence store with that hash and size:
    a hash typed into the input cannot stand in for a report that was never uploaded."""
    refs: list[EvidenceRef] = []
    for name in _evidence_fields(type(params)):
        value = getattr(params, name)
        refs += [v for v in (value if isinstance(value, list) else [value])
                 if isinstance(v, EvidenceRef)]
    if not refs:
        return
    stored = dict(conn.execute(select(EVIDENCE.c.sha256, EVIDENCE.c.size).where(
        EVIDENCE.c.sha256.in_(sorted({r.sha256 for r in refs})))).all())
    for ref in refs:
        if stored.get(ref.sha256) != ref.size:
            raise InvalidInput(
                f"证据文件「{ref.name}」（SHA-256 {ref.sha256[:12]}…）不在证据库中："
                f"请用 --evidence 提交文件本身，不能只填写其哈希", evidence=ref.sha256)


def _refuse_state(
    workflow: Workflow, rule: EventRule, row: Mapping[str, Any], actor: Actor
) -> TransitionNotAllowed:
    state = row["state"]
    allowed = _allowed_now(workflow, state, actor.roles_at(row))
    return TransitionNotAllowed(
        f"{_label(workflow, row)} 当前状态为「{workflow.state_label(state)}」({state})，"
        f"不能执行「{rule.label}」({rule.name})。您现在可以执行：{_describe(allowed)}",
        state=state,
        allowed=[r.name for r in allowed],
    )


def _outbox_rows(
    workflow: Workflow,
    rule: EventRule,
    subject: Subject,
    ctx: Context,
    row: Mapping[str, Any],
    to_state: str,
    audit_seq: int,
) -> list[dict[str, Any]]:
    if rule.notify is None:
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
            **payload_labels(workflow, rule, subject.data),
        }
    )
    return [
        {
            "created_at": ctx.as_of,
            "audit_seq": audit_seq,
            "entity_type": workflow.name,
            "entity_id": row["id"],
            "event": rule.name,
            "recipient": recipient,
            "template": f"{workflow.name}.{rule.name}",
            "payload": payload,
            "status": "pending",
            "attempts": 0,
        }
        for recipient in rule.notify(subject, ctx)
    ]


def _iso(value: Any) -> str | None:
    return as_utc(value).isoformat() if isinstance(value, datetime) else None


def fire(
    session: Session,
    workflow: Workflow,
    entity: int | str,
    event: str,
    *,
    actor: str,
    role: str | None = None,
    comment: str | None = None,
    data: Mapping[str, Any] | None = None,
    as_of: datetime | None = None,
    flow_run_id: str | None = None,
    expected_version: int | None = None,
) -> FireResult:
    """Apply one event atomically with its audit and outbox rows; raise and change nothing."""
    request = FireRequest(entity, event, actor, role, comment, data or {}, expected_version)
    result = fire_many(session, workflow, [request], as_of=as_of, flow_run_id=flow_run_id)
    return result.applied[0]


def fire_many(
    session: Session,
    workflow: Workflow,
    requests: Sequence[FireRequest],
    *,
    as_of: datetime | None = None,
    flow_run_id: str | None = None,
    skip_refused: bool = False,
) -> BatchResult:
    """Apply many events in one transaction (the sweeps' form).

    Without ``skip_refused`` the first refusal rolls everything back and is raised; with it,
    refused requests are reported in the result and the rest are committed.
    """
    # A big batch allocates hundreds of thousands of short-lived, acyclic objects (rows, dicts,
    # params): the cyclic collector's passes over them -- and over everything else alive --
    # cost about a third of the batch (bench/fire_batch). Reference counting frees them all the
    # same; the collector is paused for the batch only, and only if it was running.
    pause = len(requests) >= _GC_PAUSE_MIN and gc.isenabled()
    if pause:
        gc.disable()
    try:
        return _fire_many(session, workflow, requests, as_of, flow_run_id, skip_refused)
    finally:
        if pause:
            gc.enable()


def _fire_many(
    session: Session,
    workflow: Workflow,
    requests: Sequence[FireRequest],
    as_of: datetime | None,
    flow_run_id: str | None,
    skip_refused: bool,
) -> BatchResult:
    origin = origin_of(session)
    clock = clock_for(origin, as_of)
    moment = clock.moment
    result = BatchResult()
    try:
        conn = session.connection()
        batch = _Batch(_Lookups(conn), clock, origin, audit.format_at(moment), flow_run_id)
        batch.rows[workflow] = _load_rows(workflow, conn, [r.entity for r in requests])
        planned: list[Planned] = []
        for request in requests:
            rule = workflow.events.get(request.event)
            if skip_refused and rule is not None and rule.cascade is not None:
                raise ValueError(f"cascading event {rule.name} cannot run with skip_refused")
            # Only spawning events write before they are fully decided: guard those with a
            # savepoint so a refused one leaves no half-created entities in a skip_refused batch.
            spawns = rule is not None and rule.spawn is not None
            savepoint = conn.begin_nested() if skip_refused and spawns else None
            try:
                planned += _plan_one(batch, workflow, request)
            except SafeloopError as exc:
                if not skip_refused:
                    raise
                if savepoint is not None:
                    savepoint.rollback()
                result.refused.append((request, exc))
            else:
                if savepoint is not None:
                    savepoint.commit()
        for flow, originals in batch.originals.items():
            _write_rows(flow, conn, batch.rows[flow], originals, moment)
        seqs = audit.append(conn, batch.pending)
        outbox: list[dict[str, Any]] = []
        for seq, (flow, rule, subject, ctx, row, from_state, to_state) in zip(
                seqs, planned, strict=True):
            outbox += _outbox_rows(flow, rule, subject, ctx, row, to_state, seq)
            if flow is not workflow or from_state is None:
                continue  # spawned or cascaded: its own audit and outbox rows, not this result
            result.applied.append(
                FireResult(row["id"], row["code"], rule.name, from_state, to_state,
                           row["version"], ctx.role, seq)
            )
        if outbox:
            _insert_outbox(conn, outbox)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


@dataclass
class _Batch:
    """One transaction's working set: rows per workflow, their loaded versions, audit entries."""

    lookups: _Lookups
    clock: Clock
    origin: Origin
    at_text: str
    flow_run_id: str | None
    rows: dict[Workflow, dict[int | str, dict[str, Any]]] = field(default_factory=dict)
    originals: dict[Workflow, dict[int, int]] = field(default_factory=dict)
    pending: list[audit.PendingEntry] = field(default_factory=list)

    @property
    def moment(self) -> datetime:
        return self.clock.moment

    def row(self, workflow: Workflow, entity: int | str) -> dict[str, Any] | None:
        rows = self.rows.setdefault(workflow, {})
        if entity not in rows:
            rows.update(_load_rows(workflow, self.lookups.conn, [entity]))
        return rows.get(entity)


def _plan_one(
    batch: _Batch, workflow: Workflow, request: FireRequest, cascaded: bool = False
) -> list[Planned]:
    """Decide one request against the in-memory row (so a batch sees its own earlier events).

    Entities the event spawns are inserted now and planned after it, so their audit rows
    follow; events it cascades to other entities are then planned as the system actor.
    """
    if not cascaded:  # whatever the entity: no person is "system"
        refuse_internal_actor(request.actor, batch.origin)
    lookups, moment = batch.lookups, batch.moment
    row = batch.row(workflow, request.entity)
    if row is None:
        raise NotFound(f"{workflow.label}「{request.entity}」不存在", entity=request.entity)
    rule = workflow.events.get(request.event)
    if rule is None:
        known = "、".join(workflow.events)
        raise InvalidInput(f"未知操作「{request.event}」，可用操作：{known}", event=request.event)
    if request.expected_version is not None and request.expected_version != row["version"]:
        raise ConcurrentUpdate(
            f"{_label(workflow, row)} 已被他人修改（版本 {row['version']}，"
            f"您看到的是 {request.expected_version}），请刷新后重试",
            version=row["version"],
        )
    actor = lookups.actor(request.actor)
    state = row["state"]
    if state not in rule.sources:
        raise _refuse_state(workflow, rule, row, actor)
    subject, ctx, role, audit_data = _decide(
        workflow, rule, row, state, request.role, actor, request.comment, request.data,
        lookups, batch.clock, _label(workflow, row),
    )
    to_state = _destination(workflow, rule, subject)
    if to_state is None:
        raise _refuse_state(workflow, rule, row, actor)
    changes = rule.effect(subject, ctx) if rule.effect else {}
    clock = batch.clock
    entries = [audit.PendingEntry(
        workflow.name, row["id"], row["code"], rule.name, state, to_state, actor.key, role,
        batch.at_text, request.comment, audit.canonical_data(audit_data), batch.flow_run_id,
        clock.channel, clock.credential, clock.simulated,
    )]
    plans: list[Planned] = [(workflow, rule, subject, ctx, row, state, to_state)]
    for spawn in rule.spawn(subject, ctx) if rule.spawn else []:
        spawned, entry = _plan_create(
            lookups.conn, lookups, spawn.workflow, actor.key, spawn.data, None, None,
            batch.clock, batch.flow_run_id, trusted=True)
        plans.append(spawned)
        entries.append(entry)
    batch.originals.setdefault(workflow, {}).setdefault(row["id"], row["version"])
    row.update(changes, state=to_state, version=row["version"] + 1, updated_at=moment)
    dirty = row.setdefault("_dirty", set())
    dirty.update(changes)
    if to_state != state:  # a self-loop (escalate, remind_due, …) leaves the indexed column be
        dirty.add("state")
    batch.pending.extend(entries)
    for follow in rule.cascade(subject, ctx) if rule.cascade else []:
        because = f"因{_label(workflow, row)}「{rule.label}」"
        plans += _plan_one(batch, follow.workflow, FireRequest(
            follow.entity, follow.event, SYSTEM_ACTOR, None, because, follow.data), cascaded=True)
    return plans


def refuse_internal_actor(actor: str, origin: Origin) -> None:
    """A person (CLI, web, API) never acts as an internal actor; flows and cascades may."""
    if actor in INTERNAL_ACTORS and origin.by_person:
        raise PermissionDenied(
            f"「{actor}」是系统内部身份，只有定时流程和级联操作可以使用，任何人都不能以它的名义操作",
            actor=actor)


def _destination(workflow: Workflow, rule: EventRule, subject: Subject) -> str | None:
    """``workflow.destination``, answered without running the machine when it cannot differ.

    The machine is built from the rules alone: from any source, the first branch whose ``when``
    holds is taken, ``ANY_OTHER`` meaning the source itself, and the subject's state is set to
    it. So for a rule whose first branch is unconditional (nearly all of them) that is the answer,
    given the caller has already checked the state is one of the rule's sources; conditional
    rules still go through the machine. (``states.jobs.replay`` re-derives every recorded destination
    through the machine itself.)
    """
    first = rule.branches[0] if rule.branches else None
    if first is None or first.when is not None:
        return workflow.destination(subject, rule.name)
    _ = workflow.machine  # built once as ever, so a malformed workflow still fails the same way
    dest = subject.state if first.dest == ANY_OTHER else first.dest
    subject.state = dest
    return dest


def _write_rows(
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
        done = _driver_executemany(conn, table, columns, ("id", "version"), params)
        if done is None:  # a driver without positional marks: through SQLAlchemy
            named = [{**{f"v_{c}": v for c, v in zip(columns, p, strict=False)},
                      "b_id": p[-2], "b_version": p[-1]} for p in params]
            done = conn.execute(_versioned_update(table, columns), named).rowcount
        if done != len(params):
            raise ConcurrentUpdate(
                f"{workflow.label}已被他人同时修改（{len(params) - done} 条），本次操作未生效，请重试"
            )


def _insert_outbox(conn: Connection, outbox: list[dict[str, Any]]) -> None:
    rows = list(map(_OUTBOX_VALUES, outbox))
    if _driver_executemany(conn, OUTBOX, _OUTBOX_COLUMNS, (), rows) is None:
        conn.execute(_INSERT_OUTBOX, outbox)


@dataclass(frozen=True)
class _DriverSelect:
    """A SELECT with one ``key`` parameter compiled once for a dialect, for the driver's cursor:
    its SQL, its other (constant) parameters already bind-processed, and its result keys and
    result processors by position -- what a Core execution would apply, without its overhead."""

    sql: str
    order: tuple[str, ...] | None  # parameter names by position; None for named paramstyles
    constants: dict[str, Any]
    key_processor: Callable[[Any], Any] | None
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    def params(self, key: Any) -> Any:
        value = key if self.key_processor is None else self.key_processor(key)
        if self.order is None:
            return {**self.constants, "key": value}
        return tuple(value if name == "key" else self.constants[name] for name in self.order)


@lru_cache(maxsize=64)
def _driver_select(dialect: Any, stmt: Select[Any]) -> _DriverSelect:
    compiled = stmt.compile(dialect=dialect)

    def bind_processor(name: str) -> Callable[[Any], Any] | None:
        return compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)

    constants = {}
    for name, value in compiled.params.items():
        if name != "key":
            process = bind_processor(name)
            constants[name] = value if process is None else process(value)
    order = tuple(compiled.positiontup or ()) if compiled.positional else None
    columns = stmt.selected_columns
    # SQLite's result processors never look at the driver's type code; other dialects' may
    # (PostgreSQL's Numeric), so there the rows are only used raw (plain int/str columns).
    processors = tuple(c.type.dialect_impl(dialect).result_processor(dialect, None)
                       if dialect.name == "sqlite" else None for c in columns)
    return _DriverSelect(str(compiled), order, constants, bind_processor("key"),
                         tuple(c.key for c in columns), processors)


def _driver_fetch(conn: Connection, spec: _DriverSelect, key: Any) -> list[Any] | None:
    cursor = audit.driver_cursor(conn)
    if cursor is None:
        return None
    params = spec.params(key)
    try:
        cursor.execute(spec.sql, params)
        return list(cursor.fetchall())
    except conn.dialect.loaded_dbapi.Error as exc:
        raise audit.driver_error(conn, spec.sql, params, exc) from exc
    finally:
        cursor.close()


def _driver_query(conn: Connection, stmt: Select[Any], key: Any) -> list[Any] | None:
    """Raw rows of a SELECT with a single ``key`` parameter whose columns are plain ints and
    strings (no result processing to miss), through the driver's cursor; None when outside a
    transaction (then run it through SQLAlchemy)."""
    return _driver_fetch(conn, _driver_select(conn.dialect, stmt), key)


def _driver_records(conn: Connection, stmt: Select[Any], key: Any) -> list[dict[str, Any]] | None:
    """The one-key loader's rows as dicts, through the driver's cursor with SQLAlchemy's own
    result processors applied (dates, JSON, decimals): a fifth of the cost of a Core execution.
    SQLite only (its processors never depend on the driver's type codes); None elsewhere or
    outside a transaction."""
    if conn.dialect.name != "sqlite":
        return None
    spec = _driver_select(conn.dialect, stmt)
    rows = _driver_fetch(conn, spec, key)
    if rows is None:
        return None
    names, processors = spec.names, spec.processors
    return [
        dict(zip(names, [v if p is None else p(v) for p, v in zip(processors, row, strict=True)],
                 strict=True))
        for row in rows
    ]


@lru_cache(maxsize=128)
def _driver_dml(
    dialect: Any, table: Any, columns: tuple[str, ...], where: tuple[str, ...]
) -> tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]] | None:
    """Positional SQL for ``INSERT (columns)`` or, with ``where``, ``UPDATE SET columns WHERE
    where = …``, and the columns' bind processors by position (what SQLAlchemy would apply);
    None if the driver's paramstyle has no positional mark."""
    mark = audit.POSITIONAL_MARKS.get(dialect.paramstyle)
    if mark is None:
        return None
    quote = dialect.identifier_preparer.quote
    name = dialect.identifier_preparer.format_table(table)
    if where:
        sets = ", ".join(f"{quote(c)} = {mark}" for c in columns)
        cond = " AND ".join(f"{quote(c)} = {mark}" for c in where)
        sql = f"UPDATE {name} SET {sets} WHERE {cond}"
    else:
        sql = (f"INSERT INTO {name} ({', '.join(quote(c) for c in columns)}) "
               f"VALUES ({', '.join([mark] * len(columns))})")
    processors = []
    for i, column in enumerate((*columns, *where)):
        process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            processors.append((i, process))
    return sql, tuple(processors)


def _driver_executemany(
    conn: Connection, table: Any, columns: tuple[str, ...], where: tuple[str, ...],
    rows: list[tuple[Any, ...]],
) -> int | None:
    """Run many rows of one INSERT/UPDATE through the driver's executemany with positional
    tuples: the per-row parameter dicts and processing of an SQLAlchemy executemany cost more
    than the statement. Returns the rowcount, or None where this is not possible."""
    spec = _driver_dml(conn.dialect, table, columns, where)
    cursor = audit.driver_cursor(conn) if spec is not None else None
    if cursor is None or spec is None:
        return None
    sql, processors = spec
    if processors:
        lists = list(map(list, rows))  # ``rows`` keeps every original value alive meanwhile
        for i, process in processors:
            done: dict[int, Any] = {}  # by identity: a batch shares one moment, one state …
            for values in lists:
                value = values[i]
                key = id(value)
                if key not in done:
                    done[key] = process(value)
                values[i] = done[key]
        rows = list(map(tuple, lists))
    try:
        cursor.executemany(sql, rows)
        return int(cursor.rowcount)
    except conn.dialect.loaded_dbapi.Error as exc:
        raise audit.driver_error(conn, sql, rows, exc) from exc
    finally:
        cursor.close()


@cache
def _versioned_update(table: Any, columns: tuple[str, ...]) -> Update:
    return (
        update(table)
        .where(table.c.id == bindparam("b_id"), table.c.version == bindparam("b_version"))
        .values({c: bindparam(f"v_{c}") for c in columns})
    )


def scope_of_new(
    conn: Connection, workflow: Workflow, data: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Where a new entity lives (its unit, or its jurisdiction): the row stub for role checks,
    the scope columns to insert, and how to name it in messages."""
    stub: dict[str, Any] = {"state": None, "code": "", "plan": None}
    if workflow.scope == "jurisdiction":
        key = data.get("jurisdiction")
        found = conn.execute(select(JURISDICTION.c.id, JURISDICTION.c.path)
                             .where(JURISDICTION.c.key == str(key))).first()
        if found is None:
            raise NotFound(f"辖区「{key}」不存在", jurisdiction=key)
        stub.update(jurisdiction_id=found[0], _unit_path="", _jur_path=found[1],
                    _industry=None, department_id=None)
        if data.get("department"):  # a plan in a department's name: only that department acts
            department = conn.execute(select(DEPARTMENT.c.id).where(
                DEPARTMENT.c.key == str(data["department"]))).scalar()
            if department is None:
                raise NotFound(f"监管部门「{data['department']}」不存在",
                               department=data["department"])
            stub["department_id"] = department
        return stub, {"jurisdiction_id": found[0]}, f"辖区「{key}」的{workflow.label}"
    unit_key = data.get("unit")
    unit = conn.execute(
        select(UNIT.c.id, UNIT.c.path, UNIT.c.enterprise_id, JURISDICTION.c.path,
               ENTERPRISE.c.industry)
        .join(ENTERPRISE, ENTERPRISE.c.id == UNIT.c.enterprise_id)
        .join(JURISDICTION, JURISDICTION.c.id == ENTERPRISE.c.jurisdiction_id)
        .where(UNIT.c.key == str(unit_key))
    ).first()
    if unit is None:
        raise NotFound(f"单位「{unit_key}」不存在", unit=unit_key)
    stub.update(unit_id=unit[0], enterprise_id=unit[2], _unit_path=unit[1], _jur_path=unit[3],
                _industry=unit[4])
    return stub, {"unit_id": unit[0], "enterprise_id": unit[2]}, f"单位「{unit_key}」的{workflow.label}"


def roles_in_scope(conn: Connection, workflow: Workflow, person: str,
                   data: Mapping[str, Any]) -> set[str]:
    """The roles ``person`` holds where a new entity of ``workflow`` described by ``data`` would
    live: for checks on people named before any event (e.g. an inspection plan's assignee)."""
    row, _, _ = scope_of_new(conn, workflow, data)
    return _Lookups(conn).actor(person).roles_at(row)


def _plan_create(
    conn: Connection,
    lookups: _Lookups,
    workflow: Workflow,
    actor: str,
    data: Mapping[str, Any],
    role: str | None,
    comment: str | None,
    clock: Clock,
    flow_run_id: str | None,
    trusted: bool = False,
) -> tuple[Planned, audit.PendingEntry]:
    """Check and insert a new entity through its create event; return its plan and audit entry."""
    rule = workflow.create_event
    moment = clock.moment
    row, scope_values, subject, ctx, used_role, audit_data, changes = _decide_create(
        conn, lookups, workflow, actor, data, role, comment, clock, trusted)
    who = lookups.actor(actor)
    to_state = rule.branches[0].dest
    values = {
        **changes, **scope_values,
        "state": to_state, "version": 1,
        "code": f"tmp-{uuid.uuid4().hex[:24]}", "created_at": moment, "updated_at": moment,
    }
    table = workflow.table
    new_id = conn.execute(insert(table).values(values).returning(table.c.id)).scalar_one()
    code = f"{workflow.code_prefix}-{new_id:06d}"
    conn.execute(update(table).where(table.c.id == new_id).values(code=code))
    row.update(values, id=new_id, code=code)
    entry = audit.PendingEntry(
        workflow.name, new_id, code, rule.name, None, to_state, who.key, used_role,
        audit.format_at(moment), comment, audit.canonical_data(audit_data), flow_run_id,
        clock.channel, clock.credential, clock.simulated,
    )
    return (workflow, rule, subject, ctx, row, None, to_state), entry


def _decide_create(
    conn: Connection, lookups: _Lookups, workflow: Workflow, actor: str, data: Mapping[str, Any],
    role: str | None, comment: str | None, clock: Clock, trusted: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], Subject, Context, str, dict[str, Any], dict[str, Any]]:
    """Everything a create checks (scope, role, reason, input, guards) and the columns its effect
    sets, without writing: (row stub, scope columns, subject, context, role, audit data, columns)."""
    rule = workflow.create_event
    row, scope_values, what = scope_of_new(conn, workflow, data)
    subject, ctx, used_role, audit_data = _decide(
        workflow, rule, row, None, role, lookups.actor(actor), comment, data, lookups, clock, what,
        trusted)
    changes = rule.effect(subject, ctx) if rule.effect else {}
    return row, scope_values, subject, ctx, used_role, audit_data, changes


def check_create(
    session: Session,
    workflow: Workflow,
    *,
    actor: str,
    data: Mapping[str, Any],
    role: str | None = None,
    comment: str | None = None,
    as_of: datetime | None = None,
) -> None:
    """Raise exactly what ``create`` would refuse, writing nothing: for loaders that must refuse a
    whole file before its first write."""
    try:
        origin = origin_of(session)
        refuse_internal_actor(actor, origin)
        conn = session.connection()
        _decide_create(conn, _Lookups(conn), workflow, actor, data, role, comment,
                       clock_for(origin, as_of))
    finally:
        session.rollback()


def create(
    session: Session,
    workflow: Workflow,
    *,
    actor: str,
    data: Mapping[str, Any],
    role: str | None = None,
    comment: str | None = None,
    as_of: datetime | None = None,
    flow_run_id: str | None = None,
) -> FireResult:
    """Create an entity through its workflow's create event, with its first audit row."""
    origin = origin_of(session)
    refuse_internal_actor(actor, origin)
    clock = clock_for(origin, as_of)
    try:
        conn = session.connection()
        planned, entry = _plan_create(conn, _Lookups(conn), workflow, actor, data, role,
                                      comment, clock, flow_run_id)
        _, rule, subject, ctx, row, _, to_state = planned
        [seq] = audit.append(conn, [entry])
        outbox = _outbox_rows(workflow, rule, subject, ctx, row, to_state, seq)
        if outbox:
            _insert_outbox(conn, outbox)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return FireResult(row["id"], row["code"], rule.name, None, to_state, 1, ctx.role, seq)


def allowed_events(
    session: Session, workflow: Workflow, entity: int | str, actor: str
) -> list[EventRule]:
    """The events this person may fire on the entity now (state and role; guards not run)."""
    try:
        conn = session.connection()
        row = _load_rows(workflow, conn, [entity]).get(entity)
        if row is None:
            raise NotFound(f"{workflow.label}「{entity}」不存在", entity=entity)
        who = _Lookups(conn).actor(actor)
        held = who.roles_at(row)
    finally:
        session.rollback()  # read-only: release the (PostgreSQL) row lock at once
    return _allowed_now(workflow, row["state"], held)


def create_set(
    session: Session,
    workflow: Workflow,
    columns: Sequence[str],
    source: Any,
    *,
    batch: str,
    as_of: datetime,
    comment: str,
    data: Mapping[str, Any],
    flow_run_id: str | None = None,
) -> int:
    """Create many entities of a materialised workflow set-wise, with one audit row for the batch.

    ``source`` is a SELECT yielding ``columns`` (its ``batch`` column set to ``batch``); rows that
    already exist (any unique key) are skipped, so reruns and overlapping runs create nothing twice.
    The audit row, entity type ``<workflow>_batch``, lists the ids created; replay checks every row
    belongs to such a batch. One transaction: commits, or raises and changes nothing.
    """
    from sqlalchemy.dialects import postgresql, sqlite

    table = workflow.table
    try:
        conn = session.connection()
        dialect = sqlite if conn.dialect.name == "sqlite" else postgresql
        conn.execute(dialect.insert(table).from_select(list(columns), source)
                     .on_conflict_do_nothing())
        ids = list(conn.execute(select(table.c.id).where(table.c.batch == batch)
                                .order_by(table.c.id)).scalars())
        if ids:
            payload = {**data, "count": len(ids), "ids": id_ranges(ids)}
            record_many(session, [Act(f"{workflow.name}_batch", batch, workflow.create_event.name,
                                      payload, comment)],
                        actor=SYSTEM_ACTOR, role=Role.system.value, as_of=as_of,
                        flow_run_id=flow_run_id)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return len(ids)


def id_ranges(ids: Sequence[int]) -> list[list[int]]:
    """Compress sorted ids into inclusive [first, last] runs for the audit row."""
    ranges: list[list[int]] = []
    for i in ids:
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges


@dataclass(frozen=True)
class Act:
    """An administrative act that changes no workflow state, for the audit trail."""

    entity_type: str
    entity_code: str
    event: str
    data: Mapping[str, Any]
    comment: str | None = None


def record(
    session: Session,
    *,
    entity_type: str,
    entity_code: str,
    event: str,
    actor: str,
    role: str,
    data: Mapping[str, Any],
    comment: str | None = None,
    as_of: datetime | None = None,
) -> int:
    """Audit an administrative act that changes no workflow state (e.g. loading the org file).

    Runs inside the caller's transaction so the act and its trace commit together.
    """
    [seq] = record_many(session, [Act(entity_type, entity_code, event, data, comment)],
                        actor=actor, role=role, as_of=as_of)
    return seq


def record_many(session: Session, acts: Sequence[Act], *, actor: str, role: str,
                as_of: datetime | None = None, flow_run_id: str | None = None) -> list[int]:
    """``record`` for many acts by one actor at one moment (e.g. a derivation's plan changes)."""
    # Acts are the product's own bookkeeping (derivations, batches, loads) run on someone's
    # behalf; the row says through which channel it was triggered.
    clock = clock_for(origin_of(session), as_of)
    at = audit.format_at(clock.moment)
    return audit.append(session.connection(), [
        audit.PendingEntry(a.entity_type, 0, a.entity_code, a.event, None, None, actor, role, at,
                           a.comment, audit.canonical_data(dict(a.data)), flow_run_id,
                           clock.channel, clock.credential, clock.simulated)
        for a in acts])


def row_of(session: Session, workflow: Workflow, entity: int | str) -> RowMapping:
    """Read one entity's row by id or code (no lock); NotFound if absent."""
    table = workflow.table
    column = table.c.id if isinstance(entity, int) else table.c.code
    row = session.connection().execute(select(table).where(column == entity)).mappings().first()
    if row is None:
        raise NotFound(f"{workflow.label}「{entity}」不存在", entity=entity)
    return row
