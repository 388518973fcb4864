"""``safeloop flows`` and ``safeloop serve``: run the Prefect flows now, or on their schedules."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from core.errors import InvalidInput
from core.settings import Settings, mask_url
from safeloop.cli.common import STATE, JsonOpt, as_of_option, console, handle_errors, print_json
from safeloop.cli.output import err_console, safe

app = typer.Typer(help="Prefect 流程：立即运行或按计划运行", no_args_is_help=True)


def _registry() -> dict[str, object]:
    from flows.common import prefect_defaults

    prefect_defaults()  # before Prefect is imported
    from flows.registry import FLOWS

    return FLOWS  # type: ignore[return-value]


@app.command("list")
@handle_errors
def list_cmd() -> None:
    """列出流程及其默认计划。"""
    for name, entry in _registry().items():
        console.print(f"- {name}  [dim]{entry.cron}[/]  {entry.label}")  # type: ignore[attr-defined]


@app.command("run")
@handle_errors
def run_cmd(
    name: Annotated[str, typer.Argument(help="流程名，见 safeloop flows list")],
    as_of: Annotated[str | None, typer.Option("--as-of", help="按此时间运行（默认现在）")] = None,
    as_json: JsonOpt = False,
) -> None:
    """立即运行一个流程（一次真实的 Prefect 运行）。"""
    flows = _registry()
    if name not in flows:
        raise InvalidInput(f"未知流程「{name}」，可用：{'、'.join(flows)}")
    moment = as_of_option(as_of)
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.common import use_database

    _say_which_server()
    # No heartbeat thread for a one-off run: joining it costs ~1 s at the end of every run, and
    # the person who started the run sees it end (or fail) in the terminal.
    with use_database(STATE.settings.database_url), \
            temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        # the database is never a flow parameter: its URL may hold a password
        result = flows[name].flow(as_of=moment)  # type: ignore[attr-defined]
    if as_json:
        print_json(result)
    else:
        console.print(f"{safe(name)} 完成：{safe(result)}")


def _say_which_server() -> None:
    """Check a configured Prefect server (fast, clear refusal) and say which path this run takes."""
    from safeloop import prefect_server

    config = prefect_server.configured_api()
    if config.url:
        prefect_server.check_api(config)
        err_console.print(f"使用 Prefect 服务器 {prefect_server.shown_url(config.url)}", markup=False)
    else:
        err_console.print("未设置 PREFECT_API_URL：启动临时 Prefect 服务器（约 15–30 秒；常用时先运行 "
                          "safeloop server）", markup=False)


def serve_all(database_url: str, timezone: str) -> None:
    """Serve every flow on its cron schedule in the configured zone (no worker needed).

    The database URL reaches the flow-run subprocesses through the environment, never as a
    deployment parameter, so a password is not stored in Prefect's database or shown in its UI.
    """
    os.environ["SAFELOOP_DATABASE_URL"] = database_url
    flows = _registry()
    from prefect import serve
    from prefect.schedules import Cron

    deployments = [
        entry.flow.to_deployment(  # type: ignore[attr-defined]
            name=f"{name}-local", schedules=[Cron(entry.cron, timezone=timezone)],  # type: ignore[attr-defined]
        )
        for name, entry in flows.items()
    ]
    serve(*deployments)


def serve_banner(settings: Settings) -> str:
    """The line ``safeloop serve`` prints first: the zone and the database, its password masked."""
    return f"按计划运行流程（时区 {settings.timezone}），数据库 {mask_url(settings.database_url)}"


def serve_cmd() -> None:
    """按计划在本机运行全部流程（Prefect serve；Ctrl-C 停止）。"""
    settings = STATE.settings
    console.print(serve_banner(settings), markup=False)
    serve_all(settings.database_url, settings.timezone)
