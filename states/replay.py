"""Replay the audit trail through the workflows' machines and compare with the tables.

Replaying proves the trail is complete: every entity's state, version and key fields must come
out of its events alone, each event must be allowed from the state the replay is in, and its
recorded destination must be the one the machine computes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from models import AuditEntry, Person
from states.engine import scope_of_new
from states.registry import WORKFLOWS
from states.workflow import Context, Subject, Workflow, validate_params

AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]
COMPARED = ("state", "version", "grade", "owner_id", "acceptor_id", "rectifier_id",
            "escalation_level")
_CHUNK = 2_000


@dataclass
class Difference:
    entity_type: str
    entity_id: int
    code: str
    field: str
    replayed: Any
    table: Any


@dataclass
class ReplayReport:
    entities: int = 0
    events: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def replay(conn: Connection) -> ReplayReport:
    report = ReplayReport()
    people = dict(conn.execute(select(Person.key, Person.id)).all())  # type: ignore[call-overload]
    memo: dict[Any, Any] = {}
    for name, workflow in WORKFLOWS.items():
        pending: dict[int, dict[str, Any]] = {}
        for entity_id, rows in _entity_streams(conn, name):
            pending[entity_id] = _replay_entity(workflow, rows, people, report, conn, memo)
            if len(pending) >= _CHUNK:
                _compare(conn, workflow, pending, report)
                pending = {}
        _compare(conn, workflow, pending, report)
        _missing_from_trail(conn, workflow, report)
    return report


def _entity_streams(conn: Connection, entity_type: str) -> Iterator[tuple[int, list[Any]]]:
    stmt = (
        select(AUDIT.c.entity_id, AUDIT.c.entity_code, AUDIT.c.event, AUDIT.c.from_state,
               AUDIT.c.to_state, AUDIT.c.actor, AUDIT.c.actor_role, AUDIT.c.at, AUDIT.c.comment,
               AUDIT.c.data, AUDIT.c.seq)
        .where(AUDIT.c.entity_type == entity_type)
        .order_by(AUDIT.c.entity_id, AUDIT.c.seq)
    )
    current: int | None = None
    batch: list[Any] = []
    for row in conn.execution_options(yield_per=5_000).execute(stmt):
        if row[0] != current and batch:
            yield current, batch  # type: ignore[misc]
            batch = []
        current = row[0]
        batch.append(row)
    if batch:
        yield current, batch  # type: ignore[misc]


def _replay_entity(
    workflow: Workflow, rows: list[Any], people: dict[str, int], report: ReplayReport,
    conn: Connection, memo: dict[Any, Any],
) -> dict[str, Any]:
    entity_id, code = rows[0][0], rows[0][1]
    state: dict[str, Any] = {"id": entity_id, "code": code, "state": None, "version": 0,
                             "plan": None, "escalation_level": 0, "deadline": None}
    if workflow.materialized and rows[0][2] != workflow.create_event.name:
        # created by a materialisation batch: starts where the create event puts it
        state.update(state=workflow.create_event.branches[0].dest, version=1)
    report.entities += 1

    def differ(field_name: str, replayed: Any, recorded: Any) -> None:
        report.differences.append(
            Difference(workflow.name, entity_id, code, field_name, replayed, recorded))

    for row in rows:
        report.events += 1
        _, _, event, from_state, to_state, actor, role, at, comment, data, seq = row
        rule = workflow.create_event if event == workflow.create_event.name else (
            workflow.events.get(event))
        if rule is None:
            differ(f"seq {seq} event", "未知操作", event)
            continue
        if from_state != state["state"]:
            differ(f"seq {seq} from_state", state["state"], from_state)
        params = validate_params(rule, json.loads(data))
        values = params.model_dump() if params is not None else {}
        subject = Subject(state=state["state"], row=state, data=values, comment=comment)
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        ctx = Context(actor, people.get(actor), role, moment, lambda key: people[key], conn, memo)
        if rule is workflow.create_event:
            dest: str | None = rule.branches[0].dest
            state.update(scope_of_new(conn, workflow, values)[1])  # unit/jurisdiction ids
        else:
            dest = workflow.destination(subject, event) if state["state"] in rule.sources else None
        if dest != to_state:
            differ(f"seq {seq} to_state", dest, to_state)
        if rule.effect:
            state.update(rule.effect(subject, ctx))
        state.update(state=to_state, version=state["version"] + 1)
    return state


def _compare(
    conn: Connection, workflow: Workflow, replayed: dict[int, dict[str, Any]],
    report: ReplayReport,
) -> None:
    if not replayed:
        return
    table = workflow.table
    cols = [table.c.id, table.c.code, *(table.c[f] for f in COMPARED if f in table.c)]
    found = {r["id"]: r for r in conn.execute(
        select(*cols).where(table.c.id.in_(list(replayed)))).mappings()}
    for entity_id, state in replayed.items():
        row = found.get(entity_id)
        if row is None:
            report.differences.append(Difference(workflow.name, entity_id, state["code"],
                                                 "row", "存在于审计日志", "表中不存在"))
            continue
        for name in COMPARED:
            if name in row and state.get(name) != row[name]:
                report.differences.append(Difference(workflow.name, entity_id, row["code"],
                                                     name, state.get(name), row[name]))


def _missing_from_trail(conn: Connection, workflow: Workflow, report: ReplayReport) -> None:
    table = workflow.table
    if workflow.materialized:
        # every row must belong to a batch whose creation the trail records
        audited = select(AUDIT.c.entity_code).where(
            AUDIT.c.entity_type == f"{workflow.name}_batch")
        for entity_id, code in conn.execute(
            select(table.c.id, table.c.code).where(table.c.batch.not_in(audited))
        ):
            report.differences.append(Difference(
                workflow.name, entity_id, code, "row", "审计日志中没有生成批次记录", "表中存在"))
        return
    audited = select(AUDIT.c.entity_id).where(AUDIT.c.entity_type == workflow.name)
    for entity_id, code in conn.execute(
        select(table.c.id, table.c.code).where(table.c.id.not_in(audited))
    ):
        report.differences.append(
            Difference(workflow.name, entity_id, code, "row", "审计日志中没有记录", "表中存在"))
