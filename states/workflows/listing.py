"""Listed supervision of a major hazard (挂牌督办) as data (DOMAIN.md "Listed supervision").

    proposed ─list─▶ listed ─request_delisting─▶ verifying ─delist─▶ delisted
                      ▲  │ report_progress, request/decide_extension, escalate, file, publish
                      └──┴──────────────reject──────────┘

Clocks are in working days from the rules in force (``ctx.rules.listing``, ``core.listing_rules``;
defaults: filing 3, publication 5 after listing and after delisting, deadline ≤ 1 year, extension
asked ≥ 20 before the deadline and decided within 10, verification within 10 of the request,
progress every 20). Listing links the hazard (it then
cannot close until delisted); delisting needs the hazard's rectification accepted and an
evaluation report, and closes the hazard in the same transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from models.db import as_utc
from models.enums import HazardGrade
from models.tables import DEPARTMENT
from models.tables import HAZARD as HAZARD_TABLE
from models.tables import LISTING as LISTING_TABLE
from states.clock import working_days_until
from states.references import department_serves_enterprise
from states.workflow import (
    STRICT,
    Branch,
    Cascade,
    Context,
    EmptyParams,
    EventRule,
    EvidenceRef,
    Subject,
    Workflow,
)
from states.workflows.common import (
    DEADLINE,
    REG,
    STAY,
    DeadlineParams,
    EscalateParams,
    due_fields,
    dues,
    hazard_row,
    notify_principal,
    notify_principal_and_regulator,
    notify_regulator,
    noting,
    on_escalate,
    stamp,
)
from states.workflows.hazard import HAZARD
from states.workflows.hazard import OPEN_STATES as OPEN_HAZARD
from states.workflows.listing_clocks import (
    delist_dues,
    extension_dues,
    list_dues,
    note_list,
    progress_dues,
    progress_every,
    verification_dues,
)

STATES = {"proposed": "拟挂牌", "listed": "挂牌督办中", "verifying": "销号核查中",
          "delisted": "已摘牌销号"}
TERMINAL = ("delisted",)
ACTIVE = tuple(s for s in STATES if s not in TERMINAL)  # at most one per hazard (index too)
LEVELS = {1: "督办函", 2: "约谈", 3: "移送处罚（按上限处罚）"}
# duty -> (due column, done column or None, overdue column, zh label, states it applies in)
DUTIES: dict[str, tuple[str, str | None, str, str, tuple[str, ...]]] = {
    "file": ("file_due", "filed_at", "file_overdue_at", "挂牌后报上级备案", ("listed", "verifying")),
    "publish": ("publish_due", "published_at", "publish_overdue_at", "挂牌公示",
                ("listed", "verifying")),
    "progress": ("progress_due", None, "progress_overdue_at", "报送整改进展", ("listed",)),
    "extension": ("extension_due", None, "extension_overdue_at", "答复延期申请", ("listed",)),
    "verification": ("verification_due", None, "verification_overdue_at", "现场核查",
                     ("verifying",)),
    "delist_publish": ("delist_publish_due", "delist_published_at", "delist_publish_overdue_at",
                       "销号公示", ("delisted",)),
}
ENTERPRISE_ROLES = ("principal", "safety_officer", "unit_head")


class ProposeParams(BaseModel):
    model_config = STRICT
    unit: str = Field(description="隐患所在单位编号")
    hazard: str = Field(min_length=1, description="重大隐患编号")
    department: str | None = Field(default=None, description="监管部门编号")


# Due dates the engine derives (working days, from the rules in force) are written to the audit row
# (``annotate``) and read back by replay; given as input they are refused (the rules' ``computed``).


class ListParams(BaseModel):
    model_config = STRICT
    deadline: datetime = Field(description=DEADLINE)
    # None: the rules' ``progress_days``, filled in when the event fires and recorded (``note_list``)
    progress_every_days: int | None = Field(default=None, ge=1, le=60,
                                            description="进展报送间隔（工作日）")
    file_due: datetime | None = None
    publish_due: datetime | None = None
    progress_due: datetime | None = None


class ProgressParams(BaseModel):
    model_config = STRICT
    progress: str = Field(min_length=1, description="整改进展")
    evidence: list[EvidenceRef] = Field(default=[], description="证据文件")
    progress_due: datetime | None = None


class ExtensionParams(DeadlineParams):
    extension_due: datetime | None = None


class DecisionParams(BaseModel):
    model_config = STRICT
    approve: bool = Field(description="是否同意延期")


class DelistingParams(BaseModel):
    model_config = STRICT
    evaluation: list[EvidenceRef] = Field(min_length=1, description="评估报告")
    summary: str = Field(default="", description="说明")
    verification_due: datetime | None = None


class ListingEscalateParams(EscalateParams):
    """The listing's ladder: the same levels, named as the listing names them."""

    level: int = Field(ge=1, le=3, description="督办级别：1 督办函、2 约谈、3 移送处罚")


