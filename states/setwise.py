"""``fire_many``'s set-wise form for a uniform batch: one event, by one actor in one role with one
comment, on distinct entities, that neither spawns nor cascades (the sweeps' and bulk actions'
shape).

The rows come in one statement (``rows.load_set``); the actor's roles and the event's context are
worked out once per distinct place (unit path, jurisdiction path, industry, department), the
reason and the input once per distinct input; guards, effects and notifications still run for
every row, in request order, so each refusal is the one ``fire`` would raise. Updates, audit rows
and outbox rows are built as tuples and written set-wise: executemany on SQLite, ``UPDATE … FROM
unnest`` and ``COPY`` on PostgreSQL. Nothing is written before every request is decided.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection

from core.errors import ConcurrentUpdate, GuardFailed, InvalidInput, NotFound, PermissionDenied, SafeloopError
from models.enums import Role
from states import audit, decision, rawdb, rows
from states.actors import Actor, Lookups, refuse_internal_actor
from states.requests import BatchResult, Clock, FireRequest, FireResult, Origin
from states.workflow import Context, EventRule, Subject, Workflow, validate_params

MIN_BATCH = 2  # below this the general path is as quick


def uniform_rule(workflow: Workflow, requests: Sequence[FireRequest]) -> EventRule | None:
    """The batch's one rule if the set-wise path applies to it, else None."""
    if len(requests) < MIN_BATCH:
        return None
    first = requests[0]
    rule = workflow.events.get(first.event)
    if rule is None or rule.spawn is not None or rule.cascade is not None:
        return None
    event, actor, role, comment = first.event, first.actor, first.role, first.comment
    entities = set()
    for request in requests:
        if (request.event != event or request.actor != actor or request.role != role
                or request.comment != comment):
            return None
        entities.add(request.entity)
    if len(entities) != len(requests):
        return None  # an entity twice: each event must see the one before (general path)
    return rule


class _Decided:
    """What a batch works out once: per place the role and context (or the refusal), per input
    the validated values and audit data (or the refusal)."""

    def __init__(self, workflow: Workflow, rule: EventRule, actor: Actor, request: FireRequest,
                 lookups: Lookups, clock: Clock) -> None:
        self.workflow, self.rule, self.actor = workflow, rule, actor
        self.req_role, self.comment = request.role, request.comment
        self.lookups, self.clock = lookups, clock
        self.places: dict[tuple[Any, ...], tuple[str, Context] | set[str]] = {}
        self.inputs: dict[str, tuple[dict[str, Any], dict[str, Any], str | None] | SafeloopError] = {}
        self.reason_missing = rule.requires_reason and not (request.comment or "").strip()

    def place(self, row: dict[str, Any]) -> tuple[str, Context]:
        """The role used and the context where ``row`` lives; raises PermissionDenied as
        ``decision.decide`` does (naming the row). A context serves every row of its place: what
        it reads of the row (``roles_of``) is the row's place alone."""
        key = (row["_unit_path"], row["_jur_path"], row.get("_industry"), row.get("department_id"))
        found = self.places.get(key)
        if found is None:
            held = self.actor.roles_at(row)
            candidates = [r for r in self.rule.roles if r in held]
            if self.req_role is not None:
                candidates = [r for r in candidates if r == self.req_role]
            found = self.places[key] = (
                (candidates[0], decision.context(self.actor, candidates[0], row, self.lookups,
                                                 self.clock)) if candidates else held)
        if isinstance(found, set):
            rule, actor = self.rule, self.actor
            needed = "、".join(Role(r).label for r in rule.roles)
            mine = "、".join(Role(r).label for r in sorted(found)) or "无"
            raise PermissionDenied(
                f"{actor.key} 无权对{decision.label(self.workflow, row)}执行「{rule.label}」："
                f"需要角色 {needed}，其在该单位的角色为 {mine}{actor.outside_department(row)}",
                event=rule.name, roles=sorted(found))
        return found

    def input(self, data: Any) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        """(values, audit data, its canonical text or None if an annotation adds to it) for the
        request's input; raises as ``decision.decide`` does (reason, computed fields, params,
        evidence)."""
        key = repr(sorted(data.items())) if data else ""
        found = self.inputs.get(key)
        if found is None:
            try:
                found = self._input(data)
            except SafeloopError as exc:
                found = exc
            self.inputs[key] = found
        if isinstance(found, SafeloopError):
            raise _again(found)
        return found

    def _input(self, data: Any) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        rule = self.rule
        if self.reason_missing:
            raise InvalidInput(f"执行「{rule.label}」必须填写原因（--reason）", event=rule.name)
        forged = sorted(set(data).intersection(rule.computed))
        if forged:
            raise InvalidInput(
                f"「{'、'.join(forged)}」由系统计算并记入审计日志，不能由操作人提供", fields=forged)
        params = validate_params(rule, data)
        if params is not None:
            decision.check_evidence(self.lookups.conn, params)
        values = params.model_dump() if params is not None else {}
        audit_data = params.model_dump(mode="json", exclude_none=True) if params is not None else {}
        text = None if rule.annotate is not None else audit.canonical_data(audit_data)
        return values, audit_data, text


def _again(exc: SafeloopError) -> SafeloopError:
    """A fresh copy of a refusal worked out once, for each request it refuses."""
    copy = type(exc)(exc.message, **exc.details)
    copy.__cause__ = exc.__cause__
    return copy


