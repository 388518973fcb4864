"""``safeloop risk``: the risk register (风险分级管控) — identify, evaluate, approve, and the risk
list, four-colour map and notice cards."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import select

from core.calendar import local_date
from core.errors import InvalidInput, NotFound
from core.rules import configured_bands
from core.timeparse import to_local
from models.db import utcnow
from models.enums import MeasureKind, RiskGrade
from models.tables import RISK_POINT as RP
from safeloop import risks
from safeloop.cli import fire
from safeloop.cli.audit import entity_with_history, print_history
from safeloop.cli.common import (
    STATE,
    AsOfOpt,
    AsOpt,
    JsonOpt,
    as_of_option,
    code_arg,
    code_option,
    console,
    ensure_writable,
    handle_errors,
    open_session,
    print_json,
    writing,
)
from safeloop.cli.event_fields import Given, Request, given
from safeloop.cli.output import DETAIL_LIMIT, cells, safe
from safeloop.cli.reading import ViewAsOpt, check_enterprise, scoped, seeing
from states import engine, risk_grading
from states.jobs import risk_checklists
from states.workflows.risk import RISK

app = typer.Typer(help="风险分级管控：风险点辨识、评价（LEC/LS）、审批、清单、四色图、告知卡",
                  no_args_is_help=True)
EnterpriseArg = Annotated[str, code_arg("企业编号")]
CodeArg = Annotated[str, code_arg("风险点编号，如 FX-000001")]
OutOpt = Annotated[Path, typer.Option("--out", help="输出文件")]
# Events that change which checklist items a plan carries (对表检查).
RESYNC_EVENTS = {"approve", "retire", "revise"}


def _resync(session: Any, request: Request, result: engine.FireResult, moment: Any) -> Any:
    """After an event that changes which checklist items a plan carries (对表检查), derive them
    again for the point's enterprise; the command says how many plans changed."""
    if result.event not in RESYNC_EVENTS:
        return None
    enterprise = session.connection().execute(
        select(RP.c.enterprise_id).where(RP.c.id == result.entity_id)).scalar_one()
    session.rollback()
    return risk_checklists.sync(session, as_of=moment, zone=STATE.settings.timezone,
                                enterprise_ids=[enterprise], actor=request.actor)


def _fire(request: Request, as_json: bool) -> None:
    """Fire through the one implementation, re-deriving checklists as ``risk fire`` does."""
    _result, derived = fire.run(RISK, request, as_json, after=_resync)
    if derived is not None and derived.plans_changed and not as_json:
        console.print(f"已更新 {derived.plans_changed} 个排查计划的检查表（自下一周期起生效）")


def _measures(values: list[str] | None) -> list[dict[str, str]]:
    found = []
    for value in values or []:
        kind, sep, text = value.partition(":")
        if not sep:
            kind, sep, text = value.partition("：")
        if not sep or kind.strip() not in {k.value for k in MeasureKind}:
            allowed = "、".join(f"{k.value}（{k.label}）" for k in MeasureKind)
            raise InvalidInput(f"--measure 应为 类别:措施，类别可选 {allowed}；收到「{value}」")
        found.append({"kind": kind.strip(), "text": text.strip()})
    return found


@app.command("area")
@handle_errors
def area_cmd(enterprise: EnterpriseArg,
             name: Annotated[str, typer.Argument(help="区域名称，如 液氨储罐区")],
             polygon: Annotated[str, typer.Option(
                 "--polygon", help="厂区平面图坐标 \"x,y x,y x,y …\"（原点左上）")],
             actor: AsOpt, as_of: AsOfOpt = None) -> None:
    """登记或重绘厂区平面图上的一个区域（四色图按区域着色）。"""
    points = risks.parse_polygon(polygon)
    with open_session() as session:
        _id, created = risks.set_area(session, enterprise, name, points, actor=actor,
                                      as_of=as_of_option(as_of))
    console.print(f"区域「{safe(name)}」已{'登记' if created else '更新坐标'}（{len(points)} 个顶点）")


