"""Deciding one event, writing nothing: the actor's role where the entity lives, the reason and
input, the evidence, the guards, and the destination the workflow's machine picks.

Every refusal is a typed error from ``core.errors``; the engine turns a decision into rows, audit
entries and outbox rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, select

from core.errors import GuardFailed, InvalidInput, PermissionDenied, TransitionNotAllowed
from models.enums import Role
from models.tables import EVIDENCE
from states.actors import Actor, Lookups, scope_of_new
from states.requests import Clock
from states.workflow import ANY_OTHER, Context, EventRule, EvidenceRef, Subject, Workflow, validate_params

# (workflow, rule, subject, context, row, from_state, to_state) of one decided event
Planned = tuple[Workflow, EventRule, Subject, Context, dict[str, Any], str | None, str]


def label(workflow: Workflow, row: Mapping[str, Any]) -> str:
    return f"{workflow.label} {row['code']}"


def allowed_now(workflow: Workflow, state: str | None, roles: set[str]) -> list[EventRule]:
    return [r for r in workflow.events_from(state) if roles.intersection(r.roles)]


def _describe(rules: Sequence[EventRule]) -> str:
    return "、".join(f"{r.label}({r.name})" for r in rules) or "无"


def decide(
    workflow: Workflow,
    rule: EventRule,
    row: Mapping[str, Any],
    state: str | None,
    req_role: str | None,
    actor: Actor,
    comment: str | None,
    data: Mapping[str, Any],
    lookups: Lookups,
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
        check_evidence(lookups.conn, params)
    values = params.model_dump() if params is not None else {}
    subject = Subject(state=state, row=row, data=values, comment=comment)
    ctx = context(actor, role, row, lookups, clock)
    for guard in rule.guards:
        refusal = guard(subject, ctx)
        if refusal:
            raise GuardFailed(f"{what}不能「{rule.label}」：{refusal}", event=rule.name)
    audit_data = params.model_dump(mode="json", exclude_none=True) if params is not None else {}
    if rule.annotate is not None:
        audit_data.update(rule.annotate(subject, ctx))
    return subject, ctx, role, audit_data


def context(
    actor: Actor, role: str, row: Mapping[str, Any], lookups: Lookups, clock: Clock
) -> Context:
    """The one place an event's ``Context`` is built: what guards, effects and notifications see."""
    return Context(actor.key, actor.id, role, clock.moment, lookups.person_id, lookups.conn,
                   lookups.memo, roles_of=lambda key: lookups.actor(key).roles_at(row),
                   reference_time=clock.reference, rules=lookups.rules)


@cache
def _evidence_fields(params_type: type[Any]) -> tuple[str, ...]:
    """The fields of a params model that hold evidence references (checked once per model)."""
    fields = []
    for name, info in params_type.model_fields.items():
        if "EvidenceRef" in repr(info.annotation):
            fields.append(name)
    return tuple(fields)


def check_evidence(conn: Connection, params: Any) -> None:
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


def refuse_state(
    workflow: Workflow, rule: EventRule, row: Mapping[str, Any], actor: Actor
) -> TransitionNotAllowed:
    state = row["state"]
    allowed = allowed_now(workflow, state, actor.roles_at(row))
    return TransitionNotAllowed(
        f"{label(workflow, row)} 当前状态为「{workflow.state_label(state)}」({state})，"
        f"不能执行「{rule.label}」({rule.name})。您现在可以执行：{_describe(allowed)}",
        state=state,
        allowed=[r.name for r in allowed],
    )


def destination(workflow: Workflow, rule: EventRule, subject: Subject) -> str | None:
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


def decide_create(
    conn: Connection, lookups: Lookups, workflow: Workflow, actor: str, data: Mapping[str, Any],
    role: str | None, comment: str | None, clock: Clock, trusted: bool = False,
) -> tuple[dict[str, Any], dict[str, Any], Subject, Context, str, dict[str, Any], dict[str, Any]]:
    """Everything a create checks (scope, role, reason, input, guards) and the columns its effect
    sets, without writing: (row stub, scope columns, subject, context, role, audit data, columns)."""
    rule = workflow.create_event
    row, scope_values, what = scope_of_new(conn, workflow, data)
    subject, ctx, used_role, audit_data = decide(
        workflow, rule, row, None, role, lookups.actor(actor), comment, data, lookups, clock, what,
        trusted)
    changes = rule.effect(subject, ctx) if rule.effect else {}
    return row, scope_values, subject, ctx, used_role, audit_data, changes
