"""What every command shares: the database from ``--db``/settings, output, and error mapping.

Exit codes: 0 done; 1 refused by the domain (not allowed, guard, permission, conflict);
2 bad usage or input (including unknown ids).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from models.db import make_engine
from safeloop.database import require_ready
from safeloop.settings import Settings, get_settings, with_database
from safeloop.timeparse import parse_local
from states.engine import Origin, set_origin
from states.errors import InvalidInput, SafeloopError

# Options every command group shares, declared once.
AsOpt = Annotated[str, typer.Option("--as", help="操作人编号（组织文件中的 id）")]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="操作时间（默认现在），如 2026-11-02 10:00")]
JsonOpt = Annotated[bool, typer.Option("--json", help="以 JSON 输出")]
EvidenceOpt = Annotated[list[Path] | None, typer.Option("--evidence", help="证据/报告文件，可重复")]

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)
P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class AppState:
    db_url: str | None = None

    @property
    def settings(self) -> Settings:
        return with_database(get_settings(), self.db_url)


STATE = AppState()


@contextmanager
def open_session() -> Iterator[Session]:
    settings = STATE.settings
    engine = make_engine(settings.database_url, busy_timeout_s=settings.sqlite_busy_timeout_s)
    try:
        require_ready(engine)  # "run safeloop init" rather than a driver error or an empty file
        with Session(engine, expire_on_commit=False) as session:
            set_origin(session, Origin(
                channel="cli", simulate=settings.simulate_time,
                tolerance=timedelta(seconds=settings.time_tolerance_s)))
            yield session
    finally:
        engine.dispose()


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn domain errors into a red zh-CN message and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except SafeloopError as exc:
            err_console.print(f"[bold red]错误：[/]{exc.message}")
            raise typer.Exit(exc.exit_code) from exc
        except IntegrityError as exc:  # a race the checks in code could not see
            from safeloop.integrity import refusal

            error = refusal(exc)
            err_console.print(f"[bold red]错误：[/]{error.message}")
            raise typer.Exit(error.exit_code) from exc
        except OperationalError as exc:
            err_console.print(f"[bold red]数据库错误：[/]{exc.orig}（是否已运行 safeloop init？）")
            raise typer.Exit(2) from exc

    return wrapper


def print_json(payload: Any) -> None:
    typer.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def ensure_writable(output: Path) -> None:
    """Check a user's output path before any work is done for it."""
    if not output.parent.exists():
        raise InvalidInput(f"输出目录不存在：{output.parent}")


@contextmanager
def writing(output: Path) -> Iterator[None]:
    """Writes to a user's output path: a file that cannot be written is bad input, not a crash."""
    try:
        yield
    except OSError as exc:
        raise InvalidInput(f"无法写入 {output}：{exc.strerror}") from exc


def as_of_option(value: str | None) -> datetime | None:
    return parse_local(value, STATE.settings.timezone, what="--as-of") if value else None
