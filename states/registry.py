"""Every workflow by name, for code that works across them (replay, CLI, diagrams)."""

from __future__ import annotations

from core.errors import InvalidInput
from states.workflow import Workflow
from states.workflows.annual_plan import ANNUAL_PLAN
from states.workflows.duty import DUTY
from states.workflows.hazard import HAZARD
from states.workflows.inspection import INSPECTION
from states.workflows.listing import LISTING
from states.workflows.risk import RISK
from states.workflows.stat_report import STAT_REPORT
from states.workflows.suspension import SUSPENSION

WORKFLOWS: dict[str, Workflow] = {
    w.name: w for w in (HAZARD, INSPECTION, LISTING, SUSPENSION, ANNUAL_PLAN, STAT_REPORT, RISK,
                           DUTY)
}


def get_workflow(name: str) -> Workflow:
    try:
        return WORKFLOWS[name]
    except KeyError:
        known = "、".join(WORKFLOWS)
        raise InvalidInput(f"未知的工作流「{name}」，可用：{known}") from None