class DelistParams(BaseModel):
    model_config = STRICT
    delist_publish_due: datetime | None = None


class DutyParams(BaseModel):
    model_config = STRICT
    duty: Literal["file", "publish", "progress", "extension", "verification",
                  "delist_publish"] = Field(description="逾期的职责（系统内部）")


# ---- guards ---------------------------------------------------------------------------------


def hazard_listable(subject: Subject, ctx: Context) -> str | None:
    hazard = hazard_row(ctx, subject.data["hazard"])
    if hazard is None:
        return f"隐患「{subject.data['hazard']}」不存在"
    if hazard["grade"] != HazardGrade.major:
        return "只有重大隐患可以挂牌督办"
    if hazard["state"] not in OPEN_HAZARD:
        return f"隐患当前状态为「{HAZARD.state_label(hazard['state'])}」，不能挂牌"
    if hazard["listing_id"] is not None:
        return "该隐患已挂牌督办"
    if hazard["enterprise_id"] != subject.row["enterprise_id"]:
        return "隐患不属于挂牌单位所在企业"
    if hazard["unit_id"] != subject.row["unit_id"]:
        return "挂牌单位与隐患所在单位不一致"
    return None


def one_open_listing(subject: Subject, ctx: Context) -> str | None:
    """A hazard has at most one listing that is not delisted. The hazard row is locked first
    (PostgreSQL) so two concurrent proposals queue here and the second sees the first; the
    partial unique index ``uq_listing_open_hazard`` is the database's own backstop."""
    haz, lst = HAZARD_TABLE, LISTING_TABLE
    lock = select(haz.c.id).where(haz.c.code == subject.data["hazard"])
    if ctx.conn.dialect.name != "sqlite":  # SQLite's BEGIN IMMEDIATE already serialises writers
        lock = lock.with_for_update()
    hazard_id = ctx.conn.execute(lock).scalar()
    open_one = ctx.conn.execute(select(lst.c.code, lst.c.state).where(
        lst.c.hazard_id == hazard_id, lst.c.state.in_(ACTIVE))).first()
    if open_one is not None:
        return (f"隐患「{subject.data['hazard']}」已有未摘牌的挂牌督办 {open_one[0]}"
                f"（{STATES[open_one[1]]}），不能重复提请")
    return None


def department_fits(subject: Subject, ctx: Context) -> str | None:
    """The department named on the listing exists and serves the enterprise."""
    key = subject.data.get("department")
    return department_serves_enterprise(ctx, key, subject.row["enterprise_id"]) if key else None


def deadline_within_rules(subject: Subject, ctx: Context) -> str | None:
    deadline = as_utc(subject.data["deadline"])
    if deadline is None or deadline <= ctx.now:
        return "整改期限必须在未来"
    if deadline > ctx.as_of + timedelta(days=ctx.rules.listing.max_deadline_days):
        return "挂牌督办的整改期限不得超过一年"
    return None


