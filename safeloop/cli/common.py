"""What every command shares: the database from ``--db``/settings, output, and error mapping.

Exit codes: 0 done (also when the change was saved but printing it failed: that is said on
stderr, so a script does not repeat the change); 1 refused by the domain (not allowed, guard,
permission, conflict) or output failed with nothing saved; 2 bad usage or input (including
unknown ids and unusable output paths).

Who acts is resolved here, in one place (``resolve_actor``): by default ``--as`` names the
person, as before. With ``SAFELOOP_TOKEN`` set, the token is checked once per command and its
person is the actor (``--as`` may be left off; naming anyone else is refused), and the audit
rows say ``credential = token:<id>``. With ``SAFELOOP_CLI_REQUIRES_TOKEN=true`` a command that
changes state refuses to run without a valid token (exit 2): ``--as`` is refused while parsing,
and a command without ``--as`` (``org load``, ``user …``) is refused when it would commit a
change (``_guard_writes``). The read commands' ``--as`` (``reading.ViewAsOpt``) is resolved here
too (``resolve_viewer``): with a token it is the token's person -- left off or named, never
anyone else -- and without one the typed person or, left off, the operator.
"""

from __future__ import annotations

import contextlib
import functools
import os
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from core.errors import InvalidInput, NotAuthenticated, SafeloopError
from core.rules import Rules, set_rules
from core.settings import Settings, get_settings, with_database
from core.timeparse import parse_local
from models.db import make_engine
from safeloop.accounts.principal import Principal
from safeloop.cli.output import (
    OutputFailed,
    SafeConsole,
    console,
    err_console,
    message,
    os_reason,
    plain,
    print_json,
)
from safeloop.cli.usage import click_errors
from safeloop.database import require_ready
from states.actors import refuse_internal_actor
from states.engine import Origin, set_origin

__all__ = ["console", "err_console", "print_json"]  # re-exported: every command prints through them

TOKEN_REQUIRED = ("此操作需要个人令牌：已设置 SAFELOOP_CLI_REQUIRES_TOKEN=true，请在 SAFELOOP_TOKEN 中"
                  "提供本人的令牌（safeloop user token create 本人编号 --name …）")


def _actor_default() -> str:
    """``--as`` left off: the token's person, or the usage error a required option gives."""
    return _resolve_as(None)


def _actor_given(value: str) -> str:
    return _resolve_as(value)


def _resolve_as(typed: str | None) -> str:
    """``resolve_actor`` while Click parses ``--as``: a refusal is a usage error (exit 2)."""
    try:
        return resolve_actor(typed)
    except _MissingAs:  # Click names the option and context, as for any required option
        raise click_errors.MissingParameter() from None
    except SafeloopError as exc:
        raise click_errors.UsageError(exc.message) from exc


# Options every command group shares, declared once. ``--as`` is resolved while parsing: given,
# or (with a token) the token's person; without a token it is required, as it always was.
AsOpt = Annotated[str, typer.Option("--as", help="操作人编号（组织文件中的 id；使用令牌时可省略）",
                                    default_factory=_actor_default, callback=_actor_given,
                                    show_default=False)]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="操作时间（默认现在），如 2026-11-02 10:00")]
JsonOpt = Annotated[bool, typer.Option("--json", help="以 JSON 输出")]
EvidenceOpt = Annotated[list[Path] | None, typer.Option("--evidence", help="证据/报告文件，可重复")]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppState:
    db_url: str | None = None
    saved: bool = False  # a database commit happened during the running command
    identified: bool = False  # SAFELOOP_TOKEN was checked during this command …
    principal: Principal | None = None  # … and named this person (None: no token given)

    def begin(self, db_url: str | None) -> None:
        """A new command: its database, and no identity checked yet."""
        self.db_url, self.identified, self.principal = db_url, False, None

    @property
    def settings(self) -> Settings:
        return with_database(get_settings(), self.db_url)


STATE = AppState()


@event.listens_for(Engine, "commit")
def _committed(_conn: Any) -> None:
    """Note any commit, so an output failure afterwards can say the change was saved."""
    STATE.saved = True


class _MissingAs(Exception):
    """``--as`` left off and no token to stand for it."""


def token_principal() -> Principal | None:
    """The person ``SAFELOOP_TOKEN`` names, checked once per command (its use is audited at most
    once a minute); None when no token is set. A wrong, expired or revoked token, or a disabled
    account, is ``NotAuthenticated`` whether or not tokens are required."""
    if STATE.identified:
        return STATE.principal
    settings = STATE.settings
    secret = settings.token.get_secret_value() if settings.token is not None else ""
    principal = None
    if secret:
        from safeloop.accounts.tokens import authenticate_token

        engine = make_engine(settings.database_url, busy_timeout_s=settings.sqlite_busy_timeout_s)
        try:
            require_ready(engine)
            with Session(engine, expire_on_commit=False) as session:
                set_origin(session, _origin(settings, None))
                set_rules(session, Rules.from_settings(settings))
                principal = authenticate_token(session, secret, channel="cli")
        finally:
            engine.dispose()
    STATE.identified, STATE.principal = True, principal
    return principal


