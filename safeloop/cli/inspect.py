"""``safeloop inspect``: list, show, start, submit, review, return and cancel inspection tasks."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select

from core.errors import InvalidInput, NotFound
from core.timeparse import to_local
from core.yamlfile import read_yaml
from models import ChecklistItem, Hazard, InspectionPlan, Person, Unit
from models.db import as_utc
from models.tables import INSPECTION_TASK as TASK
from safeloop import evidence
from safeloop.cli import fire
from safeloop.cli.common import (
    STATE,
    AsOfOpt,
    AsOpt,
    JsonOpt,
    code_arg,
    console,
    handle_errors,
    open_session,
    print_json,
)
from safeloop.cli.event_fields import Request
from safeloop.cli.output import cells, safe
from safeloop.cli.reading import ViewAsOpt, seeing
from states.workflows.inspection import INSPECTION

app = typer.Typer(help="隐患排查任务：查看、开始、提交结果、审核（inspection tasks）",
                  no_args_is_help=True)
TaskArg = Annotated[str, code_arg("排查任务编号")]


def due_day(period_end: Any, zone: str) -> str:
    """The last local day of a period (its end is the next day's midnight, exclusive)."""
    return to_local(as_utc(period_end) - timedelta(seconds=1), zone, "%Y-%m-%d")


def _fire(code: str, event: str, actor: str, as_of: str | None, as_json: bool,
          reason: str | None = None) -> None:
    """The friendly commands below are ``inspect fire TASK EVENT`` with fewer words."""
    fire.run(INSPECTION, Request(code, event, actor, reason=reason, as_of=as_of), as_json)


@app.command("start")
@handle_errors
def start_cmd(task: TaskArg, actor: AsOpt, as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """开始检查。"""
    _fire(task, "start", actor, as_of, as_json)


def read_results(session: Any, path: Path) -> list[dict[str, Any]]:
    """Results file: a YAML/JSON list of {item, outcome: pass|fail|na, note, evidence: [files]}.

    Evidence paths are relative to the results file and stored by content hash.
    """
    raw, _ = read_yaml(path, "检查结果文件")
    if isinstance(raw, dict):
        raw = raw.get("results")
    if not isinstance(raw, list):
        raise InvalidInput(f"检查结果文件 {path} 应为列表（或含 results 列表）")
    results = []
    for n, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise InvalidInput(f"检查结果文件 {path} 第 {n + 1} 项应为映射")
        files = entry.pop("evidence", None) or []
        entry["evidence"] = [
            evidence.store(session, STATE.settings.storage_dir, path.parent / str(f))
            for f in files
        ]
        results.append(entry)
    return results


@app.command("submit")
@handle_errors
def submit_cmd(
    task: TaskArg,
    actor: AsOpt,
    results: Annotated[Path, typer.Option("--results", help="检查结果 YAML/JSON 文件")],
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """提交检查结果；每个不合格项自动生成一条关联的隐患。"""
    def hazards_made(session: Any, _request: Any, result: Any, _moment: Any) -> list[str]:
        return list(session.connection().execute(
            select(Hazard.code).where(Hazard.inspection_task_id == result.entity_id)  # type: ignore[call-overload]
            .order_by(Hazard.id)).scalars())

    request = Request(task, "submit", actor, as_of=as_of)
    result, hazards = fire.execute(
        INSPECTION, request, build=lambda session: {"results": read_results(session, results)},
        after=hazards_made)
    if as_json:
        print_json({**result.__dict__, "hazards": hazards})
        return
    console.print(f"{safe(result.code)}：检查结果已提交（{INSPECTION.state_label(result.to_state)}）")
    if hazards:
        console.print(f"不合格项已生成隐患：{safe('、'.join(hazards))}")


@app.command("review")
@handle_errors
def review_cmd(task: TaskArg, actor: AsOpt, as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """审核检查结果（审核人不能是检查人）。"""
    _fire(task, "review", actor, as_of, as_json)


@app.command("return")
@handle_errors
def return_cmd(task: TaskArg, actor: AsOpt,
               reason: Annotated[str, typer.Option("--reason", help="退回原因")],
               as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """退回重检。"""
    _fire(task, "return_task", actor, as_of, as_json, reason=reason)


@app.command("cancel")
@handle_errors
def cancel_cmd(task: TaskArg, actor: AsOpt,
               reason: Annotated[str, typer.Option("--reason", help="取消原因")],
               as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """取消任务（须填写原因）。"""
    _fire(task, "cancel", actor, as_of, as_json, reason=reason)


fire.mount(app, INSPECTION, code_help="排查任务编号")


@app.command("list")
@handle_errors
def list_cmd(
    state: Annotated[str | None, typer.Option(help="按状态筛选")] = None,
    period: Annotated[str | None, typer.Option(help="周期键，如 2026-11-02、2026-W45")] = None,
    unit: Annotated[str | None, typer.Option(help="单位编号（含下级）")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    viewer: ViewAsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """排查任务列表（--as：仅此人可见的任务）。"""
    if state is not None and state not in INSPECTION.states:
        raise InvalidInput(f"未知状态「{state}」，可用：{'、'.join(INSPECTION.states)}")
    conditions = []
    if state:
        conditions.append(TASK.c.state == state)
    if period:
        conditions.append(TASK.c.period_key == period)
    zone = STATE.settings.timezone
    with open_session() as session:
        conn = session.connection()
        if unit:
            path = conn.execute(select(Unit.path).where(Unit.key == unit)).scalar()  # type: ignore[call-overload]
            if path is None:
                raise NotFound(f"单位「{unit}」不存在")
            conditions.append(TASK.c.unit_id.in_(
                select(Unit.id).where(Unit.path.startswith(path))))  # type: ignore[attr-defined]
        visible = seeing(session, viewer).where(INSPECTION)
        if visible is not None:
            conditions.append(visible)
        stmt = (select(TASK.c.code, TASK.c.state, TASK.c.period_key, TASK.c.period_end,
                       Unit.name, InspectionPlan.cadence, Person.name.label("assignee"))  # type: ignore[attr-defined]
                .join(Unit, Unit.id == TASK.c.unit_id)  # type: ignore[arg-type]
                .join(InspectionPlan, InspectionPlan.id == TASK.c.plan_id)  # type: ignore[arg-type]
                .outerjoin(Person, Person.id == TASK.c.assignee_id)  # type: ignore[arg-type]
                .where(*conditions).order_by(TASK.c.id.desc()).limit(limit))
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
        total = conn.execute(select(func.count()).select_from(TASK).where(*conditions)).scalar_one()
    for r in rows:
        r["due"] = due_day(r.pop("period_end"), zone)
        r["state_label"] = INSPECTION.state_label(r["state"])
    if as_json:
        print_json({"total": total, "items": rows})
        return
    table = Table(title=f"排查任务（共 {total} 条，显示 {len(rows)} 条）")
    for header in ("编号", "单位", "频次", "周期", "状态", "截止", "检查人"):
        table.add_column(header, no_wrap=header in ("编号", "状态"))
    for r in rows:
        table.add_row(*cells(r["code"], r["name"], r["cadence"], r["period_key"], r["state_label"],
                             r["due"], r["assignee"] or ""))
    console.print(table)


@app.command("show")
@handle_errors
def show_cmd(task: TaskArg, viewer: ViewAsOpt = None, as_json: JsonOpt = False) -> None:
    """显示任务、检查表和结果（--as：此人看不到的与不存在的一样）。"""
    from safeloop.cli.audit import history, print_history

    with open_session() as session:
        conn = session.connection()
        stmt = select(TASK).where(TASK.c.code == task)
        visible = seeing(session, viewer).where(INSPECTION)
        if visible is not None:
            stmt = stmt.where(visible)
        row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFound(f"排查任务「{task}」不存在")
        items = [dict(r) for r in conn.execute(
            select(ChecklistItem.code, ChecklistItem.text, ChecklistItem.basis)  # type: ignore[call-overload]
            .where(ChecklistItem.template_id == row["template_id"])
            .order_by(ChecklistItem.position)).mappings()]
        record = {"code": row["code"], "state": row["state"], "period_key": row["period_key"],
                  "due": due_day(row["period_end"], STATE.settings.timezone),
                  "items": items, "results": row["results"],
                  "history": history(session, "inspection", row["id"])}
    if as_json:
        print_json(record)
        return
    console.print(f"[bold]{safe(record['code'])}[/]  {INSPECTION.state_label(record['state'])}  "
                  f"截止 {safe(record['due'])}")
    outcomes = {r["item"]: r for r in record["results"] or []}
    table = Table(title="检查表")
    for header in ("编号", "检查内容", "依据", "结果"):
        table.add_column(header)
    labels = {"pass": "合格", "fail": "不合格", "na": "不适用"}
    for item in items:
        result = outcomes.get(item["code"])
        table.add_row(*cells(item["code"], item["text"], item["basis"],
                             labels.get(result["outcome"], result["outcome"]) if result else ""))
    console.print(table)
    print_history(record["history"])
