"""The one way to change a workflow's state: the transaction.

``fire`` / ``fire_many`` load the rows (locked on PostgreSQL), decide each event (``states.decision``:
role, guards, and the destination the workflow's single ``transitions`` Machine picks), write the
rows with a version check (``states.rows``), append the chained audit rows and the outbox rows,
and commit -- or raise a typed error from ``core.errors`` with nothing changed. ``create`` does the
same for an entity's first event, ``create_set`` for a materialised set.

The names callers use from the engine's other modules are re-exported here, so ``states.engine``
stays the one door to it.
"""

from __future__ import annotations

import gc
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select
from sqlmodel import Session

from core.errors import ConcurrentUpdate, InvalidInput, NotFound, SafeloopError
from core.rules import rules_on
from models.enums import Role
from states import audit, decision, rows, setwise
from states.actors import (
    INTERNAL_ACTORS,
    SYSTEM_ACTOR,
    Actor,
    Lookups,
    refuse_internal_actor,
    roles_in_scope,
    scope_of_new,
)
from states.records import Act, id_ranges, record, record_many
from states.requests import (
    BatchResult,
    Clock,
    FireRequest,
    FireResult,
    Origin,
    clock_for,
    origin_of,
    set_origin,
)
from states.rows import row_of
from states.workflow import EventRule, Workflow

__all__ = [
    "INTERNAL_ACTORS", "SYSTEM_ACTOR", "Act", "Actor", "BatchResult", "FireRequest", "FireResult",
    "Origin", "allowed_events", "check_create", "create", "create_set", "fire", "fire_many",
    "id_ranges", "record", "record_many", "refuse_internal_actor", "roles_in_scope", "row_of",
    "scope_of_new", "set_origin",
]

_GC_PAUSE_MIN = 256  # batches at least this big run with the cyclic collector paused


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
    """Apply one event atomically with its audit and outbox rows; raise and change nothing.

    Guards and effects apply the rules the session carries (``core.rules.set_rules``, done by
    the entry points); a session without them gets the rules built from the settings
    (``core.rules.rules_in_force``), once per transaction."""
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
    set_wise: bool = True,
) -> BatchResult:
    """Apply many events in one transaction (the sweeps' form).

    Without ``skip_refused`` the first refusal rolls everything back and is raised; with it,
    refused requests are reported in the result and the rest are committed. A uniform batch (one
    event by one actor on distinct entities, no spawn or cascade) takes the set-wise path
    (``states.setwise``), which writes the same rows; ``set_wise=False`` forces the general one
    (the tests compare them, the benchmarks measure both).
    """
    # A big batch allocates hundreds of thousands of short-lived, acyclic objects (rows, dicts,
    # params): the cyclic collector's passes over them -- and over everything else alive --
    # cost about a third of the batch (bench/fire_batch). Reference counting frees them all the
    # same; the collector is paused for the batch only, and only if it was running.
    pause = len(requests) >= _GC_PAUSE_MIN and gc.isenabled()
    if pause:
        gc.disable()
    try:
        return _fire_many(session, workflow, requests, as_of, flow_run_id, skip_refused,
                          set_wise)
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
    set_wise: bool,
) -> BatchResult:
    origin = origin_of(session)
    clock = clock_for(origin, as_of)
    moment = clock.moment
    result = BatchResult()
    try:
        conn = session.connection()
        lookups = Lookups(conn, rules_on(session))
        rule = setwise.uniform_rule(workflow, requests) if set_wise else None
        if rule is not None:
            done = setwise.fire_uniform(conn, workflow, rule, requests, lookups, clock, origin,
                                        flow_run_id, skip_refused)
            if done is not None:
                session.commit()
                return done
        batch = _Batch(lookups, clock, origin, audit.format_at(moment), flow_run_id)
        batch.rows[workflow] = rows.load_rows(workflow, conn, [r.entity for r in requests])
        planned: list[decision.Planned] = []
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
            rows.write_rows(flow, conn, batch.rows[flow], originals, moment)
        seqs = audit.append(conn, batch.pending)
        outbox: list[tuple[Any, ...]] = []
        for seq, (flow, rule, subject, ctx, row, from_state, to_state) in zip(
                seqs, planned, strict=True):
            outbox += rows.outbox_tuples(flow, rule, subject, ctx, row, to_state, seq)
            if flow is not workflow or from_state is None:
                continue  # spawned or cascaded: its own audit and outbox rows, not this result
            result.applied.append(
                FireResult(row["id"], row["code"], rule.name, from_state, to_state,
                           row["version"], ctx.role, seq)
            )
        if outbox:
            rows.insert_outbox_tuples(conn, outbox)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return result


