"""What each hazard event takes (``states.workflows.hazard``'s params models), checked before any
guard runs: unknown fields refused, text trimmed and capped (``STRICT``), the CLI's and the
future API's field lists. A major hazard's plan has the six parts the regulation names.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, Field

from models.enums import HazardCategory, HazardGrade, HazardSource
from states.workflow import MAX_ID_CHARS, STRICT, EvidenceRef
from states.workflows.common import DEADLINE

# The six parts of a major hazard's rectification plan (治理方案), 原安监总局令第16号 第十五条.
PLAN_PARTS: dict[str, str] = {
    "objectives": "治理的目标和任务",
    "methods": "采取的方法和措施",
    "funds_and_materials": "经费和物资的落实",
    "organisation": "负责治理的机构和人员",
    "time_limit": "治理的时限和要求",
    "safety_and_contingency": "安全措施和应急预案",
}



def _part(key: str) -> str:
    """A plan part's field description: the regulation's name for it."""
    return f"治理方案：{PLAN_PARTS[key]}"


class ReportParams(BaseModel):
    model_config = STRICT
    unit: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="发现隐患的单位编号")
    title: str = Field(min_length=1, max_length=200, description="隐患名称")
    description: str = Field(default="", description="隐患描述")
    category: HazardCategory = Field(description="隐患类别：物的不安全状态、人的不安全行为、管理缺陷")
    grade: HazardGrade = Field(description="隐患等级：一般或重大")
    location: str = Field(default="", description="隐患地点")
    source: HazardSource = Field(default=HazardSource.ad_hoc, description="隐患来源")
    found_at: datetime | None = Field(default=None, description="发现时间（默认为上报时间）")
    evidence: list[EvidenceRef] = Field(default=[], description="证据文件")
    inspection_task_id: int | None = None
    checklist_item: str | None = None
    risk_point_id: int | None = None  # a failed risk-derived checklist item (对表检查)


class AssignParams(BaseModel):
    model_config = STRICT
    owner: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="整改责任人编号")
    deadline: datetime = Field(description=DEADLINE)
    acceptor: str | None = Field(default=None, max_length=MAX_ID_CHARS, description="验收人编号")
    measures: str = Field(default="", description="整改措施")
    # the column is NUMERIC(14, 2): at most 999,999,999,999.99 元
    funds: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2,
                                  allow_inf_nan=False, description="整改资金（元）")


class PlanParams(BaseModel):
    model_config = STRICT
    objectives: str | None = Field(default=None, description=_part("objectives"))
    methods: str | None = Field(default=None, description=_part("methods"))
    funds_and_materials: str | None = Field(default=None, description=_part("funds_and_materials"))
    organisation: str | None = Field(default=None, description=_part("organisation"))
    time_limit: str | None = Field(default=None, description=_part("time_limit"))
    safety_and_contingency: str | None = Field(default=None, description=_part("safety_and_contingency"))


class SubmitParams(BaseModel):
    model_config = STRICT
    measures: str = Field(default="", description="整改措施")
    evidence: list[EvidenceRef] = Field(default=[], description="证据文件")


class FixOnSpotParams(BaseModel):
    model_config = STRICT
    measures: str = Field(default="", description="整改措施")
    evidence: list[EvidenceRef] = Field(min_length=1, description="证据文件")


class RegradeParams(BaseModel):
    model_config = STRICT
    grade: HazardGrade = Field(description="等级")


class ReinspectParams(BaseModel):
    model_config = STRICT
    findings: str = Field(min_length=1, description="复查结论")


class ListingLink(BaseModel):
    model_config = STRICT
    listing_id: int = Field(description="挂牌督办（系统内部）")
