"""Every workflow by name, for code that works across them (replay, CLI, diagrams)."""

from __future__ import annotations

from states.errors import InvalidInput
from states.hazard import HAZARD
from states.inspection import INSPECTION
from states.workflow import Workflow

WORKFLOWS: dict[str, Workflow] = {HAZARD.name: HAZARD, INSPECTION.name: INSPECTION}


def get_workflow(name: str) -> Workflow:
    try:
        return WORKFLOWS[name]
    except KeyError:
        known = "、".join(WORKFLOWS)
        raise InvalidInput(f"未知的工作流「{name}」，可用：{known}") from None
