"""The ``safeloop`` entry point: global options and the command groups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.errors import SafeloopError
from safeloop import orgfile
from safeloop.cli import (
    audit,
    calendar,
    duty,
    flows,
    hazard,
    inspect,
    notify,
    plan,
    risk,
    server,
    supervision,
    user,
    web,
)
from safeloop.cli import report as report
from safeloop.cli.common import STATE, console, handle_errors, open_session, print_json, resolve_operator
from safeloop.cli.output import err_console, message, safe
from safeloop.cli.usage import ZhGroup
from safeloop.diagram import mermaid
from states.registry import WORKFLOWS, get_workflow

app = typer.Typer(
    cls=ZhGroup,
    help="safeloop — 安全生产双重预防机制工作流（隐患闭环、分级排查、挂牌督办、审计留痕）",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(hazard.app, name="hazard")
app.add_typer(audit.app, name="audit")
app.add_typer(inspect.app, name="inspect")
app.add_typer(plan.checklist_app, name="checklist")
app.add_typer(plan.plan_app, name="plan")
app.add_typer(flows.app, name="flows")
app.command("serve")(flows.serve_cmd)
app.command("server")(server.server_cmd)
app.command("web")(web.web_cmd)
app.add_typer(supervision.listing_app, name="listing")
app.add_typer(supervision.order_app, name="order")
plan.plan_app.add_typer(supervision.annual_app, name="annual")
app.add_typer(supervision.duty_app, name="stat-report")
app.add_typer(report.app, name="report")
app.add_typer(risk.app, name="risk")
app.add_typer(notify.app, name="notify")
app.add_typer(notify.outbox_app, name="outbox")
app.add_typer(user.app, name="user")
app.add_typer(calendar.app, name="calendar")
app.add_typer(duty.app, name="duty")
org_app = typer.Typer(help="组织机构：辖区、企业、单位、人员与角色", no_args_is_help=True)
app.add_typer(org_app, name="org")
diagram_app = typer.Typer(help="由状态机生成 Mermaid 状态图", no_args_is_help=True)
app.add_typer(diagram_app, name="diagram")


@app.callback()
def main(
    db: Annotated[str | None, typer.Option("--db", help="数据库 URL（默认取 SAFELOOP_DATABASE_URL）")] = None,
) -> None:
    STATE.begin(db)
    try:
        STATE.settings  # noqa: B018  -- every setting and --db checked before any command runs
    except SafeloopError as exc:
        err_console.print(f"[bold red]错误：[/]{message(exc.message)}")
        raise typer.Exit(exc.exit_code) from exc


@app.command("init")
@handle_errors
def init_cmd() -> None:
    """创建或升级数据库结构（Alembic 迁移）。"""
    from models.db import make_engine
    from safeloop.schema import upgrade  # alembic: ~0.15 s every other command need not pay

    settings = STATE.settings
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    console.print(f"数据库已就绪：{safe(engine.url.render_as_string(hide_password=True))}")


@org_app.command("load")
@handle_errors
def org_load_cmd(
    file: Annotated[Path, typer.Argument(help="组织 YAML 文件")],
    actor: Annotated[str | None, typer.Option(
        "--as", help="记入审计日志的操作人（默认 admin；使用令牌时为令牌本人）")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """加载（或幂等更新）组织结构；为新人员建账号，停用已从本文件移除者的账号。"""
    who = resolve_operator(actor)
    with open_session() as session:
        report = orgfile.load(session, file, actor=who)
    if as_json:
        print_json(report.__dict__)
        return
    created = "，".join(f"{k} {v}" for k, v in report.created.items()) or "无"
    updated = "，".join(f"{k} {v}" for k, v in report.updated.items()) or "无"
    names = {"account": "新建账号", "account_disabled": "停用账号", "account_enabled": "恢复账号"}
    accounts = "".join(f"；{names[k]} {v}" for k, v in report.accounts.items())
    console.print(f"组织文件已加载：新增 {created}；更新 {updated}{accounts}（审计序号 {report.audit_seq}）",
                  markup=False)


def _diagram_command(name: str) -> None:
    workflow = get_workflow(name)

    def show() -> None:
        typer.echo(mermaid(workflow), nl=False)

    show.__doc__ = f"{workflow.label}状态图（Mermaid）。"
    diagram_app.command(name.replace("_", "-"))(show)


for _name in WORKFLOWS:
    _diagram_command(_name)


@app.command("demo")
@handle_errors
def demo_cmd(
    path: Annotated[Path, typer.Option(help="演示数据库文件（会被重建）")] = Path("safeloop-demo.db"),
    days: Annotated[int, typer.Option(min=0, max=366, help="分级排查模拟天数（0 只演示隐患闭环）")] = 30,
) -> None:
    """在一个全新的 SQLite 文件中演示开发区的隐患闭环与分级排查，并以审计校验收尾。"""
    from safeloop.demo import run_demo

    code = run_demo(path, console, days=days)
    raise typer.Exit(code)


def run() -> None:
    app()
