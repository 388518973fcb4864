"""``safeloop checklist`` and ``safeloop plan``: checklist templates and inspection plans."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import func, select

from core.errors import InvalidInput
from models import ChecklistItem, ChecklistTemplate, InspectionPlan, Person, Unit
from safeloop import checklists, plans
from safeloop.cli.common import JsonOpt, code_arg, console, handle_errors, open_session, print_json
from safeloop.cli.output import cells, safe

checklist_app = typer.Typer(help="检查表模板（隐患排查表）", no_args_is_help=True)
plan_app = typer.Typer(help="排查计划：单位、频次、检查表、检查人", no_args_is_help=True)


@checklist_app.command("load")
@handle_errors
def checklist_load(
    files: Annotated[list[Path] | None, typer.Argument(help="检查表 YAML 文件")] = None,
    shipped: Annotated[bool, typer.Option("--shipped", help="加载随软件提供的全部检查表")] = False,
) -> None:
    """加载检查表（同一版本重复加载不变；内容变化须提高 version）。"""
    if not files and not shipped:
        raise InvalidInput("请给出检查表文件，或使用 --shipped")
    with open_session() as session:
        loaded = checklists.load_shipped(session) if shipped else []
        for path in files or []:
            template_id, created = checklists.load(session, path)
            loaded.append((path.name, template_id, created))
    for name, template_id, created in loaded:
        console.print(f"{safe(name)}：{'已加载' if created else '已存在，未改变'}（模板 {template_id}）")


@checklist_app.command("list")
@handle_errors
def checklist_list(as_json: JsonOpt = False) -> None:
    """列出已加载的检查表。"""
    with open_session() as session:
        rows = [dict(r) for r in session.connection().execute(
            select(ChecklistTemplate.key, ChecklistTemplate.version, ChecklistTemplate.name,  # type: ignore[call-overload]
                   ChecklistTemplate.tier, func.count(ChecklistItem.id).label("items"))
            .join(ChecklistItem, ChecklistItem.template_id == ChecklistTemplate.id)
            .group_by(ChecklistTemplate.id).order_by(ChecklistTemplate.key,
                                                     ChecklistTemplate.version)).mappings()]
    if as_json:
        print_json(rows)
        return
    table = Table(title="检查表")
    for header in ("编号", "版本", "名称", "层级", "项数"):
        table.add_column(header)
    for r in rows:
        table.add_row(*cells(r["key"], r["version"], r["name"], r["tier"], r["items"]))
    console.print(table)


@plan_app.command("add")
@handle_errors
def plan_add(
    key: Annotated[str, code_arg("计划编号")],
    unit: Annotated[str, typer.Option(help="被检查单位编号")],
    cadence: Annotated[str | None, typer.Option(
        help="频次：daily/weekly/monthly/quarterly/yearly/seasonal/pre_holiday（默认按层级）")] = None,
    template: Annotated[str | None, typer.Option(help="检查表编号（默认该层级的通用检查表）")] = None,
    name: Annotated[str | None, typer.Option(help="计划名称")] = None,
    assignee: Annotated[str | None, typer.Option(help="指定检查人编号")] = None,
    assignee_role: Annotated[str | None, typer.Option(help="或指定由单位中某角色检查")] = None,
    calendar_mode: Annotated[str, typer.Option(help="all_days 每天 / working_days 仅工作日")] = "all_days",
    active_from: Annotated[str | None, typer.Option("--from", help="生效日期 YYYY-MM-DD")] = None,
    active_until: Annotated[str | None, typer.Option("--until", help="截止日期 YYYY-MM-DD")] = None,
) -> None:
    """新增排查计划。"""
    spec = plans.PlanSpec(key=key, unit=unit, cadence=cadence, template=template, name=name,
                          assignee=assignee, assignee_role=assignee_role,
                          calendar_mode=calendar_mode, active_from=_date(active_from, "--from"),
                          active_until=_date(active_until, "--until"))
    with open_session() as session:
        plans.add(session, spec)
    console.print(f"排查计划 {safe(key)} 已新增")


def _date(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{option}「{value}」应为 YYYY-MM-DD") from exc


@plan_app.command("list")
@handle_errors
def plan_list(as_json: JsonOpt = False) -> None:
    """列出排查计划。"""
    with open_session() as session:
        rows = [dict(r) for r in session.connection().execute(
            select(InspectionPlan.key, InspectionPlan.name, InspectionPlan.cadence,  # type: ignore[call-overload]
                   InspectionPlan.tier, InspectionPlan.calendar_mode, Unit.key.label("unit"),
                   ChecklistTemplate.key.label("template"), Person.key.label("assignee"),
                   InspectionPlan.active_from, InspectionPlan.active_until)
            .join(Unit, Unit.id == InspectionPlan.unit_id)
            .join(ChecklistTemplate, ChecklistTemplate.id == InspectionPlan.template_id)
            .outerjoin(Person, Person.id == InspectionPlan.assignee_id)
            .order_by(InspectionPlan.id)).mappings()]
    if as_json:
        print_json(rows)
        return
    table = Table(title="排查计划")
    for header in ("编号", "名称", "单位", "频次", "检查表", "检查人", "日历"):
        table.add_column(header)
    for r in rows:
        table.add_row(*cells(r["key"], r["name"], r["unit"],
                             plans.CADENCES.get(r["cadence"], r["cadence"]), r["template"],
                             r["assignee"] or "",
                             plans.CALENDAR_MODES.get(r["calendar_mode"], r["calendar_mode"])))
    console.print(table)
