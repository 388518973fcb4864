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

# The six parts of a major hazard's rectification plan (治理方案), 原安监总局令第16号 第十五条.
PLAN_PARTS: dict[str, str] = {
    "objectives": "治理的目标和任务",
    "methods": "采取的方法和措施",
    "funds_and_materials": "经费和物资的落实",
    "organisation": "负责治理的机构和人员",
    "time_limit": "治理的时限和要求",
    "safety_and_contingency": "安全措施和应急预案",
}


class ReportParams(BaseModel):
    model_config = STRICT
    unit: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    category: HazardCategory
    grade: HazardGrade
    location: str = ""
    source: HazardSource = HazardSource.ad_hoc
    found_at: datetime | None = None
    evidence: list[EvidenceRef] = []
    inspection_task_id: int | None = None
    checklist_item: str | None = None
    risk_point_id: int | None = None  # a failed risk-derived checklist item (对表检查)


class AssignParams(BaseModel):
    model_config = STRICT
    owner: str = Field(min_length=1, max_length=MAX_ID_CHARS)
    deadline: datetime
    acceptor: str | None = Field(default=None, max_length=MAX_ID_CHARS)
    measures: str = ""
    # the column is NUMERIC(14, 2): at most 999,999,999,999.99 元
    funds: Decimal | None = Field(default=None, ge=0, max_digits=14, decimal_places=2,
                                  allow_inf_nan=False)


class PlanParams(BaseModel):
    model_config = STRICT
    objectives: str | None = None
    methods: str | None = None
    funds_and_materials: str | None = None
    organisation: str | None = None
    time_limit: str | None = None
    safety_and_contingency: str | None = None


class SubmitParams(BaseModel):
    model_config = STRICT
    measures: str = ""
    evidence: list[EvidenceRef] = []


class FixOnSpotParams(BaseModel):
    model_config = STRICT
    measures: str = ""
    evidence: list[EvidenceRef] = Field(min_length=1)


class RegradeParams(BaseModel):
    model_config = STRICT
    grade: HazardGrade


class ReinspectParams(BaseModel):
    model_config = STRICT
    findings: str = Field(min_length=1)


class ListingLink(BaseModel):
    model_config = STRICT
    listing_id: int
