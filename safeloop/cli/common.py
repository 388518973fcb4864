"""What every command shares: the database from ``--db``/settings, output, and error mapping.

Exit codes: 0 done (also when the change was saved but printing it failed: that is said on
stderr, so a script does not repeat the change); 1 refused by the domain (not allowed, guard,
permission, conflict) or output failed with nothing saved; 2 bad usage or input (including
unknown ids and unusable output paths).
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
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from core.errors import InvalidInput, SafeloopError
from core.rules import Rules, set_rules
from core.settings import Settings, get_settings, with_database
from core.timeparse import parse_local
from models.db import make_engine
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
from safeloop.database import require_ready
from states.engine import Origin, set_origin

__all__ = ["console", "err_console", "print_json"]  # re-exported: every command prints through them

# Options every command group shares, declared once.
AsOpt = Annotated[str, typer.Option("--as", help="操作人编号（组织文件中的 id）")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="操作时间（默认现在），如 2026-11-02 10:00")]
JsonOpt = Annotated[bool, typer.Option("--json", help="以 JSON 输出")]
EvidenceOpt = Annotated[list[Path] | None, typer.Option("--evidence", help="证据/报告文件，可重复")]

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppState:
    db_url: str | None = None
    saved: bool = False  # a database commit happened during the running command

    @property
    def settings(self) -> Settings:
        return with_database(get_settings(), self.db_url)


STATE = AppState()


@event.listens_for(Engine, "commit")
def _committed(_conn: Any) -> None:
    """Note any commit, so an output failure afterwards can say the change was saved."""
    STATE.saved = True


@contextmanager
def open_session() -> Iterator[Session]:
    """A session on the command's database, carrying who acts (the CLI ``Origin``) and the rules
    in force (``Rules`` from the settings) for every guard and effect the command runs."""
    settings = STATE.settings
    engine = make_engine(settings.database_url, busy_timeout_s=settings.sqlite_busy_timeout_s)
    try:
        require_ready(engine)  # "run safeloop init" rather than a driver error or an empty file
        with Session(engine, expire_on_commit=False) as session:
            set_origin(session, Origin(
                channel="cli", simulate=settings.simulate_time,
                tolerance=timedelta(seconds=settings.time_tolerance_s)))
            set_rules(session, Rules.from_settings(settings))
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
