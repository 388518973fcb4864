"""``safeloop user``: accounts (passwords, disable/enable, list) and personal API tokens.

Accounts come from the org file (``org load`` creates them, with no password: no login yet).
A password is read from a hidden prompt (twice), from one line of standard input (``--stdin``,
for scripts) or generated (``--generate``: shown once, to be changed at first login). A token's
secret is shown once, when it is created; only its SHA-256 is kept. Neither is ever logged, put
into the audit trail or printed again.

With a token (``SAFELOOP_TOKEN``) these commands act on the token's own account only: managing
other people's accounts is for operators working without tokens required.
"""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from core.errors import InvalidInput, PermissionDenied
from core.timeparse import parse_local, to_local
from models.db import utcnow
from safeloop.accounts import passwords, store, tokens
from safeloop.cli.common import (
    STATE,
    JsonOpt,
    code_arg,
    console,
    handle_errors,
    open_session,
    print_json,
    resolve_operator,
    token_principal,
)
from safeloop.cli.output import cells, safe

app = typer.Typer(help="账号与个人令牌：设置密码、停用/启用、令牌管理（accounts and API tokens）",
                  no_args_is_help=True)
token_app = typer.Typer(help="个人 API 令牌：创建（仅显示一次）、查看、撤销", no_args_is_help=True)
app.add_typer(token_app, name="token")

PersonArg = Annotated[str, code_arg("人员编号（组织文件中的 id）")]
AdminAsOpt = Annotated[str | None, typer.Option(
    "--as", help="记入审计日志的操作人（默认 admin；使用令牌时为令牌本人）")]
MAX_DAYS = 3660


def _actor(typed: str | None, target: str | None = None) -> str:
    """Who acts; with a token, only on the token's own account."""
    actor = resolve_operator(typed)
    principal = token_principal()
    if principal is not None and target is not None and target != principal.person_key:
        raise PermissionDenied(f"使用令牌时只能管理本人（{principal.person_key}）的账号")
    return actor


def _status(row: store.AccountRow) -> str:
    if row.account_id is None:
        return "未建账号"
    if row.disabled:
        return "已停用（已离开组织文件）" if row.disabled_reason == "org" else "已停用"
    if row.locked_until is not None and row.locked_until > utcnow():
        return "已锁定"
    if row.password_hash is None:
        return "未设密码"
    return "须修改密码" if row.must_change else "正常"


@app.command("list")
@handle_errors
def list_cmd(as_json: JsonOpt = False) -> None:
    """列出账号：状态、失败次数、锁定至、最近登录。"""
    zone = STATE.settings.timezone
    principal = token_principal()
    with open_session() as session:
        rows = store.all_accounts(session.connection())
        counts: dict[str, int] = {}
        for t in tokens.list_tokens(session):
            if t.status() == "active":
                counts[t.person_key] = counts.get(t.person_key, 0) + 1
    if principal is not None:
        rows = [r for r in rows if r.person_key == principal.person_key]
    if as_json:
        print_json([{
            "person": r.person_key, "name": r.name, "status": _status(r),
            "has_password": r.password_hash is not None, "must_change": r.must_change,
            "disabled": r.disabled, "disabled_reason": r.disabled_reason,
            "failed_logins": r.failed_logins,
            "locked_until": r.locked_until.isoformat() if r.locked_until else None,
            "last_login_at": r.last_login_at.isoformat() if r.last_login_at else None,
            "active_tokens": counts.get(r.person_key, 0)} for r in rows])
        return
    table = Table("编号", "姓名", "状态", "连续失败", "锁定至", "最近登录", "有效令牌")
    for r in rows:
        table.add_row(*cells(r.person_key, r.name, _status(r), r.failed_logins,
                             to_local(r.locked_until, zone), to_local(r.last_login_at, zone),
                             counts.get(r.person_key, 0)))
    console.print(table)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1].rstrip("\r") if line.endswith("\n") else line
    first = typer.prompt("新密码", hide_input=True, prompt_suffix="：")
    second = typer.prompt("再次输入新密码", hide_input=True, prompt_suffix="：")
    if first != second:
        raise InvalidInput("两次输入的密码不一致，密码未修改")
    return str(first)


@app.command("set-password")
@handle_errors
def set_password_cmd(
    person: PersonArg,
    from_stdin: Annotated[bool, typer.Option("--stdin", help="从标准输入读取一行作为密码（脚本用）")] = False,
    generate: Annotated[bool, typer.Option(
        "--generate", help="生成一次性密码并显示（仅此一次），首次登录时须修改")] = False,
    actor: AdminAsOpt = None,
) -> None:
    """设置某人的登录密码（隐藏输入两次；或 --stdin / --generate）。"""
    if from_stdin and generate:
        raise InvalidInput("--stdin 与 --generate 只能选一个")
    who = _actor(actor, person)
    password = passwords.generate_password() if generate else _read_password(from_stdin)
    with open_session() as session:
        passwords.set_password(session, person, password, actor=who, must_change=generate)
        session.commit()
    if generate:
        console.print(f"已为「{safe(person)}」生成一次性密码（仅显示这一次，首次登录时须修改）：")
        typer.echo(password)
    else:
        console.print(f"已设置「{safe(person)}」的密码")