@app.command("load")
@handle_errors
def load_cmd(path: Annotated[Path, typer.Argument(help="风险点登记 YAML 文件")], actor: AsOpt,
             as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """从 YAML 文件登记区域和风险点（可附带评价）；已登记的同名风险点跳过。"""
    with open_session() as session:
        report = risks.load_register(session, path, actor=actor, as_of=as_of_option(as_of))
    if as_json:
        print_json(report.__dict__)
        return
    console.print(f"区域 {report.areas} 个；新登记风险点 {len(report.created or [])} 个"
                  f"（评价 {report.evaluated} 个）；已存在跳过 {len(report.skipped or [])} 个")


@app.command("add")
@handle_errors
def add_cmd(
    actor: AsOpt,
    unit: Annotated[str, typer.Option(help="所在单位编号")],
    name: Annotated[str, typer.Option(help="风险点名称")],
    kind: Annotated[str, typer.Option(help="facility（设备设施/场所区域）或 operation（作业活动）")],
    hazard_factor: Annotated[list[str], typer.Option("--hazard-factor", help="危险有害因素，可重复")],
    accident: Annotated[list[str], typer.Option("--accident", help="可能导致的事故类型（GB 6441），可重复")],
    measure: Annotated[list[str], typer.Option("--measure", help="管控措施 类别:内容，可重复")],
    area: Annotated[str | None, typer.Option(help="所在区域（须已登记）")] = None,
    consequences: Annotated[str, typer.Option(help="事故后果")] = "",
    responsible: Annotated[str | None, typer.Option(help="责任人编号")] = None,
    contacts: Annotated[str, typer.Option(help="联系方式")] = "",
    emergency: Annotated[list[str] | None, typer.Option("--emergency", help="应急联系电话，可重复")] = None,
    as_of: AsOfOpt = None, as_json: JsonOpt = False,
) -> None:
    """辨识登记一个风险点。"""
    data: dict[str, Any] = {"unit": unit, "name": name, "kind": kind, "hazard_factors": hazard_factor,
                            "accident_types": accident, "consequences": consequences,
                            "measures": _measures(measure), "contacts": contacts,
                            "emergency_contacts": emergency or []}
    if area:
        data["area"] = area
    if responsible:
        data["responsible"] = responsible
    with open_session() as session:
        result = engine.create(session, RISK, actor=actor, data=data, as_of=as_of_option(as_of))
    if as_json:
        print_json(result.__dict__)
    else:
        console.print(f"已登记风险点 [bold]{safe(result.code)}[/]（{RISK.state_label(result.to_state)}）")


@app.command("evaluate")
@handle_errors
def evaluate_cmd(
    code: CodeArg, actor: AsOpt,
    method: Annotated[str, typer.Option(help="lec（D=L×E×C）或 ls（R=L×S 风险矩阵）")],
    factor: Annotated[list[str], typer.Option("--factor", "-f", help="因素取值，如 L=6，可重复")],
    note: Annotated[str, typer.Option(help="评价说明")] = "",
    as_of: AsOfOpt = None, as_json: JsonOpt = False,
) -> None:
    """风险评价：按 LEC 或 LS 计算风险值并定级（分级标准可配置）。"""
    factors: dict[str, Any] = {}
    for pair in factor:
        key, sep, value = pair.partition("=")
        if not sep:
            raise InvalidInput(f"--factor 应为 因素=取值，如 L=6；收到「{pair}」")
        factors[key.strip().upper()] = value.strip()
    try:
        preview = risk_grading.evaluate(method, factors, configured_bands())
    except InvalidInput:
        preview = None  # the engine names the problem, with nothing written
    options = given(method=(method, "--method"), note=(note, "--note"))
    options["factors"] = Given(factors, "--factor")  # checked against the rating tables
    _fire(Request(code, "evaluate", actor, as_of=as_of, options=options), as_json)
    if preview is not None and not as_json:
        style = preview.style
        console.print(f"风险值 {preview.score:g} → [bold]{preview.grade.label}（{style.colour}色）[/]，"
                      f"管控层级：{style.tier_label}")


@app.command("approve")
@handle_errors
def approve_cmd(code: CodeArg, actor: AsOpt, as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """审批风险分级（单位负责人或以上；不能是评价人本人），生效后纳入对应层级的排查表。"""
    _fire(Request(code, "approve", actor, as_of=as_of), as_json)


fire.mount(app, RISK, code_help="风险点编号，如 FX-000001", after=_resync)


@app.command("list")
@handle_errors
def list_cmd(enterprise: Annotated[str | None, typer.Option(help="企业编号")] = None,
             grade: Annotated[str | None, typer.Option(
                 help="按等级筛选：major/significant/general/low")] = None,
             state: Annotated[str | None, typer.Option(help="按状态筛选")] = None,
             viewer: ViewAsOpt = None, as_json: JsonOpt = False) -> None:
    """风险点清单（--as：仅此人可见的风险点）。"""
    if grade is not None and grade not in {g.value for g in RiskGrade}:
        raise InvalidInput(f"未知的风险等级「{grade}」，可用：" + "、".join(g.value for g in RiskGrade))
    if state is not None and state not in RISK.states:
        raise InvalidInput(f"未知状态「{state}」，可用：{'、'.join(RISK.states)}")
    stmt = select(RP).order_by(RP.c.id).limit(1000)
    with open_session() as session:
        visibility = seeing(session, viewer)
        if enterprise is not None:
            check_enterprise(session, visibility, enterprise)
            stmt = stmt.where(RP.c.enterprise_id == risks.enterprise_of(session, enterprise)[0])
        stmt = scoped(stmt, visibility, RISK)
        if grade:
            stmt = stmt.where(RP.c.grade == grade)
        if state:
            stmt = stmt.where(RP.c.state == state)
        rows = [dict(r) for r in session.connection().execute(stmt).mappings()]
    if as_json:
        print_json(rows)
        return
    table = Table(title="风险点")
    for header in ("编号", "名称", "状态", "评价", "风险等级", "生效等级", "下次复评"):
        table.add_column(header, no_wrap=header == "编号")
    zone = STATE.settings.timezone
    for r in rows:
        score = f"{r['method'].upper()} {r['score']:g}" if r["method"] else "—"
        review = to_local(r["review_due"], zone, "%Y-%m-%d") if r["review_due"] else "—"
        table.add_row(*cells(r["code"], r["name"], RISK.state_label(r["state"]), score,
                             _grade(r["grade"]), _grade(r["approved_grade"]), review))
    console.print(table)


def _grade(value: str | None) -> str:
    if not value:
        return "—"
    grade = RiskGrade(value)
    return f"{grade.label}（{risk_grading.STYLES[grade].colour}）"


@app.command("show")
@handle_errors
def show_cmd(code: CodeArg, viewer: ViewAsOpt = None, as_json: JsonOpt = False) -> None:
    """显示风险点详情和操作记录（--as：此人看不到的与不存在的一样）。"""
    with open_session() as session:
        record = entity_with_history(session, RISK, code, seeing(session, viewer))
    if as_json:
        print_json(record)
        return
    table = Table(title=f"风险点 {safe(code)}", show_header=False)

    def row(label: str, value: Any) -> None:
        table.add_row(*cells(label, value, limit=DETAIL_LIMIT))

    row("名称", record["name"])
    row("状态", RISK.state_label(record["state"]))
    row("危险有害因素", "；".join(record["hazard_factors"] or []))
    row("事故类型", "、".join(record["accident_types"] or []))
    if record["method"]:
        factors = " × ".join(f"{k}={v:g}" for k, v in (record["factors"] or {}).items())
        row("评价", f"{risk_grading.METHODS[record['method']]}：{factors} = {record['score']:g}")
    row("评价等级", _grade(record["grade"]))
    row("生效等级", _grade(record["approved_grade"]))
    for m in record["measures"] or []:
        row(MeasureKind(m["kind"]).label, m["text"])
    if record["review_reason"]:
        row("复评原因", record["review_reason"])
    console.print(table)
    print_history(record["history"])


def _views(session: Any, enterprise: str, viewer: str | None) -> tuple[str, list[Any]]:
    """An enterprise's risk points as the exports show them, limited to what ``viewer`` sees."""
    visibility = seeing(session, viewer)
    check_enterprise(session, visibility, enterprise)
    return risks.risk_views(session, enterprise, zone=STATE.settings.timezone,
                            visible=visibility.where(RISK))


@app.command("export")
@handle_errors
def export_cmd(enterprise: EnterpriseArg, out: OutOpt,
               fmt: Annotated[str, typer.Option("--format", help="xlsx 或 csv")] = "xlsx",
               viewer: ViewAsOpt = None) -> None:
    """导出风险清单（管控责任清单、管控措施清单；--as：仅此人可见的风险点）。"""
    from safeloop.reports.risk_list import csv_paths, risk_list_csv, write_risk_list_xlsx

    if fmt not in ("xlsx", "csv"):
        raise InvalidInput(f"未知格式「{fmt}」，可用：xlsx、csv")
    targets = [out] if fmt == "xlsx" else csv_paths(out)
    for target in (out, *targets):  # the named path too: /dev/full-….csv is not what was meant
        ensure_writable(target)
    with open_session() as session:
        name, views = _views(session, enterprise, viewer)
    today = _today()
    if fmt == "xlsx":
        with writing(out) as temp:
            write_risk_list_xlsx(views, temp, enterprise=name, as_of=today)
    else:
        for target, text in risk_list_csv(views, out, enterprise=name, as_of=today):
            with writing(target) as temp:
                temp.write_text(text, encoding="utf-8-sig", newline="")
    console.print(f"风险清单：{len(views)} 个风险点 → " + "、".join(safe(p) for p in targets))


@app.command("map")
@handle_errors
def map_cmd(enterprise: EnterpriseArg, out: OutOpt, as_of: AsOfOpt = None,
            viewer: ViewAsOpt = None) -> None:
    """绘制安全风险四色分布图（SVG）。"""
    from safeloop.reports.risk_map import render_risk_map

    moment = as_of_option(as_of)
    day = local_date(moment, STATE.settings.timezone) if moment else _today()
    ensure_writable(out)
    with open_session() as session:
        visibility = seeing(session, viewer)
        check_enterprise(session, visibility, enterprise)
        drawing = risks.risk_map(session, enterprise, as_of=day, zone=STATE.settings.timezone,
                                 visible=visibility.where(RISK))
    with writing(out) as temp:
        temp.write_text(render_risk_map(drawing), encoding="utf-8")
    console.print(f"四色分布图：{len(drawing.areas)} 个区域 → {safe(out)}")


@app.command("card")
@handle_errors
def card_cmd(enterprise: EnterpriseArg, out: OutOpt,
             code: Annotated[list[str] | None, code_option(
                 "--code", help="只输出这些风险点，可重复")] = None,
             viewer: ViewAsOpt = None) -> None:
    """生成安全风险告知卡（可打印的 HTML，每张一页；--out 以 .pdf 结尾时输出 PDF）。"""
    from safeloop.reports.risk_card import render_cards

    ensure_writable(out)
    with open_session() as session:
        name, views = _views(session, enterprise, viewer)
    if code:
        unknown = sorted(set(code) - {v.code for v in views})
        if unknown:
            raise NotFound(f"企业「{enterprise}」没有这些风险点：{'、'.join(unknown)}")
        views = [v for v in views if v.code in code]
    html = render_cards(views, enterprise=name, as_of=_today())
    if out.suffix.lower() == ".pdf":
        from safeloop.reports.pdf import write_pdf

        with writing(out) as temp:
            pdf = write_pdf(html, temp)
        console.print(f"告知卡：{len(views)} 张，PDF {pdf.pages} 页（字体：{safe('、'.join(pdf.fonts))}）"
                      f"→ {safe(out)}")
        return
    with writing(out) as temp:
        temp.write_text(html, encoding="utf-8")
    console.print(f"告知卡：{len(views)} 张 → {safe(out)}")


@app.command("derive")
@handle_errors
def derive_cmd(actor: Annotated[str, typer.Option("--as", help="操作人编号")] = engine.SYSTEM_ACTOR,
               as_of: AsOfOpt = None, as_json: JsonOpt = False) -> None:
    """把已审批风险点的管控措施纳入排查计划的检查表（每日生成任务前也会自动执行）。"""
    with open_session() as session:
        report = risk_checklists.sync(session, as_of=as_of_option(as_of),
                                      zone=STATE.settings.timezone, actor=actor)
    if as_json:
        print_json(report.to_dict())
    else:
        console.print(f"检查 {report.enterprises} 家企业，更新 {report.plans_changed} 个排查计划的检查表")


@app.command("bands")
@handle_errors
def bands_cmd(as_json: JsonOpt = False) -> None:
    """显示现行风险分级标准（可用 SAFELOOP_RISK_BANDS 配置）。"""
    table_data = configured_bands()
    if as_json:
        print_json(table_data)
        return
    for method, limits in table_data.items():
        table = Table(title=risk_grading.METHODS[method])
        table.add_column("等级")
        table.add_column("颜色")
        table.add_column("管控层级")
        table.add_column("条件")
        op = ">" if method == "lec" else "≥"
        for grade in risk_grading.RANKED:
            style = risk_grading.STYLES[grade]
            condition = (f"{'D' if method == 'lec' else 'R'} {op} {limits[grade.value]:g}"
                         if grade.value in limits else "其余")
            table.add_row(grade.label, style.colour, style.tier_label, condition)
        console.print(table)


def _today() -> date:
    return local_date(utcnow(), STATE.settings.timezone)
