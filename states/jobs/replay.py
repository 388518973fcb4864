"""Replay the audit trail through the workflows' machines and compare with the tables.

Replaying proves the trail is complete: every column of every entity must come out of its events
alone (each event's effect re-run on its recorded data, time and actor, facts the engine derived
read back from the row's data), each event must be allowed from the state the replay is in, and
its recorded destination must be the one the machine computes. Every column is compared except
the row's identity and timestamps, the columns a materialisation batch writes (checked against
the batch's audit row where it records them) and the few listed in ``NOT_REPLAYED`` with why;
``tests/states/test_replay_complete.py`` fails if an effect writes a column replay skips.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import Enum
from functools import cache
from typing import Any

from sqlalchemy import JSON, Connection, select

from core.rules import Rules, rules_in_force
from models import Person
from models.db import as_utc
from models.tables import AUDIT_ENTRY as AUDIT
from states.engine import scope_of_new
from states.registry import WORKFLOWS
from states.workflow import Context, Subject, Workflow, validate_params

# A row's identity and bookkeeping: not facts an event decides.
IDENTITY = frozenset({"id", "code", "created_at", "updated_at"})
# Columns a materialisation batch writes when it creates its rows (no event does): compared with
# the batch's audit row for the keys it records (period_key, due_at), not replayed per event.
CREATED_BY_BATCH: dict[str, frozenset[str]] = {
    "inspection": frozenset({"plan_id", "period_key", "period_start", "period_end", "unit_id",
                             "enterprise_id", "template_id", "assignee_id", "batch"}),
    "stat_report": frozenset({"enterprise_id", "unit_id", "period_key", "due_at", "batch"}),
    "duty": frozenset({"kind", "enterprise_id", "unit_id", "period_key", "period_end", "due_at",
                       "role", "evidence_required", "batch"}),
}
# Columns an effect writes that replay cannot reconstruct from the trail, and why. The
# completeness test allows exactly these; adding one is a decision to review.
NOT_REPLAYED: dict[tuple[str, str], str] = {
    ("risk", "checklist_dirty"): "作业标记：由检查表派生（states/jobs/risk_checklists.py）在引擎之外清除，"
                                 "派生本身记为 derive_checklist 审计事件",
}
_CHUNK = 2_000


@cache
def compared_columns(workflow: Workflow) -> tuple[str, ...]:
    """Every column of the workflow's table that replay reconstructs and compares."""
    skipped = IDENTITY | CREATED_BY_BATCH.get(workflow.name, frozenset())
    return tuple(c.name for c in workflow.table.columns
                 if c.name not in skipped and (workflow.name, c.name) not in NOT_REPLAYED)


@cache
def _json_columns(workflow: Workflow) -> frozenset[str]:
    return frozenset(c.name for c in workflow.table.columns if isinstance(c.type, JSON))


@cache
def _defaults(workflow: Workflow) -> dict[str, Any]:
    """The compared columns' values before any event: the columns' insert defaults."""
    values: dict[str, Any] = {}
    for name in compared_columns(workflow):
        default = workflow.table.c[name].default
        arg = getattr(default, "arg", None)
        values[name] = None if callable(arg) else arg
    return values


@dataclass
class Difference:
    entity_type: str
    entity_id: int
    code: str
    field: str
    replayed: Any
    table: Any
    message: str = ""

    def __post_init__(self) -> None:
        if not self.message:
            label = WORKFLOWS[self.entity_type].label if self.entity_type in WORKFLOWS else (
                self.entity_type)
            self.message = (f"{label}「{self.code}」的「{self.field}」与审计日志不符："
                            f"回放得到 {_show(self.replayed)}，数据表中为 {_show(self.table)}")


def _show(value: Any) -> str:
    if value is None:
        return "（空）"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, str):
        return f"「{value}」"
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


@dataclass
class ReplayReport:
    entities: int = 0
    events: int = 0
    differences: list[Difference] = field(default_factory=list)
    # (workflow, event) -> the columns its effect wrote during this replay (for the tests)
    written: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differences


def replay(conn: Connection, rules: Rules | None = None) -> ReplayReport:
    """Replay every entity's trail; effects apply ``rules`` (the caller's, else those built from
    the settings, ``core.rules.rules_in_force``), as the engine did when the events fired."""
    rules = rules or rules_in_force()
    report = ReplayReport()
    people = dict(conn.execute(select(Person.key, Person.id)).all())  # type: ignore[call-overload]
    memo: dict[Any, Any] = {}
    for name, workflow in WORKFLOWS.items():
        pending: dict[int, dict[str, Any]] = {}
        for entity_id, rows in _entity_streams(conn, name):
            pending[entity_id] = _replay_entity(workflow, rows, people, report, conn, memo, rules)
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
    for row in conn.execute(stmt, execution_options={"yield_per": 5_000}):
        if row[0] != current and batch:
            yield current, batch  # type: ignore[misc]
            batch = []
        current = row[0]
        batch.append(row)
    if batch:
        yield current, batch  # type: ignore[misc]


