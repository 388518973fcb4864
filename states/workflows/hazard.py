"""The hazard closed loop (DOMAIN.md "Hazard lifecycle") as data.

    reported ─assign─▶ rectifying ─submit─▶ pending_acceptance ─accept─▶ closed
       │ (general)        ▲                        │
       │                  └────────reject──────────┘
       ├─assign (major)─▶ planning ─approve_plan (six parts)─▶ rectifying
       ├─fix_on_spot (general, with evidence)─▶ pending_acceptance
       └─cancel (reason)─▶ cancelled
    regrade, extend_deadline, escalate, draft_plan: logged events on open hazards
"""

from __future__ import annotations

from typing import Any

from models.db import as_utc
from models.enums import HazardGrade, HazardSource
from models.tables import HAZARD as HAZARD_TABLE
from states.workflow import Branch, Context, EmptyParams, EventRule, Subject, Workflow
from states.workflows.common import (
    STAY,
    DeadlineParams,
    EscalateParams,
    notify_roles,
    on_escalate,
    stamp,
)
from states.workflows.hazard_params import (
    PLAN_PARTS,
    AssignParams,
    FixOnSpotParams,
    ListingLink,
    PlanParams,
    RegradeParams,
    ReinspectParams,
    ReportParams,
    SubmitParams,
)

STATES: dict[str, str] = {
    "reported": "已上报",
    "planning": "制定治理方案",
    "rectifying": "整改中",
    "pending_acceptance": "待验收",
    "accepted": "验收通过待销号（挂牌督办中）",
    "closed": "已销号",
    "cancelled": "已撤销",
}
OPEN_STATES = ("reported", "planning", "rectifying", "pending_acceptance")
ESCALATION_LEVELS = {1: "单位负责人", 2: "主要负责人", 3: "监管部门"}


# ---- guards: each returns a zh-CN refusal or None ------------------------------------------


def deadline_in_future(subject: Subject, ctx: Context) -> str | None:
    deadline = as_utc(subject.data["deadline"])
    if deadline is not None and deadline <= ctx.now:
        return f"整改期限 {deadline:%Y-%m-%d %H:%M} 不在未来（当前 {ctx.now:%Y-%m-%d %H:%M} UTC）"
    return None


def deadline_later_than_current(subject: Subject, ctx: Context) -> str | None:
    current = as_utc(subject.row["deadline"])
    new = as_utc(subject.data["deadline"])
    if current is not None and new is not None and new <= current:
        return f"新期限 {new:%Y-%m-%d} 必须晚于原期限 {current:%Y-%m-%d}"
    return None


def found_not_in_future(subject: Subject, ctx: Context) -> str | None:
    found = as_utc(subject.data.get("found_at"))
    if found is not None and found > ctx.now:
        return f"发现时间 {found:%Y-%m-%d %H:%M} 晚于当前时间（UTC），不能填写将来的时间"
    return None


def plan_complete(subject: Subject, _ctx: Context) -> str | None:
    plan = merged_plan(subject)
    missing = [label for key, label in PLAN_PARTS.items() if not (plan.get(key) or "").strip()]
    if missing:
        return "重大隐患治理方案不完整，缺少：" + "、".join(missing)
    return None


def only_general(subject: Subject, _ctx: Context) -> str | None:
    if subject.row["grade"] != HazardGrade.general:
        return "重大隐患不能现场整改，须制定治理方案"
    return None


def not_self_acceptance(subject: Subject, ctx: Context) -> str | None:
    """Who checks the work is neither who did it nor who answers for it (职责分离)."""
    if ctx.actor_id is None:
        return None
    if ctx.actor_id == subject.row["rectifier_id"]:
        return "复查、验收人不能是整改人本人（职责分离）"
    if ctx.actor_id == subject.row["owner_id"]:
        return "复查、验收人不能是整改责任人本人（职责分离）"
    return None


