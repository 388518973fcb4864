"""Every workflow by name, for code that works across them (replay, CLI, diagrams)."""

from __future__ import annotations

from states.errors import InvalidInput
from states.hazard import HAZARD
from states.workflow import Workflow

WORKFLOWS: dict[str, Workflow] = {HAZARD.name: HAZARD}


def get_workflow(name: str) -> Workflow:
    try:
        return WORKFLOWS[name]
    except KeyError:
        known = "、".join(WORKFLOWS)
        raise InvalidInput(f"未知的工作流「{name}」，可用：{known}") from None
