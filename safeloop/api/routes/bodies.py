"""Request bodies made from the workflows' own params models, so the schema IS the rule.

An event's body is its params model's fields (descriptions, limits and types unchanged) less the
facts the engine computes (``EventRule.computed``, never taken from input), plus ``comment`` (the
reason, required where the rule says so) and ``role`` (which of the caller's roles acts). Unknown
fields are refused by name, as the engine refuses them.

No ``from __future__ import annotations``: the models are built from live annotation objects.
"""

import copy
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from models.enums import Role
from states.workflow import MAX_TEXT_CHARS, STRICT, EventRule, Workflow

EXTRA_FIELDS = ("comment", "role")


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


@cache
def body_model(workflow: Workflow, rule: EventRule) -> type[BaseModel]:
    """The request body of ``rule`` on ``workflow`` (its create event or any other)."""
    fields: dict[str, Any] = {}
    params = rule.params
    if params is not None:
        for name, info in params.model_fields.items():
            if name in rule.computed:
                continue
            fields[name] = (info.annotation, copy.copy(info))
    reason = "原因/说明（此操作必填）" if rule.requires_reason else "原因/说明（可选）"
    fields["comment"] = (str | None, Field(default=None, max_length=MAX_TEXT_CHARS, description=reason))
    people = tuple(r for r in rule.roles if r != Role.system.value)
    if people:
        labels = "、".join(f"{r}（{Role(r).label}）" for r in people)
        fields["role"] = (Literal[people] | None,  # type: ignore[valid-type]
                          Field(default=None, description=f"以哪个角色操作，默认自动选择：{labels}"))
    doc = f"{workflow.label}「{rule.label}」（{rule.name}）的输入"
    if params is not None and params.__doc__:
        doc += "：" + params.__doc__.strip().splitlines()[0]
    return create_model(f"{_camel(workflow.name)}{_camel(rule.name)}Body", __config__=STRICT,
                        __doc__=doc, **fields)


def required(model: type[BaseModel]) -> bool:
    return any(info.is_required() for info in model.model_fields.values())


def split(body: BaseModel | None) -> tuple[dict[str, Any], str | None, str | None]:
    """(event data, comment, role) from a body: only the fields the caller gave are passed on,
    so the engine applies the params model's own defaults and validation."""
    if body is None:
        return {}, None, None
    data = body.model_dump(exclude_unset=True, exclude=set(EXTRA_FIELDS))
    return data, getattr(body, "comment", None), getattr(body, "role", None)
