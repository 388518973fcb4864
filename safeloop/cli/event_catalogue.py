"""What can be done to a workflow's records, shown to people: every event with its roles and
fields (the ``fire --help`` epilogue, ``events``, ``events --json``), and the events one person
may fire on one record now.

Fields and their zh-CN descriptions come from the params models (``event_fields.fields_of``);
nothing here lists them again.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from rich.table import Table

from core.errors import InvalidInput
from models.enums import Role
from safeloop.cli.common import console, open_session, print_json
from safeloop.cli.event_fields import fields_of
from safeloop.cli.output import cells
from states import engine
from states.workflow import EventRule, Workflow

# Where each workflow's commands live (README "命令行执行操作"): the groups users already know.
GROUPS: dict[str, str] = {
    "hazard": "hazard",
    "inspection": "inspect",
    "listing": "listing",
    "suspension": "order",
    "annual_plan": "plan annual",
    "stat_report": "stat-report",
    "risk": "risk",
    "duty": "duty",
}
LEGEND = ("日期时间写作 YYYY-MM-DD 或 YYYY-MM-DD HH:MM（期限只给日期时为当天 23:59:59）；"
          "证据文件用 --evidence 文件（或 --set 键=文件）；列表重复 --set 同一个键，或给 JSON 列表；"
          "JSON 参数写作 --set 键='…'。")


def _roles(rule: EventRule) -> str:
    labels = "、".join(Role(r).label for r in rule.roles)
    return labels + ("（仅系统流程）" if set(rule.roles) == {"system"} else "")


def catalogue(workflow: Workflow) -> list[dict[str, Any]]:
    """Every event with its label, roles and fields (``events --json``)."""
    return [{
        "event": rule.name, "label": rule.label, "roles": list(rule.roles),
        "requires_reason": rule.requires_reason,
        "fields": [{"name": f.name, "type": f.type_label, "required": f.required,
                    "default": f.default.value if isinstance(f.default, Enum) else f.default,
                    "description": f.description}
                   for f in fields_of(rule).values()],
    } for rule in workflow.events.values()]


def print_catalogue(workflow: Workflow, only: str | None = None) -> None:
    """The events (or one event) as help text: label, roles, reason, fields in Chinese."""
    rules = [workflow.events[only]] if only else list(workflow.events.values())
    group = GROUPS.get(workflow.name, workflow.name)
    console.print(f"\n{workflow.label}的操作（EVENT）、可执行的角色与参数（--set 键=值）。{LEGEND}",
                  markup=False, highlight=False)
    for rule in rules:
        fields = fields_of(rule)
        head = f"\n{rule.name}  {rule.label}" + ("  [须填写原因 --reason]" if rule.requires_reason
                                                   else "")
        console.print(head, markup=False, highlight=False)
        console.print(f"  角色：{_roles(rule)}", markup=False, highlight=False)
        if not fields:
            console.print("  无参数", markup=False, highlight=False)
            continue
        table = Table(box=None, show_header=False, padding=(0, 1), pad_edge=False)
        for _ in range(4):
            table.add_column()
        for f in fields.values():
            table.add_row(*cells(f"  {f.name}", f.type_label, f.presence, f.description, limit=400))
        console.print(table)
    if only is None:
        console.print(f"\n只看一个操作：safeloop {group} fire EVENT --help", markup=False,
                      highlight=False)


def show_events(workflow: Workflow, code: str | None, actor: str | None, as_json: bool) -> None:
    """``events``: the whole catalogue, or what ``actor`` may fire on ``code`` now."""
    if code is None:
        if as_json:
            print_json(catalogue(workflow))
        else:
            print_catalogue(workflow)
        return
    if actor is None:
        raise InvalidInput("列出某条记录现在可执行的操作须用 --as 指明操作人")
    with open_session() as session:
        rules = engine.allowed_events(session, workflow, code, actor)
    if as_json:
        print_json([{"event": r.name, "label": r.label, "roles": list(r.roles)} for r in rules])
        return
    if not rules:
        console.print("当前没有您可以执行的操作。")
    for r in rules:
        console.print(f"- {r.name}  {r.label}" + ("（须填写原因）" if r.requires_reason else ""))
