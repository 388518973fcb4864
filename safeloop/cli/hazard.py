"""``safeloop hazard``: report, list, show, fire events on hazards, and see what one may do now."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from core.errors import InvalidInput
from core.timeparse import parse_local, to_local
from core.yamlfile import read_yaml
from models import Hazard, Person, RiskPoint, Unit
from models.enums import HazardCategory, HazardGrade, HazardSource
from safeloop import evidence
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
from safeloop.cli.event_fields import Given, Request, given
from safeloop.cli.output import DETAIL_LIMIT, cells, safe
from safeloop.cli.reading import ViewAsOpt, scoped, seeing
from states import engine
from states.workflows.hazard import HAZARD, PLAN_PARTS

app = typer.Typer(help="隐患：上报、查询、流转（hazards: report, list, show, fire events）",
                  no_args_is_help=True)


def _store_evidence(session: Any, files: list[Path] | None) -> list[dict[str, Any]]:
    storage = STATE.settings.storage_dir
    return [evidence.store(session, storage, f) for f in files or []]


@app.command("report")
@handle_errors
def report_cmd(
    actor: AsOpt,
    unit: Annotated[str, typer.Option(help="发现隐患的单位编号")],
    title: Annotated[str, typer.Option(help="隐患名称")],
    category: Annotated[HazardCategory, typer.Option(help="类别：thing 物 / behaviour 人 / management 管理")],
    grade: Annotated[HazardGrade, typer.Option(help="等级：general 一般 / major 重大")] = HazardGrade.general,
    description: Annotated[str, typer.Option(help="描述")] = "",
    location: Annotated[str, typer.Option(help="地点")] = "",
    source: Annotated[HazardSource, typer.Option(help="来源")] = HazardSource.ad_hoc,
    found_at: Annotated[str | None, typer.Option(help="发现时间（默认现在）")] = None,
    evidence_files: EvidenceOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """上报一条隐患。"""
    zone = STATE.settings.timezone
    with open_session() as session:
        data: dict[str, Any] = {
            "unit": unit, "title": title, "category": category.value, "grade": grade.value,
            "description": description, "location": location, "source": source.value,
            "evidence": _store_evidence(session, evidence_files),
        }
        if found_at:
            data["found_at"] = parse_local(found_at, zone, what="--found-at")
        result = engine.create(session, HAZARD, actor=actor, data=data, as_of=as_of_option(as_of))
    if as_json:
        print_json(result.__dict__)
    else:
        console.print(f"已上报隐患 [bold]{safe(result.code)}[/]（{HAZARD.state_label(result.to_state)}）")


def _parse_plan(plan_file: Path | None, parts: list[str] | None) -> dict[str, Given]:
    """The plan's parts from the YAML file, then ``--plan-part key=text`` (which win)."""
    plan: dict[str, Given] = {}
    if plan_file is not None:
        loaded = read_yaml(plan_file, "治理方案文件")[0] or {}
        if not isinstance(loaded, dict):
            raise InvalidInput(f"治理方案文件 {plan_file} 应为键值映射，键为：{', '.join(PLAN_PARTS)}")
        plan.update({str(k): Given(str(v), "治理方案文件") for k, v in loaded.items()})
    for part in parts or []:
        key, sep, value = part.partition("=")
        if not sep:
            raise InvalidInput(f"--plan-part 应为 键=内容，收到「{part}」")
        plan[key.strip()] = Given(value.strip(), "--plan-part")
    return plan