def resolve_operator(typed: str | None) -> str:
    """Who performs an operator's act (``org load``, ``calendar load``, ``user …``): ``typed``
    or ``admin``; an internal actor (``system``) is refused as it is for every event."""
    actor = resolve_actor(typed, default="admin")
    refuse_internal_actor(actor, _origin(STATE.settings, token_principal()))
    return actor


def resolve_actor(typed: str | None, *, default: str | None = None) -> str:
    """Who acts: the one place the CLI decides it. Without a token, ``typed`` (or ``default``);
    with one, the token's person (``typed`` may be left off, but may not name anyone else);
    with tokens required and none given, refused."""
    principal = token_principal()
    if principal is None:
        if STATE.settings.cli_requires_token:
            raise NotAuthenticated(TOKEN_REQUIRED)
        if typed is None and default is None:
            raise _MissingAs()
        return typed if typed is not None else str(default)
    if typed is not None and typed != principal.person_key:
        raise NotAuthenticated(f"令牌属于「{principal.person_key}」，不能以「{plain(typed, 64)}」的身份操作"
                               f"（使用令牌时 --as 只能是令牌本人，或省略）")
    return principal.person_key


def resolve_viewer(typed: str | None) -> str | None:
    """Whose scope a read command reads with: without a token, ``typed`` (None: the operator,
    who sees everything); with one, the token's person (a token never reads as the operator,
    and ``typed`` may not name anyone else)."""
    principal = token_principal()
    if principal is None:
        return typed
    if typed is not None and typed != principal.person_key:
        raise NotAuthenticated(f"令牌属于「{principal.person_key}」，不能以「{plain(typed, 64)}」的身份查看"
                               f"（使用令牌时 --as 只能是令牌本人，或省略）")
    return principal.person_key


def _origin(settings: Settings, principal: Principal | None) -> Origin:
    return Origin(channel="cli", credential=principal.credential if principal else None,
                  simulate=settings.simulate_time,
                  tolerance=timedelta(seconds=settings.time_tolerance_s))


def _guard_writes(session: Session) -> None:
    """Tokens required and none given: refuse to commit any change this session made."""

    @event.listens_for(session, "after_begin")
    def _baseline(_session: Session, _transaction: Any, connection: Connection) -> None:
        if connection.dialect.name == "sqlite":
            session.info["changes_before"] = _sqlite_changes(connection)

    @event.listens_for(session, "before_commit")
    def _refuse(_session: Session) -> None:
        if _wrote(session):
            raise NotAuthenticated(TOKEN_REQUIRED)


def _sqlite_changes(connection: Connection) -> int:
    return int(connection.connection.dbapi_connection.total_changes)  # type: ignore[union-attr]


def _wrote(session: Session) -> bool:
    """Whether the open transaction changed any row (SQLite: the connection's change counter;
    PostgreSQL: whether the transaction was given an id, which only a write does)."""
    if not session.in_transaction():
        return False
    connection = session.connection()
    if connection.dialect.name == "sqlite":
        return _sqlite_changes(connection) != session.info.get("changes_before", 0)
    return connection.exec_driver_sql("SELECT txid_current_if_assigned()").scalar() is not None


@contextmanager
def open_session() -> Iterator[Session]:
    """A session on the command's database, carrying who acts (the CLI ``Origin``, with the
    token's id when one is used) and the rules in force (``Rules`` from the settings) for every
    guard and effect the command runs."""
    settings = STATE.settings
    principal = token_principal()
    engine = make_engine(settings.database_url, busy_timeout_s=settings.sqlite_busy_timeout_s)
    try:
        require_ready(engine)  # "run safeloop init" rather than a driver error or an empty file
        with Session(engine, expire_on_commit=False) as session:
            set_origin(session, _origin(settings, principal))
            set_rules(session, Rules.from_settings(settings))
            if principal is None and settings.cli_requires_token:
                _guard_writes(session)
            try:
                yield session
            except BaseException:
                session.rollback()  # refused before the engine ran: undo what was staged
                raise
    finally:
        engine.dispose()


