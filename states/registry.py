"""Every workflow by name, for code that works across them (replay, CLI, diagrams)."""

from __future__ import annotations

from states.annual_plan import ANNUAL_PLAN
from states.errors import InvalidInput
from states.hazard import HAZARD
from states.inspection import INSPECTION
from states.listing import LISTING
from states.risk import RISK
from states.stat_report import STAT_REPORT
from states.suspension import SUSPENSION
from states.workflow import Workflow

WORKFLOWS: dict[str, Workflow] = {
    w.name: w for w in (HAZARD, INSPECTION, LISTING, SUSPENSION, ANNUAL_PLAN, STAT_REPORT, RISK)
}


def get_workflow(name: str) -> Workflow:
    try:
        return WORKFLOWS[name]
    except KeyError:
        known = "、".join(WORKFLOWS)
        raise InvalidInput(f"未知的工作流「{name}」，可用：{known}") from None