@dataclass
class _Batch:
    """One transaction's working set: rows per workflow, their loaded versions, audit entries."""

    lookups: Lookups
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
        loaded = self.rows.setdefault(workflow, {})
        if entity not in loaded:
            loaded.update(rows.load_rows(workflow, self.lookups.conn, [entity]))
        return loaded.get(entity)


def _plan_one(
    batch: _Batch, workflow: Workflow, request: FireRequest, cascaded: bool = False
) -> list[decision.Planned]:
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
            f"{decision.label(workflow, row)} 已被他人修改（版本 {row['version']}，"
            f"您看到的是 {request.expected_version}），请刷新后重试",
            version=row["version"],
        )
    actor = lookups.actor(request.actor)
    state = row["state"]
    if state not in rule.sources:
        raise decision.refuse_state(workflow, rule, row, actor)
    subject, ctx, role, audit_data = decision.decide(
        workflow, rule, row, state, request.role, actor, request.comment, request.data,
        lookups, batch.clock, decision.label(workflow, row),
    )
    to_state = decision.destination(workflow, rule, subject)
    if to_state is None:
        raise decision.refuse_state(workflow, rule, row, actor)
    changes = rule.effect(subject, ctx) if rule.effect else {}
    clock = batch.clock
    entries = [audit.PendingEntry(
        workflow.name, row["id"], row["code"], rule.name, state, to_state, actor.key, role,
        batch.at_text, request.comment, audit.canonical_data(audit_data), batch.flow_run_id,
        clock.channel, clock.credential, clock.simulated,
    )]
    plans: list[decision.Planned] = [(workflow, rule, subject, ctx, row, state, to_state)]
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
        because = f"因{decision.label(workflow, row)}「{rule.label}」"
        plans += _plan_one(batch, follow.workflow, FireRequest(
            follow.entity, follow.event, SYSTEM_ACTOR, None, because, follow.data), cascaded=True)
    return plans


def _plan_create(
    conn: Connection,
    lookups: Lookups,
    workflow: Workflow,
    actor: str,
    data: Mapping[str, Any],
    role: str | None,
    comment: str | None,
    clock: Clock,
    flow_run_id: str | None,
    trusted: bool = False,
) -> tuple[decision.Planned, audit.PendingEntry]:
    """Check and insert a new entity through its create event; return its plan and audit entry."""
    rule = workflow.create_event
    moment = clock.moment
    row, scope_values, subject, ctx, used_role, audit_data, changes = decision.decide_create(
        conn, lookups, workflow, actor, data, role, comment, clock, trusted)
    who = lookups.actor(actor)
    to_state = rule.branches[0].dest
    values = {
        **changes, **scope_values,
        "state": to_state, "version": 1,
        "code": f"tmp-{uuid.uuid4().hex[:24]}", "created_at": moment, "updated_at": moment,
    }
    new_id, code = rows.insert_new(conn, workflow, values)
    row.update(values, id=new_id, code=code)
    entry = audit.PendingEntry(
        workflow.name, new_id, code, rule.name, None, to_state, who.key, used_role,
        audit.format_at(moment), comment, audit.canonical_data(audit_data), flow_run_id,
        clock.channel, clock.credential, clock.simulated,
    )
    return (workflow, rule, subject, ctx, row, None, to_state), entry


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
        decision.decide_create(conn, Lookups(conn, rules_on(session)), workflow, actor, data, role, comment,
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
        planned, entry = _plan_create(conn, Lookups(conn, rules_on(session)), workflow, actor, data, role,
                                      comment, clock, flow_run_id)
        _, rule, subject, ctx, row, _, to_state = planned
        [seq] = audit.append(conn, [entry])
        outbox = rows.outbox_rows(workflow, rule, subject, ctx, row, to_state, seq)
        if outbox:
            rows.insert_outbox(conn, outbox)
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
        row = rows.load_rows(workflow, conn, [entity]).get(entity)
        if row is None:
            raise NotFound(f"{workflow.label}「{entity}」不存在", entity=entity)
        who = Lookups(conn).actor(actor)
        held = who.roles_at(row)
    finally:
        session.rollback()  # read-only: release the (PostgreSQL) row lock at once
    return decision.allowed_now(workflow, row["state"], held)


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
