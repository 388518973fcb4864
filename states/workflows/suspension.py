"""An order to suspend production for rectification (责令停产停业整顿) as data.

    ordered ─start_rectification─▶ rectifying ─request_resumption─▶ resumption_requested
                                       ▲                               │        │
                                       └────────reject_resumption──────┘        └approve_resumption─▶ resumed

Only regulators order and approve resumption (复产); an open order is shown on the enterprise
and blocks nothing silently: every effect is an event in the audit trail.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from core.errors import NotFound
from models.tables import SUSPENSION_ORDER
from states.workflow import STRICT, Branch, Context, EmptyParams, EventRule, EvidenceRef, Subject, Workflow
from states.workflows.common import REG, hazard_row, notify_principal_and_regulator, notify_regulator, stamp

STATES = {"ordered": "已责令停产停业", "rectifying": "停产整顿中",
          "resumption_requested": "已申请复产", "resumed": "已批准复产"}
OPEN = ("ordered", "rectifying", "resumption_requested")


class OrderParams(BaseModel):
    model_config = STRICT
    unit: str = Field(description="被责令的企业单位编号")
    reason: str = Field(min_length=1, description="责令停产停业整顿的理由")
    scope: Literal["full", "partial"] = Field(default="full",
                                              description="范围：full 全部停产、partial 部分停产")
    hazard: str | None = Field(default=None, description="关联隐患编号")


class ResumptionParams(BaseModel):
    model_config = STRICT
    report: list[EvidenceRef] = Field(min_length=1, description="整改报告、复产申请")
    summary: str = Field(default="", description="说明")


def hazard_exists(subject: Subject, ctx: Context) -> str | None:
    """The hazard the order names exists and belongs to the ordered enterprise."""
    code = subject.data.get("hazard")
    if code:
        hazard = hazard_row(ctx, code)
        if hazard is None:
            raise NotFound(f"隐患「{code}」不存在", hazard=code)
        if hazard["enterprise_id"] != subject.row["enterprise_id"]:
            return f"隐患「{code}」不属于被责令停产整顿的企业"
    return None


def on_order(subject: Subject, ctx: Context) -> dict[str, Any]:
    code = subject.data.get("hazard")
    hazard = hazard_row(ctx, code) if code else None
    return {"reason": subject.data["reason"], "scope": subject.data["scope"],
            "hazard_id": hazard["id"] if hazard else None, "ordered_at": ctx.as_of}


notify_enterprise = notify_principal_and_regulator

_events = [
    EventRule(
        name="start_rectification", label="开始停产整顿", sources=("ordered",),
        branches=(Branch("rectifying"),), roles=("principal",), params=EmptyParams,
        notify=notify_regulator,
    ),
    EventRule(
        name="request_resumption", label="申请复产", sources=("rectifying",),
        branches=(Branch("resumption_requested"),), roles=("principal",), params=ResumptionParams,
        effect=stamp("resumption_requested_at"), notify=notify_regulator,
    ),
    EventRule(
        name="approve_resumption", label="批准复产", sources=("resumption_requested",),
        branches=(Branch("resumed"),), roles=REG, params=EmptyParams, effect=stamp("resumed_at"),
        notify=notify_enterprise,
    ),
    EventRule(
        name="reject_resumption", label="不予复产", sources=("resumption_requested",),
        branches=(Branch("rectifying"),), roles=REG, params=EmptyParams, notify=notify_enterprise,
        requires_reason=True,
    ),
]

ORDER = EventRule(
    name="order", label="责令停产停业整顿", sources=(), branches=(Branch("ordered"),), roles=REG,
    params=OrderParams, guards=(hazard_exists,), effect=on_order, notify=notify_enterprise,
)

SUSPENSION = Workflow(
    name="suspension",
    label="停产整顿令",
    table=SUSPENSION_ORDER,
    code_prefix="TC",
    states=STATES,
    terminal=frozenset({"resumed"}),
    create_event=ORDER,
    events={rule.name: rule for rule in _events},
)