def extension_in_time(subject: Subject, ctx: Context) -> str | None:
    if subject.row["extension_due"] is not None:
        return "已有待答复的延期申请"
    current = as_utc(subject.row["deadline"])
    new = as_utc(subject.data["deadline"])
    if current is None or new is None or new <= current:
        return "新期限必须晚于原期限"
    left = working_days_until(ctx.rules, ctx.as_of, current)
    notice = ctx.rules.listing.extension_notice_days
    if left < notice:
        return (f"延期须在期限前至少 {notice} 个工作日提出"
                f"（距期限仅 {left} 个工作日）")
    return None


def extension_pending(subject: Subject, _ctx: Context) -> str | None:
    return None if subject.row["extension_due"] is not None else "没有待答复的延期申请"


def level_rises(subject: Subject, _ctx: Context) -> str | None:
    if subject.data["level"] <= subject.row["escalation_level"]:
        return f"已督办到「{LEVELS[subject.row['escalation_level']]}」，不能重复"
    return None


def hazard_accepted(subject: Subject, ctx: Context) -> str | None:
    hazard = hazard_row(ctx, subject.row["hazard_id"])
    if hazard is None or hazard["state"] != "accepted":
        state = HAZARD.state_label(hazard["state"]) if hazard else "不存在"
        return f"隐患整改尚未验收通过（当前「{state}」），不能申请销号"
    return None


def duty_missed(subject: Subject, ctx: Context) -> str | None:
    due_col, done_col, overdue_col, label, states = DUTIES[subject.data["duty"]]
    due = as_utc(subject.row[due_col])
    if subject.state not in states or due is None or ctx.as_of < due:
        return f"「{label}」尚未逾期"
    if (done_col and subject.row[done_col]) or subject.row[overdue_col]:
        return f"「{label}」已完成或已记录逾期"
    return None


def not_yet(column: str, label: str) -> Any:
    def guard(subject: Subject, _ctx: Context) -> str | None:
        return f"已{label}" if subject.row[column] else None
    return guard


# ---- effects and cascades -------------------------------------------------------------------


def on_propose(subject: Subject, ctx: Context) -> dict[str, Any]:
    hazard = hazard_row(ctx, subject.data["hazard"])
    department = None
    if subject.data.get("department"):
        table = DEPARTMENT
        department = ctx.conn.execute(select(table.c.id).where(
            table.c.key == subject.data["department"])).scalar()
    return {"hazard_id": hazard["id"] if hazard else None, "department_id": department}


