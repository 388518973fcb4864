"""``safeloop demo``: a development zone's hazards run through their closed loop on a fresh SQLite file.

The scenario is scripted on fixed dates (as_of) so every run tells the same story: general and
major hazards, a rejection, a refused self-acceptance, a refused incomplete plan, a cancellation,
a fix on the spot with evidence, an overdue hazard escalated twice and extended, a regulator's
regrade; then risk grading (register, LEC/LS evaluation, approval, a re-grading after an
accident, the risk list, four-colour map and notice cards) and, optionally, a simulated month
of tiered inspections whose checklists carry the approved risks' measures. It ends with
``audit verify`` (its checkpoints included) and ``audit replay``.

Everything it writes stays beside its database: evidence, outputs and its own checkpoint file in
``safeloop-demo-data``. It rebuilds only a database it made itself (marked with a SQLite
application id), so ``--path`` pointing at anything else is refused rather than deleted.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlmodel import Session

from core.errors import InvalidInput, SafeloopError
from core.rules import Rules, rules_for, set_rules
from core.settings import get_settings
from models import AuditEntry, Hazard, OutboxMessage, Unit
from models.db import make_engine
from models.enums import HazardGrade, RiskGrade, Tier
from safeloop import checklists, evidence, orgfile, plans, risks
from safeloop.accounts.passwords import generate_password, set_password
from safeloop.reports.risk_card import render_cards
from safeloop.reports.risk_list import write_risk_list_xlsx
from safeloop.reports.risk_map import render_risk_map
from safeloop.schema import upgrade
from safeloop.simulation import Stats, simulate, summary_rows
from states import audit, engine, risk_grading
from states.jobs import checkpoint
from states.jobs.replay import replay
from states.workflow import Workflow
from states.workflows.hazard import ESCALATION_LEVELS, HAZARD, PLAN_PARTS
from states.workflows.risk import RISK

ZONE = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 2, 9, 0, tzinfo=ZONE)  # a Monday morning
DEMO_ORG = Path(__file__).parent / "data" / "demo_org.yaml"
DEMO_RISKS = Path(__file__).parent / "data" / "demo_risks.yaml"
DEMO_APPLICATION_ID = 0x53464C44  # "SFLD" in the SQLite header: a database this demo made
SQLITE_MAGIC = b"SQLite format 3\x00"
FULL_PLAN = {
    "objectives": "更换失效安全阀，恢复储罐超压保护，隐患彻底消除",
    "methods": "倒罐降压后停用 2 号储罐，拆除旧阀，安装经校验的新安全阀并试验起跳压力",
    "funds_and_materials": "专项资金 12 万元已落实，安全阀 2 台到货",
    "organisation": "储运车间牵头，设备科、安全科配合；责任人吴储运",
    "time_limit": "15 日内完成，完成后申请验收",
    "safety_and_contingency": "作业期间设警戒区，执行动火与受限空间作业票；液氨泄漏应急预案已演练",
}


@dataclass
class Demo:
    session: Session
    storage: Path
    console: Console
    checkpoints: Path | None = None
    codes: dict[str, str] = field(default_factory=dict)
    refusals: int = 0
    sim: tuple[Stats, datetime, float] | None = None

    def at(self, day: int, hour: int = 10) -> datetime:
        return (START + timedelta(days=day)).replace(hour=hour).astimezone(UTC)

    def step(self, day: int, who: str, text: str, action: Callable[[datetime], Any],
             expect_refusal: bool = False, workflow: Workflow = HAZARD) -> Any:
        moment = self.at(day)
        when = moment.astimezone(ZONE).strftime("%m-%d %H:%M")
        try:
            result = action(moment)
        except SafeloopError as exc:
            if not expect_refusal:
                raise
            self.refusals += 1
            self.console.print(f"  {when} [yellow]✗ {who}：{text} — 被拒绝：{exc.message}[/]")
            return None
        extra = ""
        if result is not None and hasattr(result, "to_state"):
            extra = f" → {workflow.state_label(result.to_state)}"
        self.console.print(f"  {when} [green]✓[/] {who}：{text}{extra}")
        return result

    def report(self, key: str, day: int, actor: str, **data: Any) -> None:
        result = self.step(day, actor, f"上报「{data['title']}」", lambda m: engine.create(
            self.session, HAZARD, actor=actor, data=data, as_of=m))
        self.codes[key] = result.code

    def fire(self, key: str, day: int, actor: str, event: str, text: str | None = None,
             expect_refusal: bool = False, **kw: Any) -> None:
        code = self.codes[key]
        label = text or HAZARD.event_label(event)
        self.step(day, actor, f"{code} {label}", lambda m: engine.fire(
            self.session, HAZARD, code, event, actor=actor, as_of=m, **kw), expect_refusal)

    def deadline(self, day: int) -> datetime:
        return self.at(day, 18)


def is_demo_database(path: Path) -> bool:
    """Whether ``path`` is a SQLite database carrying the demo's application id (read-only)."""
    if not path.is_file():  # stat only: a FIFO or a device is never opened
        return False
    try:
        with path.open("rb") as handle:
            if handle.read(len(SQLITE_MAGIC)) != SQLITE_MAGIC:
                return False
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return bool(conn.execute("PRAGMA application_id").fetchone()[0] == DEMO_APPLICATION_ID)
        finally:
            conn.close()
    except (OSError, sqlite3.Error):
        return False


