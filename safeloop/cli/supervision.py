"""``safeloop listing``, ``safeloop order`` and ``safeloop plan annual``: the regulator's side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from core.errors import InvalidInput, NotFound
from core.timeparse import parse_local, to_local
from core.yamlfile import read_yaml
from safeloop import evidence
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
from safeloop.cli.output import DETAIL_LIMIT, cells, safe
from states import engine
from states.workflow import Workflow
from states.workflows.annual_plan import ANNUAL_PLAN
from states.workflows.listing import DUTIES, LEVELS, LISTING
from states.workflows.suspension import SUSPENSION

listing_app = typer.Typer(help="挂牌督办：提请、挂牌、进展、延期、升级、销号", no_args_is_help=True)
order_app = typer.Typer(help="责令停产停业整顿与复产", no_args_is_help=True)
annual_app = typer.Typer(help="年度监督检查计划：编制、备案、启用", no_args_is_help=True)
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="参数 键=值，可重复")]
CodeArg = Annotated[str, code_arg("编号")]
TIME_KEYS = {"deadline"}


def parse_sets(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values that look like JSON (true, 3, [..]) are decoded, times parsed."""
    data: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"--set 应为 键=值，收到「{pair}」")
        key = key.strip()
        if key in TIME_KEYS:
            data[key] = parse_local(value, STATE.settings.timezone, end_of_day=True, what=key)
            continue
        try:
            data[key] = json.loads(value)
        except json.JSONDecodeError:
            data[key] = value
        except (ValueError, RecursionError) as exc:  # 5,000-digit numbers, 10,000-deep lists
            raise InvalidInput(f"--set {key} 的值无法接受（数字位数或嵌套层数过多）") from exc
    return data


def _fire(workflow: Workflow, code: str, event: str, actor: str, sets: list[str] | None,
          files: list[Path] | None, file_key: str, reason: str | None, as_of: str | None,
          as_json: bool) -> None:
    data = parse_sets(sets)
    with open_session() as session:
        if files:
            data[file_key] = [evidence.store(session, STATE.settings.storage_dir, f)
                              for f in files]
        result = engine.fire(session, workflow, code, event, actor=actor, comment=reason,
                             data=data, as_of=as_of_option(as_of))
    if as_json:
        print_json(result.__dict__)
        return
    console.print(f"{safe(result.code)}：{workflow.event_label(event)} 完成，"
                  f"{workflow.state_label(result.from_state)} → "
                  f"[bold]{workflow.state_label(result.to_state)}[/]")


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


def _rows(workflow: Workflow, state: str | None,
          enterprise: str | None = None) -> list[dict[str, Any]]:
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
        return [dict(r) for r in session.connection().execute(stmt).mappings()]


def _show(workflow: Workflow, code: str, as_json: bool) -> None:
    from safeloop.cli.audit import entity_with_history, print_history

    with open_session() as session:
        record = entity_with_history(session, workflow, code)
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


@listing_app.command("fire")
@handle_errors
def listing_fire(
    code: CodeArg,
    event: Annotated[str, typer.Argument(help="操作：" + "、".join(LISTING.events))],
    actor: AsOpt, sets: SetOpt = None, files: EvidenceOpt = None,
    reason: Annotated[str | None, typer.Option("--reason", help="原因/说明")] = None,
    as_of: AsOfOpt = None, as_json: JsonOpt = False,
) -> None:
    """对挂牌督办执行操作，如：list --set deadline=2027-06-30；escalate --set level=1；
    request_delisting --evidence 评估报告.pdf；delist。"""
    file_key = "evaluation" if event == "request_delisting" else "evidence"
    _fire(LISTING, code, event, actor, sets, files, file_key, reason, as_of, as_json)


@listing_app.command("list")
@handle_errors
def listing_list(state: Annotated[str | None, typer.Option(help="按状态筛选")] = None,
                 enterprise: Annotated[str | None, typer.Option(help="企业编号")] = None,
                 as_json: JsonOpt = False) -> None:
    """挂牌督办清单（含各项职责期限和督办级别）。"""
    rows = _rows(LISTING, state, enterprise)
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
def listing_show(code: CodeArg, as_json: JsonOpt = False) -> None:
    """显示挂牌督办详情和操作记录。"""
    _show(LISTING, code, as_json)


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


@order_app.command("fire")
@handle_errors
def order_fire(code: CodeArg,
               event: Annotated[str, typer.Argument(help="操作：" + "、".join(SUSPENSION.events))],
               actor: AsOpt, files: EvidenceOpt = None,
               reason: Annotated[str | None, typer.Option("--reason")] = None,
               as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """停产整顿令的操作：start_rectification、request_resumption --evidence、approve_resumption…"""
    _fire(SUSPENSION, code, event, actor, None, files, "report", reason, as_of, as_json)


@order_app.command("list")
@handle_errors
def order_list(state: Annotated[str | None, typer.Option()] = None,
               enterprise: Annotated[str | None, typer.Option(help="企业编号")] = None,
               as_json: JsonOpt = False) -> None:
    """停产整顿令清单（可按企业查看其未解除的命令）。"""
    rows = _rows(SUSPENSION, state, enterprise)
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


@annual_app.command("fire")
@handle_errors
def annual_fire(code: CodeArg,
                event: Annotated[str, typer.Argument(help="操作：" + "、".join(ANNUAL_PLAN.events))],
                actor: AsOpt, as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """年度计划的操作：file（备案）、activate（启用）、refresh、close。"""
    _fire(ANNUAL_PLAN, code, event, actor, None, None, "", None, as_of, as_json)


@annual_app.command("show")
@handle_errors
def annual_show(code: CodeArg, as_json: JsonOpt = False) -> None:
    """显示年度计划（含各企业的检查频次及加倍原因）。"""
    rows = [r for r in _rows(ANNUAL_PLAN, None) if r["code"] == code]
    if not rows:
        raise NotFound(f"年度计划「{code}」不存在")
    plan = rows[0]
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
def duty_list(state: Annotated[str | None, typer.Option()] = None, as_json: JsonOpt = False) -> None:
    """报送任务清单。"""
    from states.workflows.stat_report import STAT_REPORT

    rows = _rows(STAT_REPORT, state)
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
    from states.workflows.stat_report import STAT_REPORT

    _fire(STAT_REPORT, code, "submit", actor, [f"summary={json.dumps(summary)}"], files,
          "attachments", None, as_of, as_json)