# Who may be named: an owner must be able to submit the rectification, an acceptor to accept it,
# in the hazard's own unit (not an auditor, not a regulator, not another enterprise's person).
OWNER_ROLES = ("rectifier", "safety_officer", "unit_head")
ACCEPTOR_ROLES = ("principal", "regulator", "unit_head", "safety_officer")


def assignees_can_act(subject: Subject, ctx: Context) -> str | None:
    if ctx.roles_of is None:
        return None
    d = subject.data
    owner_roles = ctx.roles_of(d["owner"])
    if not owner_roles.intersection(OWNER_ROLES):
        return (f"整改责任人「{d['owner']}」在该隐患所在单位没有可提交整改的角色"
                f"（需要整改责任人、安全管理员或单位负责人）")
    acceptor = d.get("acceptor")
    if acceptor is None:
        return None
    if acceptor == d["owner"]:
        return "验收人不能是整改责任人本人（职责分离）"
    wanted = ("principal", "regulator") if subject.row["grade"] == HazardGrade.major else ACCEPTOR_ROLES
    if not ctx.roles_of(acceptor).intersection(wanted):
        return f"验收人「{acceptor}」在该隐患所在单位没有验收权限"
    return None


def designated_acceptor(subject: Subject, ctx: Context) -> str | None:
    acceptor = subject.row["acceptor_id"]
    if acceptor is not None and acceptor != ctx.actor_id and ctx.role not in ("principal",):
        return "该隐患已指定验收人，只有指定验收人或主要负责人可以验收"
    return None


def major_needs_principal(subject: Subject, ctx: Context) -> str | None:
    if subject.row["grade"] == HazardGrade.major and ctx.role not in ("principal", "regulator"):
        return "重大隐患须由主要负责人或监管人员验收"
    return None


def owner_or_manager(subject: Subject, ctx: Context) -> str | None:
    if ctx.role == "rectifier" and subject.row["owner_id"] != ctx.actor_id:
        return "只有整改责任人本人可以提交整改结果"
    return None


def grade_changes(subject: Subject, _ctx: Context) -> str | None:
    if subject.data["grade"] == subject.row["grade"]:
        return f"隐患已是「{HazardGrade(subject.row['grade']).label}」，无需变更等级"
    return None


def level_rises(subject: Subject, _ctx: Context) -> str | None:
    if subject.data["level"] <= (subject.row["escalation_level"] or 0):
        current, wanted = subject.row["escalation_level"], subject.data["level"]
        return f"隐患已升级到第 {current} 级，不能重复升级到第 {wanted} 级"
    return None


# ---- effects: the column changes an event makes ---------------------------------------------


def merged_plan(subject: Subject) -> dict[str, Any]:
    plan = dict(subject.row.get("plan") or {})
    plan.update({k: v for k, v in subject.data.items() if k in PLAN_PARTS and v})
    return plan


def on_report(subject: Subject, ctx: Context) -> dict[str, Any]:
    d = subject.data
    return {
        "title": d["title"],
        "description": d.get("description", ""),
        "category": d["category"],
        "grade": d["grade"],
        "location": d.get("location", ""),
        "source": d.get("source", HazardSource.ad_hoc),
        "found_at": as_utc(d["found_at"]) if d.get("found_at") else ctx.as_of,
        "finder_id": ctx.actor_id,
        "inspection_task_id": d.get("inspection_task_id"),
        "checklist_item": d.get("checklist_item"),
        "risk_point_id": d.get("risk_point_id"),
    }


def on_assign(subject: Subject, ctx: Context) -> dict[str, Any]:
    d = subject.data
    return {
        "owner_id": ctx.resolve_person(d["owner"]),
        "acceptor_id": ctx.resolve_person(d["acceptor"]) if d.get("acceptor") else None,
        "deadline": as_utc(d["deadline"]),
        "measures": d.get("measures", ""),
        "funds": d.get("funds"),
    }


def on_plan(subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"plan": merged_plan(subject)}


def on_submit(subject: Subject, ctx: Context) -> dict[str, Any]:
    changes: dict[str, Any] = {"rectifier_id": ctx.actor_id}
    if subject.data.get("measures"):
        changes["measures"] = subject.data["measures"]
    return changes


