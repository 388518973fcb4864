"""``safeloop calendar``: how far the working-day calendar reaches, and installing next year's.

The installed schedule lives in the storage folder (``core.calendar.official``); loading one is
validated whole before anything is written, recorded in the audit trail with the file's hash,
and takes effect for every process that builds its rules afterwards.
"""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from core import infile
from core.calendar import CC_YEARS, local_date, parse_overrides
from core.calendar.official import check_schedule, dump, installed, official_path, replace_years
from core.errors import InvalidInput
from core.rules import work_calendar
from core.timeparse import parse_local
from models.db import utcnow
from safeloop.cli.common import (
    STATE,
    console,
    handle_errors,
    open_session,
    print_json,
    resolve_operator,
    writing,
)
from safeloop.cli.usage import ZhGroup
from states.jobs import calendar_watch
from states.records import record

app = typer.Typer(cls=ZhGroup, help="工作日历：覆盖年份与正式节假日安排的加载", no_args_is_help=True)


def _today(on: str | None) -> date:
    zone = STATE.settings.timezone
    return local_date(parse_local(on, zone, what="--on") if on else utcnow(), zone)


@app.command("status")
@handle_errors
def status_cmd(
    on: Annotated[str | None, typer.Option("--on", help="从哪一天看（默认今天），如 2026-12-01")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """工作日历覆盖到哪一年、下一个未覆盖的日子，以及依赖工作日历的计划与期限。"""
    settings = STATE.settings
    today = _today(on)
    calendar = work_calendar(settings)
    official = installed(settings.storage_dir)
    with open_session() as session:
        found = calendar_watch.status(session.connection(), calendar, today)
    sources = {"national": f"chinesecalendar {min(CC_YEARS)}–{max(CC_YEARS)}",
               "official": sorted(official.covered_years),
               "official_file": str(official_path(settings.storage_dir)),
               "local_file": str(settings.calendar_overrides) if settings.calendar_overrides else None}
    if as_json:
        print_json({**found.to_dict(), "sources": sources})
        return
    console.print(f"已覆盖年份：{year_ranges(found.covered_years)}", markup=False)
    console.print(f"  国家安排：{sources['national']}；已加载的正式安排："
                  f"{'、'.join(map(str, sources['official'])) or '无'}；本地覆盖文件："
                  f"{sources['local_file'] or '未设置'}", markup=False)
    if found.days_left == 0:
        console.print(f"[red]今天（{today}）已不在工作日历覆盖范围内[/red]")
    else:
        colour = "red" if found.short else "green"
        console.print(f"下一个未覆盖的日子：[{colour}]{found.first_uncovered}[/{colour}]"
                      f"（还有 {found.days_left} 天）")
    console.print("依赖工作日历的：", markup=False)
    for key, label in calendar_watch.DEPENDS_LABELS.items():
        console.print(f"  {label}：{found.depends[key]}", markup=False)
    if found.short:
        console.print(f"请加载 {found.first_uncovered.year} 年的正式节假日安排："
                      f"safeloop calendar load 文件.yaml（格式同日历覆盖文件，"
                      f"示例见 safeloop/data/calendar_overrides.example.yaml）", markup=False)


@app.command("load")
@handle_errors
def load_cmd(
    file: Annotated[Path, typer.Argument(help="正式节假日安排（YAML，格式同日历覆盖文件）")],
    actor: Annotated[str | None, typer.Option(
        "--as", help="记入审计日志的操作人（默认 admin；使用令牌时为令牌本人）")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """校验并安装一年或几年的正式节假日与调休安排（整份校验通过才写入，记入审计日志）。"""
    who = resolve_operator(actor)
    settings = STATE.settings
    raw = infile.read_bytes(file, "日历文件", infile.MAX_YAML_BYTES)
    schedule = parse_overrides(infile.decode(raw, str(file), "日历文件"), source=file.name)
    check_schedule(schedule)
    current = installed(settings.storage_dir)
    merged = replace_years(current, schedule)
    target = official_path(settings.storage_dir)
    previous = target.read_bytes() if target.is_file() else None
    replaced = sorted(current.covered_years & schedule.covered_years)
    facts = {"file": file.name, "sha256": hashlib.sha256(raw).hexdigest(),
             "years": sorted(schedule.covered_years), "replaced_years": replaced,
             "holidays": len(schedule.holidays), "working_days": len(schedule.working_days)}
    with open_session() as session:
        seq = record(session, entity_type="calendar", entity_code="official",
                     event="load_calendar", actor=who, role="admin", data=facts)
        _install(target, dump(merged))
        try:
            session.commit()
        except BaseException:
            _restore(target, previous)
            raise
    if as_json:
        print_json({**facts, "audit_seq": seq, "installed": str(target)})
        return
    years = "、".join(str(y) for y in facts["years"])
    again = f"（替换了已加载的 {'、'.join(map(str, replaced))} 年）" if replaced else ""
    console.print(f"已安装 {years} 年的节假日安排{again}：节假日 {facts['holidays']} 天，调休上班 "
                  f"{facts['working_days']} 天（审计序号 {seq}）。查看：safeloop calendar status",
                  markup=False)


def year_ranges(years: list[int]) -> str:
    """2004–2026、2028: runs of years, as people read them."""
    runs: list[list[int]] = []
    for year in sorted(years):
        if runs and runs[-1][1] == year - 1:
            runs[-1][1] = year
        else:
            runs.append([year, year])
    return "、".join(str(a) if a == b else f"{a}–{b}" for a, b in runs) or "无"


def _install(target: Path, text: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInput(f"无法创建存储目录 {target.parent}：{exc.strerror}") from exc
    with writing(target) as temp:
        temp.write_text(text, encoding="utf-8")


def _restore(target: Path, previous: bytes | None) -> None:
    """The commit failed: put the file back as it was, so file and trail agree."""
    if previous is None:
        target.unlink(missing_ok=True)
    else:
        with writing(target) as temp:
            temp.write_bytes(previous)
