"""``safeloop audit``: read, verify, replay and export the hash-chained audit trail."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select
from sqlmodel import Session

from core import infile
from core.errors import InvalidInput, NotFound
from core.timeparse import to_local
from models.tables import AUDIT_ENTRY as AUDIT
from safeloop.cli.common import (
    STATE,
    JsonOpt,
    code_arg,
    console,
    ensure_writable,
    err_console,
    handle_errors,
    open_session,
    print_json,
    writing,
)
from safeloop.cli.output import OutputFailed, cells, safe
from safeloop.cli.reading import ViewAsOpt, scoped, seeing
from states import audit as chain
from states.audit import HASHED_FIELDS, V2_FIELDS
from states.jobs import checkpoint
from states.jobs.checkpoint import CHECKPOINT_FILE
from states.jobs.replay import replay
from states.registry import WORKFLOWS
from states.visibility import OPERATOR, Visibility
from states.workflow import Workflow

app = typer.Typer(help="审计日志：查看、校验、回放、导出（audit trail）", no_args_is_help=True)
# Version 1's columns first (where earlier exports had them), then what version 2 added.
EXPORT_FIELDS = (*HASHED_FIELDS, "hash", "hash_version", *V2_FIELDS)


def history(session: Session, entity_type: str, entity_id: int) -> list[dict[str, Any]]:
    rows = session.connection().execute(
        select(AUDIT).where(AUDIT.c.entity_type == entity_type, AUDIT.c.entity_id == entity_id)
        .order_by(AUDIT.c.seq)
    ).mappings()
    return [{**dict(r), "data": json.loads(r["data"])} for r in rows]


def entity_with_history(session: Session, workflow: Workflow, code: str,
                        visibility: Visibility = OPERATOR) -> dict[str, Any]:
    """An entity's row by code with its audit history (``show`` commands); NotFound if absent
    or outside what ``visibility`` sees (the same words either way)."""
    row = session.connection().execute(scoped(
        select(workflow.table).where(workflow.table.c.code == code), visibility, workflow)
    ).mappings().first()
    if row is None:
        raise NotFound(f"{workflow.label}「{code}」不存在")
    return {**dict(row), "history": history(session, workflow.name, row["id"])}


def print_history(rows: list[dict[str, Any]]) -> None:
    zone = STATE.settings.timezone
    table = Table(title="操作记录（审计日志）")
    for header in ("序号", "时间", "操作", "状态变化", "操作人", "角色", "备注"):
        table.add_column(header)
    for r in rows:
        workflow = WORKFLOWS.get(r["entity_type"])
        event = workflow.event_label(r["event"]) if workflow else r["event"]
        if workflow and r["event"] == workflow.create_event.name:
            event = workflow.create_event.label
        states = ""
        if workflow:
            states = f"{workflow.state_label(r['from_state'])} → {workflow.state_label(r['to_state'])}"
        moment = r["at"].replace("Z", "+00:00")
        from datetime import datetime

        table.add_row(*cells(r["seq"], to_local(datetime.fromisoformat(moment), zone), event,
                             states, r["actor"], r["actor_role"], r["comment"] or ""))
    console.print(table)


def _find_entity(session: Session, code: str, visibility: Visibility) -> tuple[str, int]:
    for name, workflow in WORKFLOWS.items():
        entity_id = session.connection().execute(scoped(
            select(workflow.table.c.id).where(workflow.table.c.code == code), visibility, workflow)
        ).scalar()
        if entity_id is not None:
            return name, int(entity_id)
    raise NotFound(f"编号「{code}」不存在")


@app.command("show")
@handle_errors
def show_cmd(entity: Annotated[str, code_arg("实体编号，如 YH-000001")],
             viewer: ViewAsOpt = None, as_json: JsonOpt = False) -> None:
    """显示一个实体的全部审计记录（--as：仅限此人可见的实体）。"""
    with open_session() as session:
        entity_type, entity_id = _find_entity(session, entity, seeing(session, viewer))
        rows = history(session, entity_type, entity_id)
    if as_json:
        print_json(rows)
    else:
        print_history(rows)


@app.command("verify")
@handle_errors
def verify_cmd(
    anchor: Annotated[list[str] | None, typer.Option(
        "--anchor", help="审计员在库外保存的链头「序号:哈希」（检查点通知中的值），可重复")] = None,
    checkpoint_file: Annotated[Path | None, typer.Option(
        "--checkpoint-file", help="检查点文件（默认为存储目录下的 audit-checkpoints.jsonl）")] = None,
    as_json: JsonOpt = False,
) -> None:
    """校验整条哈希链、检查点与锚点；链被改写、检查点文件缺失或锚点不符时以 1 退出。"""
    anchors = [checkpoint.parse_anchor(a) for a in anchor or ()]
    file = checkpoint_file or STATE.settings.storage_dir / CHECKPOINT_FILE
    if file.exists() or file.is_symlink():  # a missing file is reported by the check itself
        infile.check_regular(file, "检查点文件", infile.MAX_TABLE_BYTES)  # never a FIFO or device
    with open_session() as session:
        result = chain.verify(session.connection())
        session.rollback()
        report = checkpoint.check(session, file, anchors, result)
    ok = result.ok and report.ok
    if as_json:
        print_json({**result.to_dict(), "ok": ok, "chain_id": report.chain_id,
                    "checkpoint_file": str(file), "checked": report.checked,
                    "checkpoint_problems": report.problems,
                    "checkpoint_warnings": report.warnings})
    else:
        for warning in report.warnings:
            console.print(f"[yellow]注意[/]：{safe(warning)}")
        if ok:
            console.print(f"[green]审计链校验通过[/]：{result.count} 条记录，链头 "
                          f"{safe(result.head_hash[:16])}…（链标识 {safe(report.chain_id)}；"
                          f"对照检查点与锚点 {report.checked} 个）")
        if not result.ok:
            err_console.print(f"[bold red]审计链校验失败[/]：第 {result.first_bad_seq} 条 — "
                              f"{safe(result.reason)}")
        for problem in report.problems:
            err_console.print(f"[bold red]检查点或锚点不符[/]：{safe(problem)}")
    if not ok:
        raise typer.Exit(1)


@app.command("replay")
@handle_errors
def replay_cmd(as_json: JsonOpt = False) -> None:
    """按审计日志重放每个实体的状态，并与数据表比较；有差异时以 1 退出。"""
    with open_session() as session:
        report = replay(session.connection())
    if as_json:
        print_json({"ok": report.ok, "entities": report.entities, "events": report.events,
                    "differences": [d.__dict__ for d in report.differences]})
    elif report.ok:
        console.print(f"[green]回放一致[/]：{report.entities} 个实体、{report.events} 条事件与数据表相符")
    else:
        table = Table(title=f"回放发现 {len(report.differences)} 处差异")
        for header in ("类型", "编号", "字段", "回放结果", "数据表"):
            table.add_column(header)
        for d in report.differences[:200]:
            table.add_row(*cells(d.entity_type, d.code, d.field, d.replayed, d.table))
        console.print(table)
    if not report.ok:
        raise typer.Exit(1)


@app.command("export")
@handle_errors
def export_cmd(
    fmt: Annotated[str, typer.Option("--format", help="jsonl 或 csv")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="输出文件（默认标准输出）")] = None,
    viewer: ViewAsOpt = None,
) -> None:
    """导出全部审计记录（含哈希，可离线复核）；--as：仅导出此人可见的记录（审计员：其辖区）。"""
    if fmt not in ("jsonl", "csv"):
        raise InvalidInput(f"不支持的格式「{fmt}」，可用：jsonl、csv")
    if output:
        ensure_writable(output)
    with open_session() as session:
        stmt = select(*(AUDIT.c[f] for f in EXPORT_FIELDS)).order_by(AUDIT.c.seq)
        condition = seeing(session, viewer).audit_where(AUDIT)
        if condition is not None:
            stmt = stmt.where(condition)
        rows = session.connection().execution_options(yield_per=10_000).execute(stmt)
        if output is None:
            try:
                _write(sys.stdout, fmt, rows)
                sys.stdout.flush()
            except OSError as exc:  # a closed pipe or a full disk behind stdout
                raise OutputFailed(exc) from exc
            return
        with writing(output) as temp, temp.open("w", encoding="utf-8", newline="") as handle:
            count = _write(handle, fmt, rows)
    console.print(f"已导出 {count} 条审计记录到 {safe(output)}")


def _write(handle: Any, fmt: str, rows: Any) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.writer(handle)
        writer.writerow(EXPORT_FIELDS)
        for row in rows:
            writer.writerow(row)
            count += 1
        return count
    for row in rows:
        handle.write(json.dumps(dict(zip(EXPORT_FIELDS, row, strict=True)), ensure_ascii=False))
        handle.write("\n")
        count += 1
    return count
