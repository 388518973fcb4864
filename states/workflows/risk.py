"""The risk point (风险点) under grading and control (DOMAIN.md "Risk grading") as data.

    identified ─evaluate─▶ evaluated ─approve─▶ approved ─due_review (yearly) / report_change─▶ review_due
     ▲  revise               │  ▲ evaluate                                                  revise │
     └───return_evaluation───┘  └────────────────────────evaluate──────────────────────────────────┘
    retire (reason): any open state ─▶ retired

An evaluation's score and grade come from its factors and the configured bands and are written
into its audit row with the previous grade, so a grade change is always an event with both
grades. The approved grade stays in force (control tier, derived checklists) until a new
evaluation is approved.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy import select

from core.errors import InvalidInput
from models.db import as_utc
from models.enums import MeasureKind, RiskGrade, RiskKind, Tier
from models.tables import RISK_POINT, UNIT
from models.tables import SITE_AREA as AREA
from states import risk_grading
from states.workflow import STRICT, Branch, Context, EmptyParams, EventRule, Subject, Workflow
from states.workflows.common import STAY, notify_roles

STATES: dict[str, str] = {
    "identified": "已辨识",
    "evaluated": "已评价待审批",
    "approved": "已审批（管控中）",
    "review_due": "待复评",
    "retired": "已注销",
}
CONTROLLED = ("approved", "review_due")  # an approved grade is in force
OPEN_STATES = ("identified", "evaluated", "approved", "review_due")
# 《企业职工伤亡事故分类》GB 6441-1986: the twenty accident types.
ACCIDENT_TYPES = (
    "物体打击", "车辆伤害", "机械伤害", "起重伤害", "触电", "淹溺", "灼烫", "火灾", "高处坠落",
    "坍塌", "冒顶片帮", "透水", "放炮", "火药爆炸", "瓦斯爆炸", "锅炉爆炸", "容器爆炸", "其它爆炸",
    "中毒和窒息", "其它伤害",
)


class MeasureParam(BaseModel):
    model_config = STRICT
    kind: MeasureKind = Field(description="措施类别")
    text: str = Field(min_length=1, max_length=500, description="措施内容")


def _accident_types(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    unknown = [v for v in values if v not in ACCIDENT_TYPES]
    if unknown:
        raise ValueError(f"不是 GB 6441 的事故类型：{'、'.join(unknown)}；可选：{'、'.join(ACCIDENT_TYPES)}")
    return values


# What a register field holds (identify and revise describe their fields alike).
ABOUT = {
    "name": "风险点名称", "kind": "类型", "area": "所在区域（须已登记）",
    "hazard_factors": "危险有害因素", "accident_types": "可能导致的事故类型（GB 6441）",
    "consequences": "事故后果", "measures": "管控措施：JSON 列表 [{kind, text}]",
    "responsible": "责任人编号", "contacts": "联系方式", "emergency_contacts": "应急联系电话",
}


class IdentifyParams(BaseModel):
    model_config = STRICT
    unit: str = Field(min_length=1, description="所在单位编号")
    name: str = Field(min_length=1, max_length=200, description=ABOUT["name"])
    kind: RiskKind = Field(description=ABOUT["kind"])
    area: str | None = Field(default=None, description=ABOUT["area"])
    hazard_factors: list[str] = Field(min_length=1, description=ABOUT["hazard_factors"])
    accident_types: list[str] = Field(min_length=1, description=ABOUT["accident_types"])
    consequences: str = Field(default="", description=ABOUT["consequences"])
    measures: list[MeasureParam] = Field(min_length=1, description=ABOUT["measures"])
    responsible: str | None = Field(default=None, description=ABOUT["responsible"])
    contacts: str = Field(default="", max_length=200, description=ABOUT["contacts"])
    emergency_contacts: list[str] = Field(default=[], description=ABOUT["emergency_contacts"])

    _types = field_validator("accident_types")(_accident_types)


class ReviseParams(BaseModel):
    model_config = STRICT
    name: str | None = Field(default=None, min_length=1, max_length=200, description=ABOUT["name"])
    kind: RiskKind | None = Field(default=None, description=ABOUT["kind"])
    area: str | None = Field(default=None, description=ABOUT["area"])
    hazard_factors: list[str] | None = Field(default=None, min_length=1,
                                             description=ABOUT["hazard_factors"])
    accident_types: list[str] | None = Field(default=None, min_length=1,
                                             description=ABOUT["accident_types"])
    consequences: str | None = Field(default=None, description=ABOUT["consequences"])
    measures: list[MeasureParam] | None = Field(default=None, min_length=1,
                                                description=ABOUT["measures"])
    responsible: str | None = Field(default=None, description=ABOUT["responsible"])
    contacts: str | None = Field(default=None, max_length=200, description=ABOUT["contacts"])
    emergency_contacts: list[str] | None = Field(default=None,
                                                 description=ABOUT["emergency_contacts"])

    _types = field_validator("accident_types")(_accident_types)


class EvaluateParams(BaseModel):
    """Method and factors; score, grade, previous grade and bands are filled in by the engine
    (``annotate``) and read back by replay."""

    model_config = STRICT
    method: Literal["lec", "ls"] = Field(description="评价方法：lec（D=L×E×C）或 ls（R=L×S）")
    factors: dict[str, float] = Field(
        description='因素取值：JSON 对象，如 {"L": 3, "E": 6, "C": 15}')
    note: str = Field(default="", description="评价说明")
    score: float | None = None
    grade: RiskGrade | None = None
    previous_grade: RiskGrade | None = None
    bands: dict[str, float] | None = None

    @model_validator(mode="after")
    def _factors_allowed(self) -> EvaluateParams:
        try:
            risk_grading.evaluate(self.method, self.factors)
        except InvalidInput as exc:
            raise ValueError(exc.message) from None
        return self


class ApproveParams(BaseModel):
    """Nothing to give; the engine records the grade put in force and the one it replaces."""

    model_config = STRICT
    grade: RiskGrade | None = None
    previous_grade: RiskGrade | None = None
    control_unit: str | None = None


class ChangeParams(BaseModel):
    model_config = STRICT
    trigger: Literal["change", "accident", "other"] = Field(default="change", description="复评原因")


TRIGGERS = {"change": "工艺、设备、人员或管理发生变化", "accident": "发生事故或险情", "other": "其他原因"}


# ---- lookups ---------------------------------------------------------------------------------


def area_id(ctx: Context, enterprise_id: int, name: str) -> int | None:
    return ctx.conn.execute(select(AREA.c.id).where(
        AREA.c.enterprise_id == enterprise_id, AREA.c.name == name)).scalar()


def control_unit(ctx: Context, row: Any, grade: RiskGrade | str) -> tuple[int, str]:
    """The unit controlling a risk of ``grade``: on the risk's unit line, the deepest unit at or
    above the grade's control tier (the risk's own unit if it sits above that tier). Memoised:
    the effect and the audit annotation of one approval both ask."""
    key = ("control_unit", row["unit_id"], str(grade))
    if key not in ctx.memo:
        ctx.memo[key] = _control_unit(ctx, row, grade)
    return ctx.memo[key]  # type: ignore[no-any-return]


def _control_unit(ctx: Context, row: Any, grade: RiskGrade | str) -> tuple[int, str]:
    unit_path = row.get("_unit_path") or ctx.conn.execute(
        select(UNIT.c.path).where(UNIT.c.id == row["unit_id"])).scalar_one()
    ids = [int(p) for p in unit_path.strip("/").split("/") if p]
    rows = {r[0]: r for r in ctx.conn.execute(
        select(UNIT.c.id, UNIT.c.key, UNIT.c.tier).where(UNIT.c.id.in_(ids)))}
    line = [rows[i] for i in ids if i in rows]
    limit = risk_grading.TIER_RANK[risk_grading.STYLES[RiskGrade(grade)].tier]
    fitting = [r for r in line if risk_grading.TIER_RANK[Tier(r[2])] <= limit]
    chosen = fitting[-1] if fitting else line[0]
    return int(chosen[0]), str(chosen[1])


def evaluation_of(subject: Subject, ctx: Context) -> risk_grading.Evaluation:
    """The evaluation as recorded (replay) or computed now from the bands in force."""
    d = subject.data
    computed = risk_grading.evaluate(d["method"], d["factors"], ctx.rules.risk_bands)
    if d.get("grade") is None:
        return computed
    score = d["score"] if d.get("score") is not None else computed.score
    return risk_grading.Evaluation(d["method"], computed.factors, score, RiskGrade(d["grade"]))


# ---- guards ----------------------------------------------------------------------------------


def area_registered(subject: Subject, ctx: Context) -> str | None:
    name = subject.data.get("area")
    if name and area_id(ctx, subject.row["enterprise_id"], name) is None:
        return f"区域「{name}」尚未登记，请先用 safeloop risk area 登记区域及其坐标"
    return None


ENTERPRISE_ROLES = ("inspector", "rectifier", "safety_officer", "unit_head", "principal")


def responsible_in_unit(subject: Subject, ctx: Context) -> str | None:
    """The person answering for a risk point works in its unit (not an auditor or a regulator,
    not another enterprise's person)."""
    key = subject.data.get("responsible")
    if not key or ctx.roles_of is None:
        return None
    if not ctx.roles_of(key).intersection(ENTERPRISE_ROLES):
        return f"责任人「{key}」不是该风险点所在单位（或其上级单位）的人员"
    return None


def approver_not_evaluator(subject: Subject, ctx: Context) -> str | None:
    if ctx.actor_id is not None and ctx.actor_id == subject.row.get("evaluated_by_id"):
        return "审批人不能是评价人本人（职责分离）"
    return None


def review_is_due(subject: Subject, ctx: Context) -> str | None:
    due = subject.row.get("review_due")
    if due is None or ctx.as_of < as_utc(due):
        return "尚未到复评日期"
    return None


# ---- effects and annotations -----------------------------------------------------------------


def _descriptive(subject: Subject, ctx: Context) -> dict[str, Any]:
    d = {k: v for k, v in subject.data.items() if v is not None}
    changes: dict[str, Any] = {}
    for key in ("name", "kind", "hazard_factors", "accident_types", "consequences", "contacts",
                "emergency_contacts"):
        if key in d:
            changes[key] = str(d[key]) if key == "kind" else d[key]
    if "measures" in d:
        changes["measures"] = [{"kind": str(m["kind"]), "text": m["text"]} for m in d["measures"]]
        changes["checklist_dirty"] = True
    if "area" in d:
        changes["area_id"] = area_id(ctx, subject.row["enterprise_id"], d["area"]) if d["area"] else None
    if "responsible" in d:
        changes["responsible_id"] = ctx.resolve_person(d["responsible"]) if d["responsible"] else None
    return changes


def on_identify(subject: Subject, ctx: Context) -> dict[str, Any]:
    changes = _descriptive(subject, ctx)
    changes["checklist_dirty"] = False  # nothing to check until a grade is approved
    return changes


def on_evaluate(subject: Subject, ctx: Context) -> dict[str, Any]:
    ev = evaluation_of(subject, ctx)
    return {"method": ev.method, "factors": ev.factors, "score": ev.score, "grade": ev.grade.value,
            "evaluated_by_id": ctx.actor_id, "evaluated_at": ctx.as_of}


def note_evaluation(subject: Subject, ctx: Context) -> dict[str, Any]:
    ev = evaluation_of(subject, ctx)
    noted: dict[str, Any] = {"score": ev.score, "grade": ev.grade.value,
                             "bands": dict(ctx.rules.risk_bands[ev.method])}
    if subject.row.get("grade"):
        noted["previous_grade"] = subject.row["grade"]
    return noted


def on_approve(subject: Subject, ctx: Context) -> dict[str, Any]:
    grade = subject.row["grade"]
    unit_id, _key = control_unit(ctx, subject.row, grade)
    return {"approved_grade": grade, "control_unit_id": unit_id, "approved_by_id": ctx.actor_id,
            "approved_at": ctx.as_of, "review_reason": None, "checklist_dirty": True,
            "review_due": ctx.as_of + timedelta(days=ctx.rules.risk_review_days)}


def note_approval(subject: Subject, ctx: Context) -> dict[str, Any]:
    grade = subject.row["grade"]
    noted: dict[str, Any] = {"grade": grade,
                             "control_unit": control_unit(ctx, subject.row, grade)[1]}
    if subject.row.get("approved_grade"):
        noted["previous_grade"] = subject.row["approved_grade"]
    return noted


def on_due_review(_subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"review_reason": "定期复评"}


def on_report_change(subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"review_reason": TRIGGERS[subject.data["trigger"]]}


def on_retire(subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"checklist_dirty": bool(subject.row.get("approved_grade"))}


# ---- notifications ---------------------------------------------------------------------------


notify_approvers = notify_roles("unit_head")


def notify_controllers(subject: Subject, _ctx: Context) -> list[str]:
    specs = [f"role:safety_officer@unit:{subject.row['unit_id']}"]
    if subject.row.get("responsible_id"):
        specs.append(f"person:{subject.row['responsible_id']}")
    return specs


IDENTIFIERS = ("safety_officer", "unit_head", "principal")
APPROVERS = ("unit_head", "principal")

_events = [
    # Revising what an evaluation rests on is for points not awaiting approval: an evaluated
    # point is returned first (return_evaluation), so no approval covers unseen changes.
    EventRule(
        name="revise", label="修订风险点信息", sources=("identified", "review_due"),
        branches=STAY, roles=IDENTIFIERS, params=ReviseParams,
        guards=(area_registered, responsible_in_unit), effect=_descriptive,
    ),
    EventRule(
        name="evaluate", label="风险评价", sources=("identified", "evaluated", "review_due"),
        branches=(Branch("evaluated"),), roles=IDENTIFIERS, params=EvaluateParams,
        effect=on_evaluate, notify=notify_approvers, annotate=note_evaluation,
        computed=("score", "grade", "previous_grade", "bands"),
    ),
    EventRule(
        name="return_evaluation", label="退回重新评价", sources=("evaluated",),
        branches=(Branch("identified"),), roles=APPROVERS, params=EmptyParams,
        notify=notify_controllers, requires_reason=True,
    ),
    EventRule(
        name="approve", label="审批风险分级", sources=("evaluated",), branches=(Branch("approved"),),
        roles=APPROVERS, params=ApproveParams, guards=(approver_not_evaluator,), effect=on_approve,
        notify=notify_controllers, annotate=note_approval,
        computed=("grade", "previous_grade", "control_unit"),
    ),
    EventRule(
        name="due_review", label="到期复评", sources=("approved",), branches=(Branch("review_due"),),
        roles=("system",), params=EmptyParams, guards=(review_is_due,), effect=on_due_review,
        notify=notify_controllers,
    ),
    EventRule(
        name="report_change", label="变更或事故后复评", sources=("approved",),
        branches=(Branch("review_due"),), roles=IDENTIFIERS, params=ChangeParams,
        effect=on_report_change, notify=notify_controllers, requires_reason=True,
    ),
    EventRule(
        name="retire", label="注销风险点", sources=OPEN_STATES, branches=(Branch("retired"),),
        roles=APPROVERS, params=EmptyParams, effect=on_retire, notify=notify_controllers,
        requires_reason=True,
    ),
]

IDENTIFY = EventRule(
    name="identify", label="辨识登记风险点", sources=(), branches=(Branch("identified"),),
    roles=IDENTIFIERS, params=IdentifyParams,
    guards=(area_registered, responsible_in_unit), effect=on_identify,
)

RISK = Workflow(
    name="risk",
    label="风险点",
    table=RISK_POINT,
    code_prefix="FX",
    states=STATES,
    terminal=frozenset({"retired"}),
    create_event=IDENTIFY,
    events={rule.name: rule for rule in _events},
)