def on_fix_on_spot(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {**on_submit(subject, ctx), "owner_id": ctx.actor_id}


def on_accept(subject: Subject, ctx: Context) -> dict[str, Any]:
    closed = ctx.as_of if subject.state == "closed" else None  # a listed one awaits delisting
    return {"accepted_by_id": ctx.actor_id, "accepted_at": ctx.as_of, "closed_at": closed}


def on_link_listing(subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"listing_id": subject.data["listing_id"]}


def _is_listed(subject: Subject) -> bool:
    return subject.row.get("listing_id") is not None


def on_reinspect(_subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"reinspected_by_id": ctx.actor_id, "reinspected_at": ctx.as_of}


def on_cancel(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"cancel_reason": subject.comment, "closed_at": ctx.as_of}


def on_regrade(subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"grade": subject.data["grade"]}


def on_extend(subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"deadline": as_utc(subject.data["deadline"])}


def on_remind(subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"due_reminded_for": subject.row["deadline"]}


def not_yet_reminded(subject: Subject, _ctx: Context) -> str | None:
    deadline = as_utc(subject.row["deadline"])
    if deadline is None:
        return "隐患没有整改期限，无需提醒"
    if as_utc(subject.row.get("due_reminded_for")) == deadline:
        return "已就当前期限提醒过"
    return None


# ---- notifications: recipient specs resolved by notifications/ at dispatch time -------------


def _unit(subject: Subject) -> str:
    return f"unit:{subject.row['unit_id']}"


def notify_owner(subject: Subject, _ctx: Context) -> list[str]:
    return [f"person:{subject.row['owner_id']}"] if subject.row.get("owner_id") else []


def notify_acceptor(subject: Subject, _ctx: Context) -> list[str]:
    if subject.row.get("acceptor_id"):
        return [f"person:{subject.row['acceptor_id']}"]
    return [f"role:safety_officer@{_unit(subject)}"]


def notify_escalation(subject: Subject, _ctx: Context) -> list[str]:
    role = {1: "unit_head", 2: "principal", 3: "regulator"}[subject.data["level"]]
    return [f"role:{role}@{_unit(subject)}", *notify_owner(subject, _ctx)]


notify_managers = notify_roles("safety_officer")


# ---- branch predicates ----------------------------------------------------------------------


def _is_major(subject: Subject) -> bool:
    return subject.row["grade"] == HazardGrade.major


def _regrade_to_planning(subject: Subject) -> bool:
    return (
        subject.state == "rectifying"
        and subject.data["grade"] == HazardGrade.major
        and plan_complete(subject, None) is not None  # type: ignore[arg-type]
    )


def _regrade_to_rectifying(subject: Subject) -> bool:
    return subject.state == "planning" and subject.data["grade"] == HazardGrade.general


MANAGERS = ("principal", "unit_head", "safety_officer")
REPORTERS = ("inspector", "rectifier", "safety_officer", "unit_head", "principal", "regulator")

_events = [
    EventRule(
        name="assign", label="分派整改", sources=("reported",),
        branches=(Branch("planning", _is_major), Branch("rectifying")), roles=MANAGERS,
        params=AssignParams, guards=(deadline_in_future, assignees_can_act), effect=on_assign,
        notify=notify_owner,
    ),
    EventRule(
        name="draft_plan", label="编制治理方案", sources=("planning",), branches=STAY,
        roles=("rectifier", *MANAGERS), params=PlanParams, effect=on_plan,
    ),
    EventRule(
        name="approve_plan", label="批准治理方案", sources=("planning",),
        branches=(Branch("rectifying"),), roles=("principal",), params=PlanParams,
        guards=(plan_complete,), effect=on_plan, notify=notify_owner,
    ),
    EventRule(
        name="submit", label="提交验收", sources=("rectifying",),
        branches=(Branch("pending_acceptance"),),
        roles=("rectifier", "safety_officer", "unit_head"), params=SubmitParams,
        guards=(owner_or_manager,), effect=on_submit, notify=notify_acceptor,
    ),
    EventRule(
        name="fix_on_spot", label="现场整改", sources=("reported",),
        branches=(Branch("pending_acceptance"),),
        roles=("inspector", "rectifier", "safety_officer", "unit_head"), params=FixOnSpotParams,
        guards=(only_general,), effect=on_fix_on_spot, notify=notify_acceptor,
    ),
    EventRule(
        name="reinspect", label="复查", sources=("pending_acceptance",), branches=STAY,
        roles=("inspector", "safety_officer", "unit_head", "principal", "regulator"),
        params=ReinspectParams, guards=(not_self_acceptance,), effect=on_reinspect,
    ),
    EventRule(
        name="accept", label="验收销号", sources=("pending_acceptance",),
        branches=(Branch("accepted", _is_listed), Branch("closed")),
        roles=("principal", "regulator", "unit_head", "safety_officer"), params=EmptyParams,
        guards=(not_self_acceptance, designated_acceptor, major_needs_principal), effect=on_accept,
        notify=notify_owner,
    ),
    EventRule(
        name="reject", label="验收不通过", sources=("pending_acceptance",),
        branches=(Branch("rectifying"),),
        roles=("principal", "regulator", "unit_head", "safety_officer"), params=EmptyParams,
        guards=(not_self_acceptance,), notify=notify_owner, requires_reason=True,
    ),
    EventRule(
        name="cancel", label="撤销（误报）", sources=("reported",), branches=(Branch("cancelled"),),
        roles=MANAGERS, params=EmptyParams, effect=on_cancel, requires_reason=True,
    ),
    EventRule(
        name="regrade", label="变更等级", sources=("reported", "planning", "rectifying"),
        branches=(Branch("planning", _regrade_to_planning),
                  Branch("rectifying", _regrade_to_rectifying), *STAY),
        roles=(*MANAGERS, "regulator"), params=RegradeParams, guards=(grade_changes,),
        effect=on_regrade, notify=notify_managers, requires_reason=True,
    ),
    EventRule(
        name="extend_deadline", label="延期", sources=("planning", "rectifying"), branches=STAY,
        roles=("principal", "unit_head", "regulator"), params=DeadlineParams,
        guards=(deadline_in_future, deadline_later_than_current), effect=on_extend,
        notify=notify_owner, requires_reason=True,
    ),
    EventRule(
        name="link_listing", label="挂牌督办", sources=OPEN_STATES, branches=STAY, roles=("system",),
        params=ListingLink, effect=on_link_listing, notify=notify_managers,
    ),
    EventRule(
        name="close", label="督办销号后销号", sources=("accepted",), branches=(Branch("closed"),),
        roles=("system",), params=EmptyParams, effect=stamp("closed_at"), notify=notify_owner,
    ),
    EventRule(
        name="remind_due", label="到期提醒", sources=("planning", "rectifying"), branches=STAY,
        roles=("system",), params=EmptyParams, guards=(not_yet_reminded,), effect=on_remind,
        notify=notify_owner,
    ),
    EventRule(
        name="escalate", label="逾期升级", sources=OPEN_STATES, branches=STAY,
        roles=("system", "regulator", "principal", "unit_head", "safety_officer"),
        params=EscalateParams, guards=(level_rises,), effect=on_escalate, notify=notify_escalation,
    ),
]

REPORT = EventRule(
    name="report", label="上报隐患", sources=(), branches=(Branch("reported"),), roles=REPORTERS,
    params=ReportParams, guards=(found_not_in_future,), effect=on_report, notify=notify_managers,
    # links a failed inspection item writes when it opens the hazard
    computed=("inspection_task_id", "checklist_item", "risk_point_id"),
)

HAZARD = Workflow(
    name="hazard",
    label="隐患",
    table=HAZARD_TABLE,
    code_prefix="YH",
    states=STATES,
    terminal=frozenset({"closed", "cancelled"}),
    create_event=REPORT,
    events={rule.name: rule for rule in _events},
    level_labels=ESCALATION_LEVELS,
)
