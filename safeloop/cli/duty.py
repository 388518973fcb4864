"""``safeloop duty``: recurring duties (履职任务) — list, show, kinds, and the generic fire/events.

The kinds come from the rule pack in force (``SAFELOOP_DUTY_RULES`` or the shipped one); the
duties themselves are created by the ``materialize-inspections`` flow and swept by
``sweep-deadlines``; people record them with ``duty fire CODE complete|make_up``.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table
from sqlalchemy import func, select

from core.duty_rules import SCOPE_LABELS, DutyKind, DutyPack, load_pack
from core.errors import InvalidInput, NotFound
from core.timeparse import to_local
from models.enums import Role
from models.tables import ENTERPRISE, UNIT
from safeloop.cli import fire
from safeloop.cli.audit import entity_with_history, print_history
from safeloop.cli.common import STATE, JsonOpt, code_arg, console, handle_errors, open_session, print_json
from safeloop.cli.output import DETAIL_LIMIT, cells, safe
from safeloop.cli.reading import ViewAsOpt, check_enterprise, scoped, seeing
from states.workflows.duty import DUTY

app = typer.Typer(help="履职任务：会议、带班值班、风险研判承诺、应急演练、重大危险源检查、预案评估",
                  no_args_is_help=True)
CodeArg = Annotated[str, code_arg("履职任务编号，如 jinhua-group/risk_commitment@2026-12-01")]
DEADLINES = {"end": "周期结束前", "at": "当天 {time} 前",
             "working_days_after_end": "周期结束后 {days} 个工作日内"}


def _pack() -> DutyPack:
    return load_pack(STATE.settings.duty_rules)


def _applies(pack: DutyPack, kind: DutyKind) -> str:
    scope = SCOPE_LABELS[kind.applies_to.scope]
    industries = pack.industries(kind)
    if kind.applies_to.tiers:
        from models.enums import Tier

        scope += "（" + "、".join(Tier(t).label for t in kind.applies_to.tiers) + "）"
    return scope + (f"：{'、'.join(industries)}" if industries else "")


def _deadline(kind: DutyKind) -> str:
    rule = kind.deadline
    return DEADLINES[rule.rule].format(time=rule.time, days=rule.days)


def kind_record(pack: DutyPack, kind: DutyKind) -> dict[str, Any]:
    """A kind as ``duty kinds --json`` shows it (every label in Chinese next to its key)."""
    return {
        "kind": kind.key, "name": kind.name, "scope": kind.applies_to.scope,
        "applies_to": _applies(pack, kind), "industries": list(pack.industries(kind) or []),
        "cadence": kind.cadence.value, "cadence_label": kind.cadence.label,
        "working_days_only": kind.days == "working",
        "role": kind.role, "role_label": Role(kind.role).label,
        "evidence": list(kind.evidence), "deadline": _deadline(kind),
        "remind_before_hours": kind.remind_before_hours,
        "ladder": [{"level": i, "after_hours": s.after_hours, "notify": list(s.notify),
                    "notify_labels": [Role(r).label for r in s.notify]}
                   for i, s in enumerate(kind.ladder, start=1)],
        "report_to_regulator": kind.report_to_regulator,
        "materialized": not kind.jurisdiction_side,
    }


@app.command("kinds")
@handle_errors
def kinds_cmd(as_json: JsonOpt = False) -> None:
    """列出履职任务种类（规则包：SAFELOOP_DUTY_RULES 或随软件发布的默认规则）。"""
    pack = _pack()
    records = [kind_record(pack, k) for k in pack.kinds.values()]
    if as_json:
        print_json({"source": pack.source, "kinds": records})
        return
    console.print(f"履职任务种类（{len(records)} 种，规则：{safe(pack.source)}）", markup=False)
    for r in records:
        ladder = "；".join(f"第{s['level']}级 逾期 {s['after_hours']} 小时通知{'、'.join(s['notify_labels'])}"
                          for s in r["ladder"]) or "无"
        cadence = r["cadence_label"] + ("（仅工作日）" if r["working_days_only"] else "")
        applies = r["applies_to"] + ("" if r["materialized"] else "（监管侧，暂不生成任务）")
        report = "；须向监管部门报告" if r["report_to_regulator"] else ""
        console.print(
            f"\n{safe(r['name'])}（{r['kind']}）\n  适用：{safe(applies)}；周期：{cadence}；"
            f"责任：{r['role_label']}{report}\n  证据：{safe('、'.join(r['evidence']) or '无')}；"
            f"期限：{r['deadline']}\n  升级：{ladder}", markup=False)


@app.command("list")
@handle_errors
def list_cmd(
    state: Annotated[str | None, typer.Option(help="按状态筛选：due、done、missed、made_up")] = None,
    kind: Annotated[str | None, typer.Option(help="按种类筛选（见 duty kinds）")] = None,
    enterprise: Annotated[str | None, typer.Option(help="企业编号")] = None,
    period: Annotated[str | None, typer.Option(help="周期，如 2026-12-01、2026-Q4、2026-H2")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="最多显示条数")] = 50,
    viewer: ViewAsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """履职任务清单（期限最近的在前；--as：仅此人可见的任务）。"""
    if state is not None and state not in DUTY.states:
        raise InvalidInput(f"未知状态「{state}」，可用：{'、'.join(DUTY.states)}")
    pack = _pack()
    if kind is not None:
        pack.kind(kind)  # an unknown kind is refused naming the known ones
    table = DUTY.table
    conditions = [c for c in (
        table.c.state == state if state else None,
        table.c.kind == kind if kind else None,
        table.c.period_key == period if period else None) if c is not None]
    with open_session() as session:
        conn = session.connection()
        if enterprise is not None:
            found = conn.execute(select(ENTERPRISE.c.id).where(ENTERPRISE.c.key == enterprise)).scalar()
            if found is None:
                raise NotFound(f"企业「{enterprise}」不存在")
            conditions.append(table.c.enterprise_id == found)
        visibility = seeing(session, viewer)
        if enterprise is not None:
            check_enterprise(session, visibility, enterprise)
        stmt = scoped(select(table, UNIT.c.name.label("unit_name"))
                      .join(UNIT, UNIT.c.id == table.c.unit_id).where(*conditions)
                      .order_by(table.c.due_at, table.c.id).limit(limit), visibility, DUTY)
        count = scoped(select(func.count()).select_from(table).where(*conditions), visibility, DUTY)
        rows = [dict(r) for r in conn.execute(stmt).mappings()]
        total = conn.execute(count).scalar_one()
    zone = STATE.settings.timezone
    for r in rows:
        r["state_label"] = DUTY.state_label(r["state"])
        known = pack.kinds.get(r["kind"])
        r["kind_name"] = known.name if known else r["kind"]
    if as_json:
        print_json({"total": total, "items": rows})
        return
    out = Table(title=f"履职任务（共 {total} 条，显示 {len(rows)} 条）")
    for header in ("编号", "任务", "期限", "状态"):
        out.add_column(header, no_wrap=header in ("编号", "状态"))
    for r in rows:
        level = f"（升级第 {r['escalation_level']} 级）" if r["escalation_level"] else ""
        out.add_row(*cells(r["code"], r["kind_name"], to_local(r["due_at"], zone),
                           r["state_label"] + level))
    console.print(out)


@app.command("show")
@handle_errors
def show_cmd(code: CodeArg, viewer: ViewAsOpt = None, as_json: JsonOpt = False) -> None:
    """显示一项履职任务及其操作记录（--as：此人看不到的与不存在的一样）。"""
    with open_session() as session:
        record = entity_with_history(session, DUTY, code, seeing(session, viewer))
        record["unit"] = session.connection().execute(
            select(UNIT.c.key).where(UNIT.c.id == record["unit_id"])).scalar()
    pack = _pack()
    known = pack.kinds.get(record["kind"])
    record["kind_name"] = known.name if known else record["kind"]
    record["state_label"] = DUTY.state_label(record["state"])
    record["evidence_names"] = list(known.evidence) if known else []
    if as_json:
        print_json(record)
        return
    zone = STATE.settings.timezone
    table = Table(title=f"履职任务 {safe(code)}", show_header=False)
    rows = [("任务", record["kind_name"]), ("单位", record["unit"]), ("周期", record["period_key"]),
            ("期限", to_local(record["due_at"], zone)), ("责任角色", Role(record["role"]).label),
            ("所需证据", "、".join(record["evidence_names"]) or "—"),
            ("状态", record["state_label"]), ("完成时间", to_local(record["done_at"], zone)),
            ("逾期补做", "是" if record["late"] else "否"),
            ("升级级别", record["escalation_level"] or "")]
    for label, value in rows:
        if value not in (None, ""):
            table.add_row(*cells(label, value, limit=DETAIL_LIMIT))
    console.print(table)
    print_history(record["history"])


fire.mount(app, DUTY, code_help="履职任务编号，如 jinhua-group/risk_commitment@2026-12-01")