def _say(target: SafeConsole, text: str) -> None:
    with contextlib.suppress(OutputFailed):  # stderr itself is gone; the exit code still tells
        target.print(text)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors into a red zh-CN message and the documented exit code.

    A failure to print after the command committed is not the command failing: it says the
    change was saved and exits 0, so a script does not repeat (and duplicate) the change.
    """

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        STATE.saved = False
        try:
            return func(*args, **kwargs)
        except SafeloopError as exc:
            _say(err_console, f"[bold red]错误：[/]{message(exc.message)}")
            raise typer.Exit(exc.exit_code) from exc
        except IntegrityError as exc:  # a race the checks in code could not see
            from safeloop.integrity import refusal

            error = refusal(exc)
            _say(err_console, f"[bold red]错误：[/]{message(error.message)}")
            raise typer.Exit(error.exit_code) from exc
        except OperationalError as exc:
            _say(err_console, f"[bold red]数据库错误：[/]{message(exc.orig)}（是否已运行 safeloop init？）")
            raise typer.Exit(2) from exc
        except OutputFailed as exc:
            if STATE.saved:
                _say(err_console, f"[bold yellow]操作已保存，但输出失败：[/]{message(exc.reason)}")
                raise typer.Exit(0) from exc
            _say(err_console, f"[bold red]输出失败：[/]{message(exc.reason)}")
            raise typer.Exit(1) from exc

    return wrapper


# ---- ids typed on the command line -----------------------------------------------------------

MAX_CODE = 200  # longer than any code, key or name the product issues


def _length_limit(what: str) -> Callable[[Any], Any]:
    def check(value: str | Sequence[str] | None) -> str | Sequence[str] | None:
        """Refuse an over-long id before it reaches a query or the screen."""
        for one in [value] if isinstance(value, str) else value or []:
            if len(one) > MAX_CODE:
                raise typer.BadParameter(f"{what}过长（{len(one)} 个字符，最多 {MAX_CODE} 个）")
        return value

    return check


def code_arg(help: str) -> Any:
    """A positional id (hazard code, task code, plan key, enterprise key…) with a length limit."""
    return typer.Argument(help=help, callback=_length_limit("编号"))


def code_option(*decls: str, help: str) -> Any:
    """An option naming ids, with the same length limit."""
    return typer.Option(*decls, help=help, callback=_length_limit("编号"))


# ---- output files ----------------------------------------------------------------------------


def _shown(path: Path) -> str:
    return plain(path, 300, middle=True)


def ensure_writable(output: Path) -> None:
    """Check a user's output path before any work is done for it: its folder exists and is
    writable, and the path is a regular file or does not exist yet (not a folder, not a device
    such as /dev/full, not a pipe)."""
    try:
        found = output.stat()
    except FileNotFoundError:
        found = None
    except OSError as exc:
        raise InvalidInput(f"无法使用输出路径 {_shown(output)}：{os_reason(exc)}") from exc
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise InvalidInput(f"输出路径 {_shown(output)} 是一个目录，请给出文件名")
    if found is not None and not stat.S_ISREG(found.st_mode):
        raise InvalidInput(f"输出路径 {_shown(output)} 不是普通文件（设备、管道等），请给出文件名")
    if found is not None and not os.access(output, os.W_OK):
        raise InvalidInput(f"没有权限写入输出文件：{_shown(output)}")
    folder = output.parent
    if not folder.exists():
        raise InvalidInput(f"输出目录不存在：{_shown(folder)}")
    if not folder.is_dir():
        raise InvalidInput(f"输出目录 {_shown(folder)} 不是目录")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInput(f"没有权限写入输出目录：{_shown(folder)}")


def _file_mode(target: Path) -> int:
    """The mode the file would have had if written in place: its own, or 0666 less the umask."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync(path: Path, *, folder: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if folder else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def writing(output: Path) -> Iterator[Path]:
    """Write a user's output file atomically: the body writes the temporary path it is given,
    beside the target; then it is synced and renamed over the target. On any failure the
    temporary file is removed and the target is untouched — never a half-written file — and an
    OS error (full disk, no permission) is bad input in zh-CN, not a traceback."""
    ensure_writable(output)
    target = output.resolve()
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name[:60]}.", suffix=".part", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise InvalidInput(f"无法写入 {_shown(output)}：{os_reason(exc)}") from exc
    temp = Path(name)
    try:
        yield temp
        _fsync(temp)
        os.chmod(temp, _file_mode(target))
        os.replace(temp, target)
    except OSError as exc:
        raise InvalidInput(
            f"无法写入 {_shown(output)}：{os_reason(exc)}，文件未写出（原有文件不变）") from exc
    finally:
        temp.unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # the rename made durable; some file systems refuse this
        _fsync(target.parent, folder=True)


def as_of_option(value: str | None) -> datetime | None:
    return parse_local(value, STATE.settings.timezone, what="--as-of") if value else None
