"""Every field a person may give for an event says in Chinese what it is, on the params model
itself (``Field(description=…)``): the rule is the schema, and the CLI's ``fire --help`` and
``events --json`` show that text, keeping no list of their own (tests/safeloop/test_cli_fire.py).

A person gives every field of an event's params model except those the engine computes
(``EventRule.computed``); objects inside a field (an inspection's results, a plan's entries, a
risk point's measures) are given as JSON, so their fields are described too. Evidence
references are filled from files, never typed, and are left out.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, get_args

from pydantic import BaseModel

from states.registry import WORKFLOWS
from states.workflow import EventRule, EvidenceRef, Workflow

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def _rules() -> Iterator[tuple[Workflow, EventRule]]:
    for workflow in WORKFLOWS.values():
        for rule in (workflow.create_event, *workflow.events.values()):
            if rule.params is not None:
                yield workflow, rule


def _models_in(annotation: Any) -> Iterator[type[BaseModel]]:
    """The models nested in a field's type (``list[ItemResult] | None`` → ItemResult)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not issubclass(annotation, EvidenceRef):
            yield annotation
        return
    for arg in get_args(annotation):
        yield from _models_in(arg)


def _undescribed(model: type[BaseModel], skip: tuple[str, ...], where: str) -> list[str]:
    missing: list[str] = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        if not CHINESE.search(info.description or ""):
            missing.append(f"{where}.{name}")
        for inner in _models_in(info.annotation):
            missing += _undescribed(inner, (), f"{where}.{name}[{inner.__name__}]")
    return missing


def test_every_field_a_person_gives_is_described_in_chinese() -> None:
    missing: list[str] = []
    for workflow, rule in _rules():
        assert rule.params is not None
        missing += _undescribed(rule.params, rule.computed, f"{workflow.name}.{rule.name}")
    assert not missing, "params fields without a zh-CN description: " + ", ".join(missing)


def test_workflows_name_their_own_levels() -> None:
    """One escalation model, two ladders: each workflow's help names its own levels."""
    def level(workflow: str) -> str | None:
        params = WORKFLOWS[workflow].events["escalate"].params
        assert params is not None
        return params.model_fields["level"].description

    hazard, listing = level("hazard"), level("listing")
    assert hazard == "升级级别 1–3"
    assert listing == "督办级别：1 督办函、2 约谈、3 移送处罚"