def fire_uniform(
    conn: Connection,
    workflow: Workflow,
    rule: EventRule,
    requests: Sequence[FireRequest],
    lookups: Lookups,
    clock: Clock,
    origin: Origin,
    flow_run_id: str | None,
    skip_refused: bool,
) -> BatchResult | None:
    """Decide every request, then write the batch set-wise; raise the first refusal (nothing
    written) unless ``skip_refused``, which reports refusals and writes the rest. None, having
    written nothing, if the batch names an entity twice (by id and by code): the general path
    then takes it. The caller commits or rolls back."""
    result = BatchResult()
    moment, at_text = clock.moment, audit.format_at(clock.moment)
    loaded = rows.load_set(workflow, conn, [r.entity for r in requests])
    named = [loaded[r.entity]["id"] for r in requests if r.entity in loaded]
    if len(set(named)) != len(named):
        return None
    first = requests[0]
    decided: _Decided | None = None
    accepted: list[tuple[dict[str, Any], Subject, Context, str, str]] = []
    entries: list[tuple[Any, ...]] = []
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    shapes: dict[tuple[tuple[str, ...], bool], tuple[Any, list[tuple[Any, ...]]]] = {}
    guards, effect, annotate = rule.guards, rule.effect, rule.annotate
    sources, name = rule.sources, workflow.name
    for request in requests:
        try:
            refuse_internal_actor(request.actor, origin)
            row = loaded.get(request.entity)
            if row is None:
                raise NotFound(f"{workflow.label}「{request.entity}」不存在", entity=request.entity)
            if request.expected_version is not None and request.expected_version != row["version"]:
                raise ConcurrentUpdate(
                    f"{decision.label(workflow, row)} 已被他人修改（版本 {row['version']}，"
                    f"您看到的是 {request.expected_version}），请刷新后重试",
                    version=row["version"],
                )
            if decided is None:
                decided = _Decided(workflow, rule, lookups.actor(first.actor), first, lookups,
                                   clock)
            state = row["state"]
            if state not in sources:
                raise decision.refuse_state(workflow, rule, row, decided.actor)
            role, ctx = decided.place(row)
            values, audit_data, data_text = decided.input(request.data)
            subject = Subject(state, row, dict(values), request.comment)
            for guard in guards:
                refusal = guard(subject, ctx)
                if refusal:
                    raise GuardFailed(
                        f"{decision.label(workflow, row)}不能「{rule.label}」：{refusal}",
                        event=rule.name)
            if annotate is not None:
                data_text = audit.canonical_data({**audit_data, **annotate(subject, ctx)})
            to_state = decision.destination(workflow, rule, subject)
            if to_state is None:
                raise decision.refuse_state(workflow, rule, row, decided.actor)
            changes = effect(subject, ctx) if effect is not None else {}
        except SafeloopError as exc:
            if not skip_refused:
                raise
            result.refused.append((request, exc))
            continue
        old_version = row["version"]
        row.update(changes, state=to_state, version=old_version + 1, updated_at=moment)
        shape = (tuple(changes), to_state != state)
        found = shapes.get(shape)
        if found is None:
            columns = {*changes, "version", "updated_at"}
            if to_state != state:  # as the general path: a self-loop leaves the indexed column be
                columns.add("state")
            key = tuple(sorted(columns))  # at least version and updated_at: a tuple comes back
            found = shapes[shape] = (itemgetter(*key), groups.setdefault(key, []))
        getter, group = found
        group.append((*getter(row), row["id"], old_version))
        entries.append((name, row["id"], row["code"], rule.name, state, to_state,
                        decided.actor.key, role, at_text, request.comment, data_text,
                        flow_run_id, clock.channel, clock.credential, clock.simulated))
        accepted.append((row, subject, ctx, state, to_state))
    if not accepted:
        return result
    for columns, params in groups.items():
        _write(conn, workflow, columns, params)
    seqs = audit.append_values(conn, entries)
    outbox: list[tuple[Any, ...]] = []
    if rule.notify is not None:
        for seq, (row, subject, ctx, _, to_state) in zip(seqs, accepted, strict=True):
            outbox += rows.outbox_tuples(workflow, rule, subject, ctx, row, to_state, seq)
    if outbox:
        rows.insert_outbox_tuples(conn, outbox)
    result.applied = [
        FireResult(row["id"], row["code"], rule.name, state, to_state, row["version"], ctx.role,
                   seq)
        for seq, (row, _, ctx, state, to_state) in zip(seqs, accepted, strict=True)
    ]
    return result


def _write(conn: Connection, workflow: Workflow, columns: tuple[str, ...],
           params: list[tuple[Any, ...]]) -> None:
    """Versioned updates of one column set: ``UPDATE … FROM unnest`` on PostgreSQL, executemany
    elsewhere; a row whose version moved meanwhile refuses the whole batch."""
    table = workflow.table
    done = rawdb.update_from_unnest(conn, table, columns, params)
    if done is None:
        done = rawdb.executemany(conn, table, columns, ("id", "version"), params)
    if done is None:
        done = rows.versioned_update(conn, table, columns, params)
    if done != len(params):
        raise ConcurrentUpdate(
            f"{workflow.label}已被他人同时修改（{len(params) - done} 条），本次操作未生效，请重试")
