"""A recurring duty (履职任务): a meeting, a duty day, a daily risk commitment, a drill, a
major-hazard-source check, a plan evaluation — one kind of the rule pack (``core.duty_rules``)
for one unit and one period.

    due ─complete (responsible role, evidence when the kind requires it)─▶ done
     ├─remind (system, before the deadline, once)─▶ due
     └─miss (system, deadline passed, once)─▶ missed ─make_up (late)─▶ made_up
                                            └─escalate (system, ladder, each level once)─▶ missed

Done on time and made up late are different states, so the ledger tells them apart. Rows are
created set-wise by ``states.jobs.duties``; the sweep's duty part (``states.jobs.duty_sweep``)
fires remind / miss / escalate.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field

from core.duty_rules import DutyKind
from models.db import as_utc
from models.enums import Role
from models.tables import DUTY as DUTY_TABLE
from states.workflow import STRICT, Branch, Context, EmptyParams, EventRule, EvidenceRef, Subject, Workflow
from states.workflows.common import STAY, EscalateParams, on_escalate

STATES = {"due": "待履职", "done": "已按时履职", "missed": "逾期未履职", "made_up": "已补做（逾期）"}
DOERS = ("safety_officer", "unit_head", "principal")  # who may record a duty; the kind names one


class CompleteParams(BaseModel):
    model_config = STRICT
    summary: str = Field(default="", description="履职情况说明")
    evidence: list[EvidenceRef] = Field(default=[], description="证据文件（会议纪要、记录、报告等）")


def kind_of(subject: Subject, ctx: Context) -> DutyKind | None:
    """The row's kind in the rules in force (None: the pack no longer has it)."""
    return ctx.rules.duties.kinds.get(subject.row["kind"])


# ---- guards -------------------------------------------------------------------------------------


def responsible(subject: Subject, ctx: Context) -> str | None:
    """The kind's responsible role records it, or the principal (who answers for every duty)."""
    role = subject.row["role"]
    if ctx.role in (role, Role.principal.value):
        return None
    return f"此任务由{Role(role).label}负责（或主要负责人），不能以{Role(ctx.role).label}身份登记"


def with_evidence(subject: Subject, ctx: Context) -> str | None:
    if not subject.row["evidence_required"] or subject.data.get("evidence"):
        return None
    kind = kind_of(subject, ctx)
    named = "、".join(kind.evidence) if kind is not None and kind.evidence else "证据"
    return f"此任务须附证据：{named}（用 --evidence 文件）"


def deadline_passed(subject: Subject, ctx: Context) -> str | None:
    due = as_utc(subject.row["due_at"])
    return None if due is not None and ctx.as_of >= due else "尚未到履职期限"


def remind_window(subject: Subject, ctx: Context) -> str | None:
    if subject.row["reminded_at"] is not None:
        return "已提醒过"
    kind = kind_of(subject, ctx)
    due = as_utc(subject.row["due_at"])
    if kind is None or not kind.remind_before_hours or due is None:
        return "此类任务不提醒"
    if not due - timedelta(hours=kind.remind_before_hours) <= ctx.as_of < due:
        return "不在提醒时段内"
    return None


def next_level(subject: Subject, ctx: Context) -> str | None:
    """Each level once, in order, when the kind's ladder says it is reached."""
    level = subject.data["level"]
    if level != subject.row["escalation_level"] + 1:
        return f"应逐级升级：当前第 {subject.row['escalation_level']} 级"
    kind = kind_of(subject, ctx)
    if kind is None or level > len(kind.ladder):
        return f"此类任务没有第 {level} 级升级"
    due = as_utc(subject.row["due_at"])
    if due is None or ctx.as_of < due + timedelta(hours=kind.ladder[level - 1].after_hours):
        return f"尚未到第 {level} 级升级的时间"
    return None


# ---- effects and recipients --------------------------------------------------------------------


def on_complete(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"done_at": ctx.as_of, "done_by_id": ctx.actor_id}


def on_make_up(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"done_at": ctx.as_of, "done_by_id": ctx.actor_id, "late": True}


def on_remind(_subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"reminded_at": ctx.as_of}


def on_miss(_subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"missed_at": ctx.as_of}


def _at_unit(subject: Subject, roles: Any) -> list[str]:
    unit = f"unit:{subject.row['unit_id']}"
    return [f"role:{role}@{unit}" for role in dict.fromkeys(roles)]


def notify_responsible(subject: Subject, _ctx: Context) -> list[str]:
    return _at_unit(subject, [subject.row["role"]])


def notify_done(subject: Subject, ctx: Context) -> list[str]:
    """The responsible role; the regulator too when the kind reports to it (high-risk drills)."""
    kind = kind_of(subject, ctx)
    report = kind is not None and kind.report_to_regulator
    return _at_unit(subject, [subject.row["role"], *(["regulator"] if report else [])])


def notify_missed(subject: Subject, ctx: Context) -> list[str]:
    return _at_unit(subject, [subject.row["role"], Role.principal.value])


def notify_ladder(subject: Subject, ctx: Context) -> list[str]:
    kind = kind_of(subject, ctx)
    level = subject.data["level"]
    roles = kind.ladder[level - 1].notify if kind is not None and level <= len(kind.ladder) else ()
    return _at_unit(subject, roles or [Role.principal.value])


_events = [
    EventRule(
        name="complete", label="登记履职", sources=("due",), branches=(Branch("done"),),
        roles=DOERS, params=CompleteParams, guards=(responsible, with_evidence),
        effect=on_complete, notify=notify_done,
    ),
    EventRule(
        name="remind", label="到期提醒", sources=("due",), branches=STAY, roles=("system",),
        params=EmptyParams, guards=(remind_window,), effect=on_remind, notify=notify_responsible,
    ),
    EventRule(
        name="miss", label="记为逾期未履职", sources=("due",), branches=(Branch("missed"),),
        roles=("system",), params=EmptyParams, guards=(deadline_passed,), effect=on_miss,
        notify=notify_missed,
    ),
    EventRule(
        name="escalate", label="逾期升级", sources=("missed",), branches=STAY, roles=("system",),
        params=EscalateParams, guards=(next_level,), effect=on_escalate, notify=notify_ladder,
    ),
    EventRule(
        name="make_up", label="补做登记", sources=("missed",), branches=(Branch("made_up"),),
        roles=DOERS, params=CompleteParams, guards=(responsible, with_evidence),
        effect=on_make_up, notify=notify_done,
    ),
]

DUTY = Workflow(
    name="duty",
    label="履职任务",
    table=DUTY_TABLE,
    code_prefix="LZ",
    states=STATES,
    terminal=frozenset({"done", "made_up"}),
    create_event=EventRule(
        name="materialize", label="生成履职任务", sources=(), branches=(Branch("due"),),
        roles=("system",),
    ),
    events={rule.name: rule for rule in _events},
    materialized=True,
    level_labels={1: "第一级提醒", 2: "第二级督促", 3: "第三级报告监管部门"},
)
