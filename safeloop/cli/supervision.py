"""The regulator's side: ``safeloop listing``, ``order``, ``plan annual`` and ``stat-report``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from core.errors import InvalidInput, NotFound
from core.timeparse import to_local
from core.yamlfile import read_yaml
from safeloop.cli import fire
from safeloop.cli.common import (
    STATE,
    AsOfOpt,
    AsOpt,
    EvidenceOpt,
    JsonOpt,
    as_of_option,
    code_arg,
    console,
    handle_errors,
    open_session,
    print_json,
)
from safeloop.cli.event_fields import Request, given
from safeloop.cli.output import DETAIL_LIMIT, cells, safe
from safeloop.cli.reading import ViewAsOpt, check_enterprise, scoped, seeing
from states import engine
from states.workflow import Workflow
from states.workflows.annual_plan import ANNUAL_PLAN
from states.workflows.listing import DUTIES, LEVELS, LISTING
from states.workflows.stat_report import STAT_REPORT
from states.workflows.suspension import SUSPENSION

listing_app = typer.Typer(help="挂牌督办：提请、挂牌、进展、延期、升级、销号", no_args_is_help=True)
order_app = typer.Typer(help="责令停产停业整顿与复产", no_args_is_help=True)
annual_app = typer.Typer(help="年度监督检查计划：编制、备案、启用", no_args_is_help=True)
CodeArg = Annotated[str, code_arg("编号")]


def _create(workflow: Workflow, actor: str, data: dict[str, Any], reason: str | None,
            as_of: str | None, as_json: bool) -> None:
    with open_session() as session:
        result = engine.create(session, workflow, actor=actor, data=data, comment=reason,
                               as_of=as_of_option(as_of))
    if as_json:
        print_json(result.__dict__)
    else:
        console.print(f"已创建{workflow.label} [bold]{safe(result.code)}[/]"
                      f"（{workflow.state_label(result.to_state)}）")


def _rows(workflow: Workflow, state: str | None, enterprise: str | None = None,
          viewer: str | None = None) -> list[dict[str, Any]]:
    if state is not None and state not in workflow.states:
        raise InvalidInput(f"未知状态「{state}」，可用：{'、'.join(workflow.states)}")
    table = workflow.table
    stmt = select(table).order_by(table.c.id.desc()).limit(200)
    if state:
        stmt = stmt.where(table.c.state == state)
    with open_session() as session:
        if enterprise is not None:
            from models import Enterprise

            found = session.connection().execute(
                select(Enterprise.id).where(Enterprise.key == enterprise)).scalar()  # type: ignore[call-overload]
            if found is None:
                raise NotFound(f"企业「{enterprise}」不存在")
            stmt = stmt.where(table.c.enterprise_id == found)
        visibility = seeing(session, viewer)
        if enterprise is not None:
            check_enterprise(session, visibility, enterprise)
        stmt = scoped(stmt, visibility, workflow)
        return [dict(r) for r in session.connection().execute(stmt).mappings()]


def _show(workflow: Workflow, code: str, as_json: bool, viewer: str | None = None) -> None:
    from safeloop.cli.audit import entity_with_history, print_history

    with open_session() as session:
        record = entity_with_history(session, workflow, code, seeing(session, viewer))
    if as_json:
        print_json(record)
        return
    table = Table(title=f"{workflow.label} {safe(code)}", show_header=False)
    zone = STATE.settings.timezone
    for key, value in record.items():
        if key == "history" or value in (None, "", []):
            continue
        shown = to_local(value, zone) if hasattr(value, "tzinfo") else str(value)
        table.add_row(*cells(key, workflow.state_label(value) if key == "state" else shown,
                             limit=DETAIL_LIMIT))
    console.print(table)
    print_history(record["history"])


# ---- listing --------------------------------------------------------------------------------


@listing_app.command("propose")
@handle_errors
def listing_propose(hazard: Annotated[str, code_arg("重大隐患编号")], actor: AsOpt,
                    department: Annotated[str | None, typer.Option(help="监管部门编号")] = None,
                    as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """提请对一条重大隐患挂牌督办。"""
    from models import Hazard, Unit

    with open_session() as session:
        unit = session.connection().execute(
            select(Unit.key).join(Hazard, Hazard.unit_id == Unit.id)  # type: ignore[arg-type]
            .where(Hazard.code == hazard)).scalar()
    if unit is None:
        raise NotFound(f"隐患「{hazard}」不存在")
    _create(LISTING, actor, {"unit": unit, "hazard": hazard, "department": department}, None,
            as_of, as_json)


fire.mount(listing_app, LISTING, code_help="挂牌督办编号，如 GP-000001")


@listing_app.command("list")
@handle_errors
def listing_list(state: Annotated[str | None, typer.Option(help="按状态筛选")] = None,
                 enterprise: Annotated[str | None, typer.Option(help="企业编号")] = None,
                 viewer: ViewAsOpt = None, as_json: JsonOpt = False) -> None:
    """挂牌督办清单（含各项职责期限和督办级别）。"""
    rows = _rows(LISTING, state, enterprise, viewer)
    if as_json:
        print_json(rows)
        return
    zone = STATE.settings.timezone
    table = Table(title="挂牌督办")
    for header in ("编号", "状态", "整改期限", "督办级别", "逾期职责"):
        table.add_column(header, no_wrap=header == "编号")
    for r in rows:
        overdue = [label for _d, (_due, _done, col, label, _s) in DUTIES.items() if r[col]]
        table.add_row(*cells(r["code"], LISTING.state_label(r["state"]), to_local(r["deadline"], zone),
                             LEVELS.get(r["escalation_level"], "—"), "、".join(overdue)))
    console.print(table)


@listing_app.command("show")
@handle_errors
def listing_show(code: CodeArg, viewer: ViewAsOpt = None, as_json: JsonOpt = False) -> None:
    """显示挂牌督办详情和操作记录。"""
    _show(LISTING, code, as_json, viewer)


# ---- suspension orders ----------------------------------------------------------------------


@order_app.command("create")
@handle_errors
def order_create(actor: AsOpt, unit: Annotated[str, typer.Option(help="被责令的企业单位编号")],
                 reason: Annotated[str, typer.Option(help="理由")],
                 scope: Annotated[str, typer.Option(help="full 全部 / partial 部分")] = "full",
                 hazard: Annotated[str | None, typer.Option(help="关联隐患编号")] = None,
                 as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """责令停产停业整顿。"""
    data = {"unit": unit, "reason": reason, "scope": scope, "hazard": hazard}
    _create(SUSPENSION, actor, {k: v for k, v in data.items() if v is not None}, None, as_of,
            as_json)


fire.mount(order_app, SUSPENSION, code_help="停产整顿令编号，如 TC-000001")


@order_app.command("list")
@handle_errors
def order_list(state: Annotated[str | None, typer.Option()] = None,
               enterprise: Annotated[str | None, typer.Option(help="企业编号")] = None,
               viewer: ViewAsOpt = None, as_json: JsonOpt = False) -> None:
    """停产整顿令清单（可按企业查看其未解除的命令）。"""
    rows = _rows(SUSPENSION, state, enterprise, viewer)
    if as_json:
        print_json(rows)
        return
    table = Table(title="停产整顿令")
    for header in ("编号", "状态", "理由", "下达时间"):
        table.add_column(header)
    for r in rows:
        table.add_row(*cells(r["code"], SUSPENSION.state_label(r["state"]), r["reason"],
                             to_local(r["ordered_at"], STATE.settings.timezone)))
    console.print(table)


# ---- annual plans ---------------------------------------------------------------------------


@annual_app.command("draft")
@handle_errors
def annual_draft(actor: AsOpt, file: Annotated[Path, typer.Argument(
        help="计划文件 YAML：jurisdiction、year、department、entries: [{enterprise, frequency}]")],
        as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """编制年度监督检查计划。"""
    data, _ = read_yaml(file, "计划文件")
    if not isinstance(data, dict):
        raise InvalidInput(f"计划文件 {file} 应为键值映射")
    _create(ANNUAL_PLAN, actor, data, None, as_of, as_json)


fire.mount(annual_app, ANNUAL_PLAN, code_help="年度计划编号，如 JH-000001")


@annual_app.command("show")
@handle_errors
def annual_show(code: CodeArg, viewer: ViewAsOpt = None, as_json: JsonOpt = False) -> None:
    """显示年度计划（含各企业的检查频次及加倍原因）。"""
    table = ANNUAL_PLAN.table
    with open_session() as session:
        found = session.connection().execute(scoped(
            select(table).where(table.c.code == code), seeing(session, viewer), ANNUAL_PLAN)
        ).mappings().first()
    if found is None:
        raise NotFound(f"年度计划「{code}」不存在")
    plan = dict(found)
    if as_json:
        print_json(plan)
        return
    console.print(f"[bold]{safe(plan['code'])}[/] {safe(plan['year'])} 年 "
                  f"{ANNUAL_PLAN.state_label(plan['state'])}")
    table = Table(title="检查对象与频次")
    for header in ("企业", "基准频次（次/年）", "执行频次", "说明"):
        table.add_column(header)
    for e in plan["entries"] or []:
        table.add_row(*cells(e.get("name", e["enterprise"]), e.get("base_frequency", e["frequency"]),
                             e["frequency"], e.get("reason", "未启用，尚未计算")))
    console.print(table)


# ---- statistics reports as duties -----------------------------------------------------------

duty_app = typer.Typer(help="隐患统计报表报送（季度次月15日前、年度1月31日前，主要负责人签字）",
                       no_args_is_help=True)


@duty_app.command("list")
@handle_errors
def duty_list(state: Annotated[str | None, typer.Option()] = None, viewer: ViewAsOpt = None,
              as_json: JsonOpt = False) -> None:
    """报送任务清单。"""
    rows = _rows(STAT_REPORT, state, viewer=viewer)
    if as_json:
        print_json(rows)
        return
    table = Table(title="隐患统计报表报送")
    for header in ("编号", "期间", "期限", "状态"):
        table.add_column(header, no_wrap=True)
    for r in rows:
        table.add_row(*cells(r["code"], r["period_key"], to_local(r["due_at"], STATE.settings.timezone),
                             STAT_REPORT.state_label(r["state"])))
    console.print(table)


@duty_app.command("submit")
@handle_errors
def duty_submit(code: CodeArg, actor: AsOpt, files: EvidenceOpt = None,
                summary: Annotated[str, typer.Option(help="说明")] = "",
                as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """主要负责人签字报送统计报表（可附盖章的报表文件）。"""
    request = Request(code, "submit", actor, evidence=files or (), as_of=as_of,
                      options=given(summary=(summary, "--summary")))
    fire.run(STAT_REPORT, request, as_json)


fire.mount(duty_app, STAT_REPORT, code_help="报送任务编号，如 jinhua/2026-Q3")