def _replay_entity(
    workflow: Workflow, rows: list[Any], people: dict[str, int], report: ReplayReport,
    conn: Connection, memo: dict[Any, Any], rules: Rules,
) -> dict[str, Any]:
    entity_id, code = rows[0][0], rows[0][1]
    state: dict[str, Any] = {**_defaults(workflow), "id": entity_id, "code": code,
                             "state": None, "version": 0}
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
        ctx = Context(actor, people.get(actor), role, moment, lambda key: people[key], conn, memo,
                      rules=rules)
        if rule is workflow.create_event:
            dest: str | None = rule.branches[0].dest
            state.update(_scope(conn, workflow, values, memo))  # unit/jurisdiction ids
        else:
            dest = workflow.destination(subject, event) if state["state"] in rule.sources else None
        if dest != to_state:
            differ(f"seq {seq} to_state", dest, to_state)
        if rule.effect:
            changes = rule.effect(subject, ctx)
            report.written.setdefault((workflow.name, rule.name), set()).update(changes)
            state.update(changes)
        state.update(state=to_state, version=state["version"] + 1)
    return state


def _scope(conn: Connection, workflow: Workflow, values: dict[str, Any],
           memo: dict[Any, Any]) -> dict[str, Any]:
    """The scope columns a create event puts a new entity in, looked up once per unit."""
    key = ("replay.scope", workflow.scope, values.get("unit"), values.get("jurisdiction"))
    if key not in memo:
        memo[key] = scope_of_new(conn, workflow, values)[1]
    return dict(memo[key])


def _compare(
    conn: Connection, workflow: Workflow, replayed: dict[int, dict[str, Any]],
    report: ReplayReport,
) -> None:
    if not replayed:
        return
    table = workflow.table
    compared = compared_columns(workflow)
    as_json = _json_columns(workflow)
    cols = [table.c.id, table.c.code, *(table.c[f] for f in compared)]
    found = {r["id"]: r for r in conn.execute(
        select(*cols).where(table.c.id.in_(list(replayed)))).mappings()}
    for entity_id, state in replayed.items():
        row = found.get(entity_id)
        if row is None:
            report.differences.append(Difference(workflow.name, entity_id, state["code"],
                                                 "row", "存在于审计日志", "表中不存在"))
            continue
        for name in compared:
            mine, theirs = state.get(name), row[name]
            if mine == theirs and type(mine) is type(theirs):
                continue  # the common case, without normalising
            if _norm(mine, name in as_json) != _norm(theirs, name in as_json):
                report.differences.append(Difference(workflow.name, entity_id, row["code"],
                                                     name, mine, theirs))


def _norm(value: Any, as_json: bool = False) -> Any:
    """A value as the database would give it back: UTC datetimes, exact decimals, enum values,
    JSON through its text form."""
    if value is None:
        return None
    if as_json:
        return json.loads(json.dumps(value, default=str, ensure_ascii=False))
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float | Decimal):
        return Decimal(str(value))
    return value


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
        _batch_facts(conn, workflow, report)
        return
    audited = select(AUDIT.c.entity_id).where(AUDIT.c.entity_type == workflow.name)
    for entity_id, code in conn.execute(
        select(table.c.id, table.c.code).where(table.c.id.not_in(audited))
    ):
        report.differences.append(
            Difference(workflow.name, entity_id, code, "row", "审计日志中没有记录", "表中存在"))


def _batch_facts(conn: Connection, workflow: Workflow, report: ReplayReport) -> None:
    """Rows created by a batch carry what the batch's audit row records for them (e.g. a stat
    report's period and due date). A batch over several periods (duties) records each period's
    facts in ``periods``, matched to a row by its ``period_key``."""
    created = CREATED_BY_BATCH.get(workflow.name, frozenset())
    facts: dict[str, dict[str, Any]] = {}
    per_period: dict[tuple[str, str], dict[str, Any]] = {}
    for batch, data in conn.execute(select(AUDIT.c.entity_code, AUDIT.c.data).where(
            AUDIT.c.entity_type == f"{workflow.name}_batch")):
        loaded = json.loads(data)
        recorded = {k: v for k, v in loaded.items() if k in created}
        if recorded:
            facts[batch] = recorded
        for period in loaded.get("periods") or ():
            per_period[(batch, period.get("period_key"))] = {
                k: v for k, v in period.items() if k in created}
    keys = sorted({k for f in (*facts.values(), *per_period.values()) for k in f} | (
        {"period_key"} if per_period else set()))
    if not keys:
        return
    table = workflow.table
    stmt = select(table.c.id, table.c.code, table.c.batch, *(table.c[k] for k in keys))
    for row in conn.execute(stmt, execution_options={"yield_per": 5_000}).mappings():
        expected = dict(facts.get(row["batch"], {}))
        if per_period:
            expected.update(per_period.get((row["batch"], row["period_key"]), {}))
        for key, value in expected.items():
            recorded = datetime.fromisoformat(value) if isinstance(row[key], datetime) else value
            if _norm(recorded) != _norm(row[key]):
                report.differences.append(Difference(
                    workflow.name, row["id"], row["code"], key, recorded, row[key]))