@app.command("fire", cls=fire.command_class(HAZARD), help=fire.fire_help(HAZARD))
@handle_errors
def fire_cmd(
    code: Annotated[str, code_arg("隐患编号，如 YH-000001")],
    event: fire.EventArg,
    actor: AsOpt,
    sets: fire.SetOpt = None,
    role: fire.RoleOpt = None,
    reason: Annotated[str | None, typer.Option("--reason", "--comment", help="原因/备注")] = None,
    owner: Annotated[str | None, typer.Option(help="整改责任人编号（assign）")] = None,
    acceptor: Annotated[str | None, typer.Option(help="验收人编号（assign）")] = None,
    deadline: Annotated[str | None, typer.Option(help="整改期限（assign/extend_deadline）")] = None,
    measures: Annotated[str | None, typer.Option(help="整改措施")] = None,
    funds: Annotated[str | None, typer.Option(help="整改资金（元）")] = None,
    grade: Annotated[HazardGrade | None, typer.Option(help="新等级（regrade）")] = None,
    level: Annotated[int | None, typer.Option(help="升级级别 1-3（escalate）")] = None,
    findings: Annotated[str | None, typer.Option(help="复查结论（reinspect）")] = None,
    plan_file: Annotated[Path | None, typer.Option("--plan", help="治理方案 YAML（六项）")] = None,
    plan_part: Annotated[list[str] | None, typer.Option(help="方案某项：键=内容，可重复")] = None,
    evidence_files: EvidenceOpt = None,
    expected_version: fire.VersionOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The generic ``fire`` with the hazard's friendly options: each names a field of the
    event's params (``--owner`` is ``--set owner=…``) and is parsed the same way."""
    options = given(
        owner=(owner, "--owner"), acceptor=(acceptor, "--acceptor"),
        deadline=(deadline, "--deadline"), measures=(measures, "--measures"),
        funds=(funds, "--funds"), grade=(grade.value if grade else None, "--grade"),
        level=(str(level) if level is not None else None, "--level"),
        findings=(findings, "--findings"))
    options.update(_parse_plan(plan_file, plan_part))
    request = Request(code, event, actor, sets or (), evidence_files or (), reason, role,
                      expected_version, as_of, options)
    fire.run(HAZARD, request, as_json)


fire.mount(app, HAZARD, code_help="隐患编号", fire=False)


def _query() -> Any:
    owner = aliased(Person)
    finder = aliased(Person)
    return (
        select(Hazard, Unit.key.label("unit_key"), Unit.name.label("unit_name"),  # type: ignore[attr-defined]
               owner.key.label("owner_key"), owner.name.label("owner_name"),  # type: ignore[attr-defined]
               finder.name.label("finder_name"),  # type: ignore[attr-defined]
               RiskPoint.code.label("risk_code"))  # type: ignore[attr-defined]
        .join(Unit, Unit.id == Hazard.unit_id)  # type: ignore[arg-type]
        .outerjoin(RiskPoint, RiskPoint.id == Hazard.risk_point_id)  # type: ignore[arg-type]
        .outerjoin(owner, owner.id == Hazard.owner_id)  # type: ignore[arg-type]
        .join(finder, finder.id == Hazard.finder_id)  # type: ignore[arg-type]
    )


def _record(row: Any) -> dict[str, Any]:
    h: Hazard = row[0]
    zone = STATE.settings.timezone
    return {
        "code": h.code, "title": h.title, "state": h.state, "state_label": HAZARD.state_label(h.state),
        "grade": h.grade, "category": h.category, "unit": row.unit_key, "unit_name": row.unit_name,
        "location": h.location, "source": h.source, "found_at": to_local(h.found_at, zone),
        "finder": row.finder_name, "owner": row.owner_key, "owner_name": row.owner_name,
        "deadline": to_local(h.deadline, zone), "measures": h.measures,
        "funds": str(h.funds) if h.funds is not None else None, "plan": h.plan,
        "escalation_level": h.escalation_level, "version": h.version,
        "reinspected_at": to_local(h.reinspected_at, zone),
        "accepted_at": to_local(h.accepted_at, zone), "closed_at": to_local(h.closed_at, zone),
        "cancel_reason": h.cancel_reason, "checklist_item": h.checklist_item,
        "risk_point": row.risk_code,
    }


@app.command("list")
@handle_errors
def list_cmd(
    state: Annotated[str | None, typer.Option(help="按状态筛选")] = None,
    grade: Annotated[HazardGrade | None, typer.Option(help="按等级筛选")] = None,
    unit: Annotated[str | None, typer.Option(help="单位编号（含下级单位）")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="最多显示条数")] = 50,
    viewer: ViewAsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """隐患台账列表（最新的在前；--as：仅此人可见的隐患）。"""
    if state is not None and state not in HAZARD.states:
        raise InvalidInput(f"未知状态「{state}」，可用：{'、'.join(HAZARD.states)}")
    stmt = _query().order_by(Hazard.id.desc()).limit(limit)  # type: ignore[union-attr]
    count = select(func.count()).select_from(Hazard)
    with open_session() as session:
        if state:
            stmt = stmt.where(Hazard.state == state)
            count = count.where(Hazard.state == state)
        if grade:
            stmt = stmt.where(Hazard.grade == grade.value)
            count = count.where(Hazard.grade == grade.value)
        if unit:
            path = session.exec(select(Unit.path).where(Unit.key == unit)).first()  # type: ignore[call-overload]
            if path is None:
                raise InvalidInput(f"单位「{unit}」不存在")
            below = select(Unit.id).where(Unit.path.startswith(path[0]))  # type: ignore[attr-defined]
            stmt = stmt.where(Hazard.unit_id.in_(below))  # type: ignore[attr-defined]
            count = count.where(Hazard.unit_id.in_(below))  # type: ignore[attr-defined]
        visibility = seeing(session, viewer)
        stmt, count = scoped(stmt, visibility, HAZARD), scoped(count, visibility, HAZARD)
        records = [_record(r) for r in session.exec(stmt).all()]  # type: ignore[call-overload]
        total = session.connection().execute(count).scalar_one()
    if as_json:
        print_json({"total": total, "items": records})
        return
    table = Table(title=f"隐患台账（共 {total} 条，显示 {len(records)} 条）")
    for header in ("编号", "名称", "等级", "状态", "单位", "责任人", "期限", "升级"):
        table.add_column(header, no_wrap=header in ("编号", "状态"))
    for r in records:
        table.add_row(*cells(r["code"], r["title"], HazardGrade(r["grade"]).label, r["state_label"],
                             r["unit_name"], r["owner_name"] or "", r["deadline"],
                             r["escalation_level"] or ""))
    console.print(table)


@app.command("show")
@handle_errors
def show_cmd(code: Annotated[str, code_arg("隐患编号")], viewer: ViewAsOpt = None,
             as_json: JsonOpt = False) -> None:
    """显示一条隐患的台账字段和全部操作记录（--as：此人看不到的与不存在的一样）。"""
    from safeloop.cli.audit import history

    with open_session() as session:
        stmt = scoped(_query().where(Hazard.code == code), seeing(session, viewer), HAZARD)
        row = session.exec(stmt).first()
        if row is None:
            raise InvalidInput(f"隐患「{code}」不存在")
        record = _record(row)
        record["grade_label"] = HazardGrade(record["grade"]).label
        record["category_label"] = HazardCategory(record["category"]).label
        record["history"] = history(session, "hazard", row[0].id)
    if as_json:
        print_json(record)
        return
    table = Table(title=f"隐患 {safe(code)}", show_header=False)
    labels = {"title": "名称", "state_label": "状态", "grade_label": "等级", "category_label": "类别",
              "unit_name": "单位", "location": "地点", "found_at": "发现时间", "finder": "发现人",
              "owner_name": "整改责任人", "deadline": "整改期限", "measures": "整改措施",
              "funds": "资金", "escalation_level": "升级级别", "reinspected_at": "复查时间",
              "accepted_at": "验收时间",
              "cancel_reason": "撤销原因", "checklist_item": "检查项", "risk_point": "关联风险点",
              "version": "版本"}
    for key, label in labels.items():
        if record.get(key) not in (None, ""):
            table.add_row(*cells(label, record[key], limit=DETAIL_LIMIT))
    if record["plan"]:
        for key, label in PLAN_PARTS.items():
            table.add_row(*cells(f"方案·{label}", record["plan"].get(key, ""), limit=DETAIL_LIMIT))
    console.print(table)
    from safeloop.cli.audit import print_history

    print_history(record["history"])