def _switch(person: str, actor: str | None, disabled: bool) -> None:
    who = _actor(actor, person)
    with open_session() as session:
        changed = store.set_disabled(session, person, disabled, actor=who)
        session.commit()
    word = "停用" if disabled else "启用"
    console.print(f"已{word}「{safe(person)}」的账号" if changed else f"「{safe(person)}」的账号本已{word}")


@app.command("disable")
@handle_errors
def disable_cmd(person: PersonArg, actor: AdminAsOpt = None) -> None:
    """停用某人的账号：不能再登录，其令牌一律失效（不删除，审计日志仍可查）。"""
    _switch(person, actor, True)


@app.command("enable")
@handle_errors
def enable_cmd(person: PersonArg, actor: AdminAsOpt = None) -> None:
    """重新启用某人的账号（同时解除锁定）。"""
    _switch(person, actor, False)


def parse_expiry(value: str | None, zone: str) -> Any:
    """``30d`` (days from now) or a date ``2027-01-31`` (valid through that local day)."""
    if value is None:
        return None
    text = value.strip()
    days = re.fullmatch(r"(\d{1,5})\s*[dD天]", text)
    if days:
        count = int(days.group(1))
        if not 1 <= count <= MAX_DAYS:
            raise InvalidInput(f"--expires 的天数应为 1–{MAX_DAYS}")
        return utcnow() + timedelta(days=count)
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise InvalidInput(f"--expires「{value[:40]}」应为日期（如 2027-01-31）或天数（如 30d）")
    return parse_local(text, zone, end_of_day=True, what="--expires")


@token_app.command("create")
@handle_errors
def token_create_cmd(
    person: PersonArg,
    name: Annotated[str, typer.Option("--name", help="令牌用途，如「巡检 App」")],
    expires: Annotated[str | None, typer.Option(
        "--expires", help="有效期：日期（如 2027-01-31，当天有效）或天数（如 30d）；默认长期有效")] = None,
    actor: AdminAsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """为某人创建个人令牌：令牌只显示这一次，库中只存其哈希。"""
    who = _actor(actor, person)
    expiry = parse_expiry(expires, STATE.settings.timezone)
    with open_session() as session:
        created = tokens.create_token(session, person, name=name, actor=who, expires_at=expiry)
        session.commit()
    if as_json:
        print_json({"token": created.secret, "id": created.id})
        return
    until = to_local(created.expires_at, STATE.settings.timezone) or "长期"
    console.print(f"已为「{safe(person)}」创建令牌 {created.id}（{safe(created.name)}，有效期至 {until}）。"
                  f"令牌只显示这一次，请妥善保存：")
    typer.echo(created.secret)


_STATUS = {"active": "有效", "expired": "已过期", "revoked": "已撤销"}


@token_app.command("list")
@handle_errors
def token_list_cmd(
    person: Annotated[str | None, code_arg("人员编号（不给则列出全部）")] = None,
    as_json: JsonOpt = False,
) -> None:
    """列出令牌（只显示前缀，从不显示令牌本身）。"""
    zone = STATE.settings.timezone
    principal = token_principal()
    if principal is not None:
        if person is not None and person != principal.person_key:
            raise PermissionDenied(f"使用令牌时只能查看本人（{principal.person_key}）的令牌")
        person = principal.person_key
    with open_session() as session:
        found = tokens.list_tokens(session, person)
    if as_json:
        print_json([{"id": t.id, "person": t.person_key, "name": t.name, "prefix": t.prefix,
                     "status": t.status(), "created_by": t.created_by,
                     **{k: (v.isoformat() if v else None) for k, v in (
                         ("created_at", t.created_at), ("expires_at", t.expires_at),
                         ("revoked_at", t.revoked_at), ("last_used_at", t.last_used_at))}}
                    for t in found])
        return
    table = Table("编号", "人员", "名称", "前缀", "状态", "创建", "有效期至", "最近使用")
    for t in found:
        table.add_row(*cells(t.id, t.person_key, t.name, f"{t.prefix}…", _STATUS[t.status()],
                             to_local(t.created_at, zone), to_local(t.expires_at, zone) or "长期",
                             to_local(t.last_used_at, zone)))
    console.print(table)


@token_app.command("revoke")
@handle_errors
def token_revoke_cmd(
    token_id: Annotated[int, typer.Argument(help="令牌编号（token list 中的编号）", min=1)],
    actor: AdminAsOpt = None,
) -> None:
    """撤销一个令牌：立即失效。"""
    who = _actor(actor)
    principal = token_principal()
    with open_session() as session:
        revoked = tokens.revoke_token(session, token_id, actor=who,
                                      only_person=principal.person_key if principal else None)
        session.commit()
    console.print(f"已撤销「{safe(revoked.person_key)}」的令牌 {token_id}（{safe(revoked.name)}）")


__all__ = ["app"]
