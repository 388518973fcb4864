"""``safeloop notify`` (test a channel, check the routing) and ``safeloop outbox`` (list, show,
retry the notifications the workflows queued)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from core.errors import InvalidInput, NotFound
from core.timeparse import to_local
from models.db import make_engine
from safeloop.bounds import check_id
from safeloop.cli.common import STATE, JsonOpt, console, err_console, handle_errors, print_json
from safeloop.cli.output import DETAIL_LIMIT, cells, safe

app = typer.Typer(help="通知渠道：发送测试消息、检查路由文件和消息模板", no_args_is_help=True)
outbox_app = typer.Typer(help="通知 outbox：查看、重发待发送/失败的通知", no_args_is_help=True)
STATUS_LABELS = {"pending": "待发送", "sending": "发送中", "sent": "已送达", "dead": "已放弃",
                 "unrouted": "无渠道", "skipped": "规则关闭"}


@app.command("test")
@handle_errors
def test_cmd(
    url: Annotated[str, typer.Argument(help="Apprise 地址，如 wecombot://${WECOM_KEY}、mailtos://…")],
    title: Annotated[str | None, typer.Option(help="标题（默认用 notify.test 模板）")] = None,
    body: Annotated[str | None, typer.Option(help="正文（默认用 notify.test 模板）")] = None,
    markdown: Annotated[bool | None, typer.Option("--markdown/--text",
                                                  help="按 Markdown 或纯文本发送（默认按渠道）")] = None,
) -> None:
    """向一个地址发送测试消息（地址中的 ${变量} 取自环境变量）。失败时退出码 1。"""
    from notifications import channels, routing, templates

    settings = STATE.settings
    problem = routing.url_problem(url)
    if problem:
        raise InvalidInput(f"通知地址 {url}：{problem}")
    expanded = routing.expand(url)
    channel = routing.Channel(url, format=None if markdown is None
                              else ("markdown" if markdown else "text"))
    rendered = templates.load_cached(settings.notify_templates, settings.timezone).render(
        "notify.test", templates.base_context(now=to_local(datetime.now(UTC), settings.timezone)))
    text = body if body is not None else rendered.body
    if not channel.markdown:
        text = templates.plain(text)
    result = channels.send(expanded, title if title is not None else rendered.title, text,
                           markdown=channel.markdown, timeout=settings.notify_timeout_s)
    shown = channels.mask(url)
    if result.ok:
        console.print(f"已发送到 {safe(shown)}（{result.seconds * 1000:.0f} ms）")
        return
    err_console.print(f"[bold red]发送失败：[/]{safe(shown)}：{safe(result.error)}")
    raise typer.Exit(1)


@app.command("check")
@handle_errors
def check_cmd(as_json: JsonOpt = False) -> None:
    """检查消息模板和路由文件（SAFELOOP_NOTIFY_ROUTING），并核对其中的人员、单位编号。"""
    from notifications import routing, templates
    from notifications.recipients import Directory

    settings = STATE.settings
    tset = templates.load(settings.notify_templates, settings.timezone)
    route = routing.load(settings.notify_routing, known_templates=tset.names())
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            Directory(conn).check(route)
    finally:
        engine.dispose()
    summary = {
        "templates": len(tset.names()), "routing": str(settings.notify_routing or ""),
        "people": len(route.people), "units": len(route.units), "roles": len(route.roles),
        "channels": sum(1 for _ in route.all_channels()), "rules": sorted(route.rules),
    }
    if as_json:
        print_json(summary)
        return
    routing_file = safe(summary["routing"] or "（未设置）")
    console.print(f"消息模板 {summary['templates']} 个有效；路由文件 {routing_file}："
                  f"人员 {summary['people']}、单位 {summary['units']}、角色 {summary['roles']}，"
                  f"共 {summary['channels']} 个渠道；规则：{safe('、'.join(summary['rules']))}")


def _engine() -> Any:
    settings = STATE.settings
    return make_engine(settings.database_url, busy_timeout_s=settings.sqlite_busy_timeout_s)


def _record(row: dict[str, Any]) -> dict[str, Any]:
    zone = STATE.settings.timezone
    return {
        "id": row["id"], "created_at": to_local(row["created_at"], zone), "template": row["template"],
        "recipient": row["recipient"], "status": row["status"], "attempts": row["attempts"],
        "next_attempt_at": to_local(row["next_attempt_at"], zone), "last_error": row["last_error"],
        "sent_at": to_local(row["sent_at"], zone), "digest_of": row["digest_of"],
        "entity_type": row["entity_type"], "entity_id": row["entity_id"], "event": row["event"],
        "code": json.loads(row["payload"] or "{}").get("code"),
    }


@outbox_app.command("list")
@handle_errors
def list_cmd(
    status: Annotated[str | None, typer.Option(
        help="按状态：pending/sending/sent/dead/unrouted/skipped")] = None,
    template: Annotated[str | None, typer.Option(help="按模板，如 hazard.assign")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="最多显示条数")] = 50,
    as_json: JsonOpt = False,
) -> None:
    """列出 outbox 中的通知（最新的在前）与各状态数量。"""
    from notifications import store

    if status is not None and status not in store.STATUSES:
        raise InvalidInput(f"未知状态「{status}」，可用：{'、'.join(store.STATUSES)}")
    engine = _engine()
    try:
        with engine.connect() as conn:
            counts = store.counts(conn)
            rows = [_record(r) for r in store.listing(conn, status=status, template=template,
                                                      limit=limit)]
    finally:
        engine.dispose()
    if as_json:
        print_json({"counts": counts, "items": rows})
        return
    summary = "，".join(f"{STATUS_LABELS.get(k, k)} {v}" for k, v in sorted(counts.items())) or "无"
    table = Table(title=f"通知 outbox（{safe(summary)}）")
    for header in ("编号", "时间", "模板", "事项", "接收人", "状态", "尝试", "下次尝试", "最后错误"):
        table.add_column(header, no_wrap=header in ("编号", "状态"))
    for r in rows:
        table.add_row(*cells(r["id"], r["created_at"], r["template"], r["code"] or "",
                             r["recipient"], STATUS_LABELS.get(r["status"], r["status"]),
                             r["attempts"], r["next_attempt_at"]),
                      *cells(r["last_error"] or "", limit=60))
    console.print(table)


@outbox_app.command("show")
@handle_errors
def show_cmd(message_id: Annotated[int, typer.Argument(help="outbox 编号")],
             as_json: JsonOpt = False) -> None:
    """显示一条通知：字段、载荷、按当前模板渲染的内容、每个渠道的发送记录。"""
    from notifications import dispatch, store

    check_id(message_id, "outbox 编号")
    settings = STATE.settings
    engine = _engine()
    try:
        with engine.connect() as conn:
            rows = store.listing_by_id(conn, message_id)
            if not rows:
                raise NotFound(f"outbox 消息 {message_id} 不存在")
            row = rows[0]
            deliveries = store.deliveries_of(conn, row["id"], row["digest_of"])
            conn.rollback()
        preview = dispatch.from_settings(engine, settings).preview(row)
    finally:
        engine.dispose()
    zone = settings.timezone
    record = {**_record(row), "payload": json.loads(row["payload"] or "{}"),
              "preview": {"title": preview.title, "body": preview.body},
              "deliveries": [{"channel": d["channel"], "status": d["status"],
                              "attempts": d["attempts"], "last_error": d["last_error"],
                              "sent_at": to_local(d["sent_at"], zone),
                              "last_attempt_at": to_local(d["last_attempt_at"], zone)}
                             for d in deliveries]}
    if as_json:
        print_json(record)
        return
    console.print(f"[bold]#{row['id']}[/] {safe(row['template'])} → {safe(row['recipient'])}："
                  f"{safe(STATUS_LABELS.get(row['status'], row['status']))}，已尝试 {row['attempts']} 次"
                  + (f"，下次 {safe(record['next_attempt_at'])}" if record["next_attempt_at"] else "")
                  + (f"（摘要 #{row['digest_of']}）" if row["digest_of"] else ""))
    if row["last_error"]:
        console.data(f"最后错误：{row['last_error']}")
    console.print(f"\n[bold]{safe(preview.title)}[/]")
    console.data(preview.body, limit=20 * DETAIL_LIMIT)
    if deliveries:
        table = Table(title="发送记录")
        for header in ("渠道", "状态", "次数", "送达时间", "最后错误"):
            table.add_column(header)
        for d in record["deliveries"]:
            table.add_row(*cells(d["channel"], "已送达" if d["status"] == "sent" else "失败",
                                 d["attempts"], d["sent_at"]),
                          *cells(d["last_error"] or "", limit=80))
        console.print(table)


@outbox_app.command("retry")
@handle_errors
def retry_cmd(
    ids: Annotated[list[int] | None, typer.Argument(help="outbox 编号（可多个）")] = None,
    status: Annotated[str | None, typer.Option(help="重发该状态的全部：dead/unrouted/skipped")] = None,
    as_json: JsonOpt = False,
) -> None:
    """把已放弃（或无渠道、规则关闭）的通知重新排队发送；已送达的渠道不会重复发送。"""
    from notifications import store

    if not ids and not status:
        raise InvalidInput("请指定 outbox 编号，或用 --status dead|unrouted|skipped 重发一类")
    if status is not None and status not in ("dead", "unrouted", "skipped"):
        raise InvalidInput(f"只能重发 dead、unrouted 或 skipped 状态的通知，收到「{status}」")
    for message_id in ids or []:
        check_id(message_id, "outbox 编号")
    engine = _engine()
    try:
        with engine.connect() as conn:
            done = store.requeue(conn, ids, status)
    finally:
        engine.dispose()
    if as_json:
        print_json({"requeued": done})
        return
    console.print(f"已重新排队 {done} 条通知（下一次分发时发送：safeloop flows run dispatch-notifications）")
