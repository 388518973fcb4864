"""The inspection task (隐患排查任务) as data.

    scheduled ─start─▶ in_progress ─submit─▶ submitted ─review─▶ reviewed
        │                  │  ▲                 │
        │                  │  └──return_task────┘ (reason)
        ├──────────────────┴─miss (system, period over)─▶ missed
        └──────────────────┴─cancel (reason)───────────▶ cancelled

Tasks are created set-wise by the materialisation (one audit row per batch), not one by one.
Submitting records every checklist item as pass / fail / na; each failed item opens a hazard
linked to the task and item, in the same transaction (``EventRule.spawn``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from models.db import as_utc
from models.enums import HazardGrade, HazardSource, Role
from models.tables import CHECKLIST_ITEM as ITEM
from models.tables import INSPECTION_PLAN as PLAN
from models.tables import INSPECTION_TASK, UNIT
from states.workflow import (
    STRICT,
    Branch,
    Context,
    EmptyParams,
    EventRule,
    EvidenceRef,
    Spawn,
    Subject,
    Workflow,
)
from states.workflows.common import notify_roles
from states.workflows.hazard import HAZARD

STATES: dict[str, str] = {
    "scheduled": "待检查",
    "in_progress": "检查中",
    "submitted": "已提交",
    "reviewed": "已审核",
    "missed": "已漏检",
    "cancelled": "已取消",
}
OPEN_STATES = ("scheduled", "in_progress")


class ItemResult(BaseModel):
    model_config = STRICT
    item: str = Field(min_length=1, description="检查项编号")
    outcome: Literal["pass", "fail", "na"] = Field(
        description="检查结论：pass 合格、fail 不合格（生成隐患）、na 不适用")
    note: str = Field(default="", description="说明（不合格项必填）")
    location: str = Field(default="", description="地点（不合格时记入隐患）")
    # overrides the item's grade_if_failed
    grade: HazardGrade | None = Field(default=None, description="隐患等级（默认取检查项规定的等级）")
    evidence: list[EvidenceRef] = Field(default=[], description="证据文件")


class SubmitParams(BaseModel):
    model_config = STRICT
    results: list[ItemResult] = Field(
        min_length=1, description="检查结果：JSON 列表 [{item, outcome: pass/fail/na, note}]"
                                  "（或用 inspect submit --results 文件）")



# ---- lookups shared by guards and the spawner (memoised per batch: templates are immutable) --


def checklist(ctx: Context, template_id: int) -> dict[str, dict[str, Any]]:
    key = ("checklist", template_id)
    if key not in ctx.memo:
        rows = ctx.conn.execute(
            select(ITEM.c.code, ITEM.c.text, ITEM.c.category, ITEM.c.grade_if_failed,
                   ITEM.c.risk_point_id)
            .where(ITEM.c.template_id == template_id).order_by(ITEM.c.position)
        ).mappings()
        ctx.memo[key] = {r["code"]: dict(r) for r in rows}
    return ctx.memo[key]  # type: ignore[no-any-return]


def plan_source(ctx: Context, plan_id: int) -> str:
    """A regulator's plan makes regulator-sourced hazards; an enterprise's, inspection ones."""
    key = ("plan_source", plan_id)
    if key not in ctx.memo:
        ctx.memo[key] = ctx.conn.execute(
            select(PLAN.c.source).where(PLAN.c.id == plan_id)).scalar() or (
            HazardSource.inspection.value)
    return str(ctx.memo[key])


def unit_key(ctx: Context, unit_id: int) -> str:
    key = ("unit_key", unit_id)
    if key not in ctx.memo:
        ctx.memo[key] = ctx.conn.execute(select(UNIT.c.key).where(UNIT.c.id == unit_id)).scalar()
    return str(ctx.memo[key])


# ---- guards ---------------------------------------------------------------------------------


def assignee_or_manager(subject: Subject, ctx: Context) -> str | None:
    """A task assigned to a person, or to a role in the unit, is inspected by them (or a manager)."""
    assignee = subject.row["assignee_id"]
    if ctx.role == "inspector" and assignee is not None and assignee != ctx.actor_id:
        return "该任务已指定检查人，其他检查员不能代为检查"
    role = plan_assignee_role(ctx, subject.row["plan_id"])
    if assignee is None and role and ctx.role != role and ctx.role in ("inspector", "regulator"):
        return f"该任务指定由「{Role(role).label}」检查"
    return None


def plan_assignee_role(ctx: Context, plan_id: int) -> str | None:
    key = ("plan_role", plan_id)
    if key not in ctx.memo:
        ctx.memo[key] = ctx.conn.execute(
            select(PLAN.c.assignee_role).where(PLAN.c.id == plan_id)).scalar()
    return ctx.memo[key]  # type: ignore[no-any-return]


def inspector_or_manager(subject: Subject, ctx: Context) -> str | None:
    inspector = subject.row["inspector_id"]
    if ctx.role == "inspector" and inspector is not None and inspector != ctx.actor_id:
        return "只有开始检查的检查人可以提交结果"
    return assignee_or_manager(subject, ctx)


def results_cover_checklist(subject: Subject, ctx: Context) -> str | None:
    items = checklist(ctx, subject.row["template_id"])
    given = [r["item"] for r in subject.data["results"]]
    unknown = sorted(set(given) - set(items))
    if unknown:
        return "检查表中没有这些项目：" + "、".join(unknown)
    duplicated = sorted({code for code in given if given.count(code) > 1})
    if duplicated:
        return "这些项目填写了不止一次：" + "、".join(duplicated)
    missing = [code for code in items if code not in given]
    if missing:
        return f"检查表还有 {len(missing)} 项未填写：" + "、".join(missing[:10])
    unexplained = [r["item"] for r in subject.data["results"]
                   if r["outcome"] == "fail" and not r["note"].strip()]
    if unexplained:
        return "不合格项须说明问题（note）：" + "、".join(unexplained)
    return None


def reviewer_not_inspector(subject: Subject, ctx: Context) -> str | None:
    if ctx.actor_id is not None and ctx.actor_id == subject.row["inspector_id"]:
        return "审核人不能是检查人本人（职责分离）"
    return None


def period_over(subject: Subject, ctx: Context) -> str | None:
    end = as_utc(subject.row["period_end"])
    if end is not None and ctx.as_of < end:
        return f"检查周期尚未结束（截止 {end:%Y-%m-%d %H:%M} UTC），不能记为漏检"
    return None


# ---- effects, spawner, notifications --------------------------------------------------------


def on_start(_subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"inspector_id": ctx.actor_id, "started_at": ctx.as_of}


def on_submit(subject: Subject, ctx: Context) -> dict[str, Any]:
    results = [
        {"item": r["item"], "outcome": r["outcome"], "note": r["note"]}
        for r in subject.data["results"]
    ]
    started = subject.row.get("started_at") or ctx.as_of
    return {"inspector_id": subject.row.get("inspector_id") or ctx.actor_id,
            "started_at": started, "submitted_at": ctx.as_of, "results": results}


def on_review(_subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"reviewer_id": ctx.actor_id, "reviewed_at": ctx.as_of}


def hazards_for_failures(subject: Subject, ctx: Context) -> list[Spawn]:
    """Every failed item becomes a hazard linked to this task and item (对表检查)."""
    items = checklist(ctx, subject.row["template_id"])
    spawns = []
    for result in subject.data["results"]:
        if result["outcome"] != "fail":
            continue
        item = items[result["item"]]
        grade = result["grade"] or item["grade_if_failed"]
        spawns.append(Spawn(HAZARD, {
            "unit": unit_key(ctx, subject.row["unit_id"]),
            "title": item["text"][:200],
            "description": result["note"],
            "category": item["category"],
            "grade": str(grade),
            "location": result["location"],
            "source": plan_source(ctx, subject.row["plan_id"]),
            "inspection_task_id": subject.row["id"],
            "checklist_item": item["code"],
            "evidence": result["evidence"],
            **({"risk_point_id": item["risk_point_id"]} if item["risk_point_id"] else {}),
        }))
    return spawns


notify_unit_head = notify_roles("unit_head")


def notify_inspector(subject: Subject, _ctx: Context) -> list[str]:
    inspector = subject.row.get("inspector_id") or subject.row.get("assignee_id")
    return [f"person:{inspector}"] if inspector else []


INSPECTORS = ("inspector", "safety_officer", "unit_head", "principal", "regulator")
REVIEWERS = ("unit_head", "safety_officer", "principal", "regulator")
CANCELLERS = ("unit_head", "safety_officer", "principal")

_events = [
    EventRule(
        name="start", label="开始检查", sources=("scheduled",), branches=(Branch("in_progress"),),
        roles=INSPECTORS, params=EmptyParams, guards=(assignee_or_manager,), effect=on_start,
    ),
    EventRule(
        name="submit", label="提交检查结果", sources=("scheduled", "in_progress"),
        branches=(Branch("submitted"),), roles=INSPECTORS, params=SubmitParams,
        guards=(inspector_or_manager, results_cover_checklist), effect=on_submit,
        notify=notify_unit_head, spawn=hazards_for_failures,
    ),
    EventRule(
        name="review", label="审核", sources=("submitted",), branches=(Branch("reviewed"),),
        roles=REVIEWERS, params=EmptyParams, guards=(reviewer_not_inspector,), effect=on_review,
        notify=notify_inspector,
    ),
    EventRule(
        name="return_task", label="退回重检", sources=("submitted",), branches=(Branch("in_progress"),),
        roles=REVIEWERS, params=EmptyParams, guards=(reviewer_not_inspector,),
        notify=notify_inspector, requires_reason=True,
    ),
    EventRule(
        name="miss", label="记为漏检", sources=OPEN_STATES, branches=(Branch("missed"),),
        roles=("system",), params=EmptyParams, guards=(period_over,), notify=notify_unit_head,
    ),
    EventRule(
        name="cancel", label="取消任务", sources=OPEN_STATES, branches=(Branch("cancelled"),),
        roles=CANCELLERS, params=EmptyParams, requires_reason=True,
    ),
]

MATERIALIZE = EventRule(
    name="materialize", label="生成排查任务", sources=(), branches=(Branch("scheduled"),),
    roles=("system",),
)

INSPECTION = Workflow(
    name="inspection",
    label="排查任务",
    table=INSPECTION_TASK,
    code_prefix="XC",
    states=STATES,
    terminal=frozenset({"reviewed", "missed", "cancelled"}),
    create_event=MATERIALIZE,
    events={rule.name: rule for rule in _events},
    materialized=True,
)