def prepare(path: Path) -> None:
    """Remove the previous demo database at ``path`` (with its WAL files); refuse anything else."""
    if path.exists() or path.is_symlink():
        if not is_demo_database(path):
            raise InvalidInput(f"「{path}」已存在，且不是演示程序创建的数据库：演示不会删除或覆盖它，"
                               "请用 --path 指定一个新文件")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def run_demo(path: Path, console: Console, days: int = 30) -> int:
    prepare(path)
    db = make_engine(f"sqlite:///{path}")
    with db.begin() as conn:
        conn.exec_driver_sql(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
    upgrade(db)
    storage = path.parent.resolve() / "safeloop-demo-data"
    console.soft_wrap = True
    console.rule("[bold]safeloop 演示：忻州经济开发区 隐患排查治理闭环")
    with Session(db, expire_on_commit=False) as session:
        set_rules(session, Rules.from_settings(get_settings()))  # as the flows it runs read them
        orgfile.load(session, DEMO_ORG)
        console.print(f"数据库：{path}（SQLite，WAL）；组织：2 家企业、10 个单位、11 名人员")
        demo = Demo(session, storage, console, storage / checkpoint.CHECKPOINT_FILE)
        _scenario(demo)
        _risks(demo)
        if days > 0:
            _simulate(demo, f"sqlite:///{path}", days)
        accounts = _web_accounts(demo)
        ok = _summary(demo)
        _web_hint(demo, path, accounts)
    db.dispose()
    return 0 if ok else 1


def _scenario(d: Demo) -> None:
    console = d.console
    console.print("\n[bold]1. 一般隐患：分派 → 整改 → 验收销号")
    d.report("gauge", 0, "sun.banzhang", unit="jinhua-team-a", title="合成塔压力表超期未检",
             category="thing", grade="general", location="合成一班 3 号塔")
    d.fire("gauge", 0, "li.anquan", "assign",
           data={"owner": "sun.banzhang", "deadline": d.deadline(3), "measures": "更换并送检压力表"})
    d.fire("gauge", 2, "sun.banzhang", "submit", data={"measures": "已更换经检定的压力表"})
    d.fire("gauge", 2, "li.anquan", "accept")

    console.print("\n[bold]2. 验收不通过，退回重新整改")
    d.report("flange", 1, "sun.banzhang", unit="jinhua-team-a", title="循环水泵出口法兰渗漏",
             category="thing", grade="general")
    d.fire("flange", 1, "li.anquan", "assign",
           data={"owner": "zhou.weixiu", "deadline": d.deadline(5)})
    d.fire("flange", 3, "zhou.weixiu", "submit", data={"measures": "紧固螺栓"})
    d.fire("flange", 3, "zhao.chejian", "reject", comment="仍有渗漏，密封垫未更换")
    d.fire("flange", 4, "zhou.weixiu", "submit", data={"measures": "更换密封垫并紧固"})
    d.fire("flange", 4, "li.anquan", "reinspect", data={"findings": "复查无渗漏，密封垫已更换"})
    d.fire("flange", 4, "zhao.chejian", "accept")

    console.print("\n[bold]3. 整改人不能验收自己的整改（职责分离）")
    d.report("exit", 2, "sun.banzhang", unit="jinhua-team-a", title="安全通道堆放物料",
             category="management", grade="general")
    d.fire("exit", 2, "li.anquan", "assign", data={"owner": "li.anquan", "deadline": d.deadline(4)})
    d.fire("exit", 3, "li.anquan", "submit", data={"measures": "清理通道，划定物料区"})
    d.fire("exit", 3, "li.anquan", "accept", text="尝试验收自己整改的隐患", expect_refusal=True)
    d.fire("exit", 3, "zhao.chejian", "accept")

    console.print("\n[bold]4. 误报撤销（须填写原因）")
    d.report("extinguisher", 3, "wu.chuyun", unit="jinhua-team-tank", title="灭火器过期",
             category="thing", grade="general")
    d.fire("extinguisher", 3, "li.anquan", "cancel", text="撤销，未写原因", expect_refusal=True)
    d.fire("extinguisher", 3, "li.anquan", "cancel", comment="核查标签，灭火器在有效期内，属误报")

    console.print("\n[bold]5. 现场立即整改（附证据）")
    photo = d.storage / "incoming" / "helmet.txt"
    photo.parent.mkdir(parents=True, exist_ok=True)
    photo.write_text("现场照片：作业人员已佩戴安全帽（演示证据）", encoding="utf-8")
    d.report("helmet", 4, "feng.hanjie", unit="xinfeng-team-weld", title="焊工未戴安全帽",
             category="behaviour", grade="general")
    ref = evidence.store(d.session, d.storage, photo)
    d.fire("helmet", 4, "feng.hanjie", "fix_on_spot", data={"evidence": [ref]},
           comment="当场纠正并教育")
    d.fire("helmet", 5, "chen.anyuan", "accept")

    console.print("\n[bold]6. 重大隐患：治理方案六项齐全方可整改，主要负责人验收")
    d.report("valve", 5, "wu.chuyun", unit="jinhua-team-tank", title="液氨储罐安全阀失效",
             category="thing", grade="major", location="罐区 2 号液氨储罐")
    d.fire("valve", 5, "li.anquan", "assign",
           data={"owner": "wu.chuyun", "deadline": d.deadline(25), "funds": "120000"})
    partial = {k: v for k, v in FULL_PLAN.items() if k not in ("safety_and_contingency",)}
    d.fire("valve", 6, "wang.zhuren", "approve_plan", text="批准缺少应急预案的方案",
           data=partial, expect_refusal=True)
    d.fire("valve", 6, "wu.chuyun", "draft_plan", data=FULL_PLAN)
    d.fire("valve", 7, "wang.zhuren", "approve_plan")
    d.fire("valve", 20, "wu.chuyun", "submit", data={"measures": "新安全阀安装完毕，起跳试验合格"})
    d.fire("valve", 21, "li.anquan", "accept", text="安全管理员验收重大隐患", expect_refusal=True)
    d.fire("valve", 21, "wang.zhuren", "accept")

    console.print("\n[bold]7. 逾期升级与延期")
    d.report("vent", 6, "feng.hanjie", unit="xinfeng-team-weld", title="焊接车间通风除尘设施失效",
             category="thing", grade="general")
    d.fire("vent", 6, "chen.anyuan", "assign",
           data={"owner": "feng.hanjie", "deadline": d.deadline(9)})
    d.fire("vent", 10, "system", "escalate", text="逾期，升级至单位负责人", data={"level": 1})
    d.fire("vent", 10, "system", "escalate", text="重复升级同一级", data={"level": 1},
           expect_refusal=True)
    d.fire("vent", 13, "system", "escalate", text="逾期 3 天，升级至主要负责人", data={"level": 2})
    d.fire("vent", 14, "zheng.changzhang", "extend_deadline", comment="除尘风机到货延迟",
           data={"deadline": d.deadline(30)})

    console.print("\n[bold]8. 监管检查发现，监管人员改定为重大隐患")
    d.report("level", 8, "qian.jianguan", unit="jinhua-ws-storage", title="液氨储罐液位计失灵",
             category="thing", grade="general", source="regulator")
    d.fire("level", 8, "li.anquan", "assign",
           data={"owner": "wu.chuyun", "deadline": d.deadline(12)})
    d.fire("level", 9, "sun.banzhang", "extend_deadline", text="无权人员尝试延期",
           expect_refusal=True, comment="想多给几天", data={"deadline": d.deadline(20)})
    d.fire("level", 9, "qian.jianguan", "regrade", data={"grade": "major"},
           comment="液位计失灵且无备用检测手段，构成重大隐患（安监总管三〔2017〕121号）")


def _risks(d: Demo) -> None:
    """Risk grading (风险分级管控) on the chemical plant: register, grade, approve, outputs."""
    console = d.console
    console.print("\n[bold]9. 风险分级管控：辨识评价（LEC/LS）→ 审批 → 风险清单、四色分布图、告知卡")
    loaded = d.step(0, "li.anquan", f"登记 8 个区域和风险点并评价（{DEMO_RISKS.name}）",
                    lambda m: risks.load_register(d.session, DEMO_RISKS, actor="li.anquan", as_of=m))
    codes = loaded.created or []
    d.step(1, "li.anquan", f"{codes[0]} 安全管理员尝试审批（须单位负责人或以上）", lambda m: engine.fire(
        d.session, RISK, codes[0], "approve", actor="li.anquan", as_of=m), expect_refusal=True, workflow=RISK)
    d.step(1, "li.anquan", f"{codes[4]} 评价取值 L=7（不在 LEC 取值表中）", lambda m: engine.fire(
        d.session, RISK, codes[4], "evaluate", actor="li.anquan", as_of=m,
        data={"method": "lec", "factors": {"L": 7, "E": 6, "C": 15}}), expect_refusal=True,
        workflow=RISK)
    for code in codes:
        d.step(1, "wang.zhuren", f"{code} 审批风险分级", lambda m, c=code: engine.fire(
            d.session, RISK, c, "approve", actor="wang.zhuren", as_of=m), workflow=RISK)
    compressor = codes[4]
    d.step(6, "li.anquan", f"{compressor} 压缩机房发生泄漏着火，启动复评", lambda m: engine.fire(
        d.session, RISK, compressor, "report_change", actor="li.anquan", as_of=m,
        data={"trigger": "accident"}, comment="压缩机房氢气泄漏着火（险情，无人员伤亡）"), workflow=RISK)
    d.step(6, "li.anquan", f"{compressor} 重新评价 L=3 E=6 C=15", lambda m: engine.fire(
        d.session, RISK, compressor, "evaluate", actor="li.anquan", as_of=m,
        data={"method": "lec", "factors": {"L": 3, "E": 6, "C": 15}}), workflow=RISK)
    d.step(7, "zhao.chejian", f"{compressor} 审批：一般风险升为较大风险", lambda m: engine.fire(
        d.session, RISK, compressor, "approve", actor="zhao.chejian", as_of=m), workflow=RISK)
    name, views = risks.risk_views(d.session, "jinhua", zone=str(ZONE))
    table = Table(title=f"{name} 风险分级")
    for header in ("编号", "风险点", "评价", "等级", "管控层级", "管控单位"):
        table.add_column(header, no_wrap=header == "编号")
    for v in views:
        style = risk_grading.STYLES[RiskGrade(v.grade)] if v.grade else None
        table.add_row(v.code, v.name, f"{(v.method or '').upper()} {v.score:g}",
                      f"{RiskGrade(v.grade).label}（{style.colour}）" if style else "—",
                      style.tier_label if style else "—", v.control_unit)
    console.print(table)
    out = d.storage / "risk"
    out.mkdir(parents=True, exist_ok=True)
    day = (START + timedelta(days=7)).date()
    write_risk_list_xlsx(views, out / "风险清单.xlsx", enterprise=name, as_of=day)
    drawing = risks.risk_map(d.session, "jinhua", as_of=day, zone=str(ZONE))
    (out / "四色分布图.svg").write_text(render_risk_map(drawing), encoding="utf-8")
    (out / "告知卡.html").write_text(render_cards(views, enterprise=name, as_of=day), encoding="utf-8")
    console.print(f"输出：{out}/风险清单.xlsx、四色分布图.svg、告知卡.html（用浏览器打开）；"
                  "已审批风险点的管控措施在生成排查任务时纳入本级及以下各级检查表（对表检查）")


def _plans(session: Session) -> int:
    """One plan per unit at its tier's cadence (班组日查、车间周查、厂矿月查、集团公司季查)."""
    checklists.load_shipped(session)
    units = session.connection().execute(select(Unit.key, Unit.tier).order_by(Unit.id)).all()
    session.rollback()
    start = START.date()
    for key, tier in units:
        mode = "working_days" if key == "jinhua-team-b" else "all_days"
        plans.add(session, plans.PlanSpec(f"{key}-{tier}", key, calendar_mode=mode,
                                          active_from=start))
    plans.add(session, plans.PlanSpec("jinhua-plant1-chem121", "jinhua-plant1",
                                      template="chem-major-2017-121", active_from=start,
                                      name="合成氨厂重大隐患判定标准月查"))
    return len(units) + 1


def _simulate(d: Demo, url: str, days: int) -> None:
    console = d.console
    count = _plans(d.session)
    console.print(f"\n[bold]10. 分级排查：{count} 个排查计划（班组日查、车间周查、厂矿月查、集团公司季查），"
                  f"Prefect 流程逐日运行 {days} 天（每天 00:05 生成任务、18:00 期限巡检，每周审计检查点）")
    started = time.monotonic()
    stats = simulate(d.session, console, start=START.date(), days=days, database_url=url,
                     checkpoint_file=str(d.checkpoints) if d.checkpoints else None)
    d.sim = (stats, START.astimezone(UTC) + timedelta(days=days), time.monotonic() - started)


def _sim_summary(d: Demo) -> None:
    if d.sim is None:
        return
    stats, end, seconds = d.sim
    rows = summary_rows(d.session, end)
    table = Table(title="分级排查完成情况")
    for header in ("层级", "任务数", "已完成（提交/审核）", "漏检", "进行中/待检", "完成率"):
        table.add_column(header)
    for tier in ("team", "workshop", "plant", "group"):
        states = rows["tiers"].get(tier, Counter())
        total = sum(states.values())
        done = states["submitted"] + states["reviewed"]
        rate = f"{done / total:.0%}" if total else "-"
        table.add_row(Tier(tier).label, str(total), str(done), str(states["missed"]),
                      str(states["scheduled"] + states["in_progress"]), rate)
    d.console.print(table)
    levels = Counter(
        json.loads(data)["level"] for (data,) in d.session.connection().execute(
            select(AuditEntry.data).where(AuditEntry.event == "escalate",
                                          AuditEntry.entity_type == "hazard")))
    d.session.rollback()
    hazards = rows["hazards"]
    from_risks = d.session.connection().execute(select(func.count()).select_from(Hazard).where(
        Hazard.risk_point_id.is_not(None))).scalar_one()  # type: ignore[union-attr]
    d.session.rollback()
    d.console.print(
        f"隐患：共 {sum(hazards.values())} 条，已销号 {hazards['closed']}，"
        f"整改中/方案中 {hazards['rectifying'] + hazards['planning']}，"
        f"待验收 {hazards['pending_acceptance']}，逾期未改 {rows['overdue']}，"
        f"其中风险点管控措施检查不合格发现 {from_risks} 条；"
        "逾期升级：" + "，".join(f"{ESCALATION_LEVELS[k]} {v} 次" for k, v in sorted(levels.items()))
        + f"；Prefect 流程运行 {stats.flow_runs} 次，模拟用时 {seconds:.0f} 秒"
    )


# Who a visitor of the web app may sign in as, one per kind of user the pages serve.
WEB_ACCOUNTS = {"li.anquan": "安全管理员（分派、验收）", "sun.banzhang": "班长（排查、整改）",
                "zhao.chejian": "车间主任（单位负责人）", "qian.jianguan": "监管人员（挂牌督办）",
                "he.shenji": "审计员（处理记录、校验审计链）"}
ACCOUNTS_FILE = "demo-accounts.txt"


def _web_accounts(d: Demo) -> Path:
    """Give the demo's people passwords so the web app can open the demo database.

    Random per run, written only to a file readable by its owner in the demo folder: a demo
    database copied elsewhere carries no well-known password.
    """
    lines = ["# safeloop 演示账号（仅用于演示数据库；每次运行 safeloop demo 重新生成）"]
    for key, role in WEB_ACCOUNTS.items():
        password = generate_password()
        set_password(d.session, key, password, actor="admin")
        lines.append(f"{key}\t{password}\t{role}")
    d.session.commit()
    file = d.storage / ACCOUNTS_FILE
    file.parent.mkdir(parents=True, exist_ok=True)
    file.unlink(missing_ok=True)
    with open(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")
    return file


def _web_hint(d: Demo, path: Path, accounts: Path) -> None:
    d.console.print(
        f"网页：SAFELOOP_STORAGE_DIR={d.storage} safeloop --db sqlite:///{path} web ，打开 "
        f"http://127.0.0.1:8000/ ，以 {'、'.join(WEB_ACCOUNTS)} 登录（密码见 {accounts}）", markup=False)


def _summary(d: Demo) -> bool:
    session, console = d.session, d.console
    conn = session.connection()
    console.rule("[bold]汇总")
    table = Table(title="隐患台账")
    for header in ("编号", "名称", "等级", "状态", "升级级别", "版本"):
        table.add_column(header, no_wrap=header in ("编号", "状态"))
    for hazard in session.exec(select(Hazard).order_by(Hazard.id)).scalars():  # type: ignore[call-overload]
        table.add_row(hazard.code, hazard.title, HazardGrade(hazard.grade).label,
                      HAZARD.state_label(hazard.state), str(hazard.escalation_level),
                      str(hazard.version))
    if d.sim is None:
        console.print(table)
    _sim_summary(d)
    conn = session.connection()
    states = Counter(s for (s,) in conn.execute(select(Hazard.state)))  # type: ignore[call-overload]
    events = conn.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    outbox = conn.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()
    console.print(
        "状态分布：" + "，".join(f"{HAZARD.state_label(k)} {v}" for k, v in sorted(states.items()))
        + f"；审计记录 {events} 条；待发送通知 {outbox} 条；被规则拒绝的操作 {d.refusals} 次"
    )
    console.print(f"六项治理方案：{'、'.join(PLAN_PARTS.values())}")
    result = audit.verify(conn)
    replayed = replay(conn, rules_for(session))
    session.rollback()
    points = checkpoint.check(session, d.checkpoints, verified=result)
    if result.ok:
        console.print(f"[green]audit verify：审计链校验通过[/]，{result.count} 条，"
                      f"链头 {result.head_hash[:16]}…，对照检查点 {points.checked} 个")
    else:
        console.print(f"[red]audit verify 失败：第 {result.first_bad_seq} 条 {result.reason}[/]")
    for problem in points.problems:
        console.print(f"[red]检查点不符：{problem}[/]")
    if replayed.ok:
        console.print(f"[green]audit replay：回放一致[/]，{replayed.entities} 个实体")
    else:
        console.print(f"[red]audit replay：{len(replayed.differences)} 处差异[/]")
    console.print(f"自行校验：safeloop --db sqlite:///{d.session.get_bind().url.database} audit verify "
                  f"--checkpoint-file {d.checkpoints}")
    return result.ok and points.ok and replayed.ok