def on_list(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {
        "listed_at": ctx.as_of, "deadline": as_utc(subject.data["deadline"]),
        "progress_every_days": progress_every(subject, ctx),
        **dues(subject, ctx, list_dues),
    }


def on_publish(subject: Subject, ctx: Context) -> dict[str, Any]:
    column = "delist_published_at" if subject.state == "delisted" else "published_at"
    return {column: ctx.as_of}


def on_progress(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"last_progress_at": ctx.as_of, "progress_overdue_at": None,
            **dues(subject, ctx, progress_dues)}


def on_request_extension(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"requested_deadline": as_utc(subject.data["deadline"]),
            **dues(subject, ctx, extension_dues)}


def on_decide_extension(subject: Subject, _ctx: Context) -> dict[str, Any]:
    changes: dict[str, Any] = {"requested_deadline": None, "extension_due": None,
                               "extension_overdue_at": None}
    if subject.data["approve"]:
        changes["deadline"] = subject.row["requested_deadline"]
    return changes


def on_request_delisting(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"delisting_requested_at": ctx.as_of, **dues(subject, ctx, verification_dues)}


def on_reject(_subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"verification_due": None, "verification_overdue_at": None}


def on_delist(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"delisted_at": ctx.as_of, "verification_due": None,
            **dues(subject, ctx, delist_dues)}


def on_duty_missed(subject: Subject, ctx: Context) -> dict[str, Any]:
    return {DUTIES[subject.data["duty"]][2]: ctx.as_of}


def link_hazard(subject: Subject, _ctx: Context) -> list[Cascade]:
    return [Cascade(HAZARD, subject.row["hazard_id"], "link_listing",
                    {"listing_id": subject.row["id"]})]


def close_hazard(subject: Subject, _ctx: Context) -> list[Cascade]:
    return [Cascade(HAZARD, subject.row["hazard_id"], "close")]


_events = [
    EventRule(
        name="list", label="挂牌", sources=("proposed",), branches=(Branch("listed"),), roles=REG,
        params=ListParams, guards=(deadline_within_rules,), effect=on_list,
        notify=notify_principal_and_regulator, cascade=link_hazard, annotate=note_list,
        computed=due_fields(ListParams),
    ),
    EventRule(
        name="file", label="报上级备案", sources=("listed", "verifying"), branches=STAY, roles=REG,
        params=EmptyParams, guards=(not_yet("filed_at", "备案"),), effect=stamp("filed_at"),
    ),
    EventRule(
        name="publish", label="公示", sources=("listed", "verifying", "delisted"), branches=STAY,
        roles=REG, params=EmptyParams, effect=on_publish,
    ),
    EventRule(
        name="report_progress", label="报送整改进展", sources=("listed",), branches=STAY,
        roles=ENTERPRISE_ROLES, params=ProgressParams, effect=on_progress, notify=notify_regulator,
        annotate=noting(progress_dues), computed=due_fields(ProgressParams),
    ),
    EventRule(
        name="request_extension", label="申请延期", sources=("listed",), branches=STAY,
        roles=("principal",), params=ExtensionParams, guards=(extension_in_time,),
        effect=on_request_extension, notify=notify_regulator, requires_reason=True,
        annotate=noting(extension_dues), computed=due_fields(ExtensionParams),
    ),
    EventRule(
        name="decide_extension", label="答复延期申请", sources=("listed",), branches=STAY, roles=REG,
        params=DecisionParams, guards=(extension_pending,), effect=on_decide_extension,
        notify=notify_principal,
    ),
    EventRule(
        name="escalate", label="督办升级", sources=("listed",), branches=STAY,
        roles=("system", "regulator"), params=ListingEscalateParams, guards=(level_rises,),
        effect=on_escalate, notify=notify_principal_and_regulator,
    ),
    EventRule(
        name="request_delisting", label="申请销号", sources=("listed",),
        branches=(Branch("verifying"),), roles=("principal",), params=DelistingParams,
        guards=(hazard_accepted,), effect=on_request_delisting, notify=notify_regulator,
        annotate=noting(verification_dues), computed=due_fields(DelistingParams),
    ),
    EventRule(
        name="reject", label="核查不通过", sources=("verifying",), branches=(Branch("listed"),),
        roles=REG, params=EmptyParams, effect=on_reject, notify=notify_principal,
        requires_reason=True,
    ),
    EventRule(
        name="delist", label="核查通过摘牌销号", sources=("verifying",), branches=(Branch("delisted"),),
        roles=REG, params=DelistParams, guards=(hazard_accepted,), effect=on_delist,
        notify=notify_principal_and_regulator, cascade=close_hazard, annotate=noting(delist_dues),
        computed=due_fields(DelistParams),
    ),
    EventRule(
        name="duty_overdue", label="职责逾期", sources=("listed", "verifying", "delisted"),
        branches=STAY, roles=("system",), params=DutyParams, guards=(duty_missed,),
        effect=on_duty_missed, notify=notify_principal_and_regulator,
    ),
]

PROPOSE = EventRule(
    name="propose", label="提请挂牌督办", sources=(), branches=(Branch("proposed"),), roles=REG,
    params=ProposeParams, guards=(hazard_listable, one_open_listing, department_fits),
    effect=on_propose, notify=notify_regulator,
)

LISTING = Workflow(
    name="listing",
    label="挂牌督办",
    table=LISTING_TABLE,
    code_prefix="GP",
    states=STATES,
    terminal=frozenset(TERMINAL),
    create_event=PROPOSE,
    events={rule.name: rule for rule in _events},
    level_labels=LEVELS,
)
