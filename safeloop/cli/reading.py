"""The read side of the CLI: ``--as`` on list, show, export and report commands narrows what is
read to what that person may see (``states.visibility``); without it the operator sees
everything, as before. With ``SAFELOOP_TOKEN`` set the command reads as the token's person,
``--as`` given or not; naming anyone else is refused like a write is (exit 2):
``common.resolve_viewer``. Outside the person's scope is "not found", worded exactly as a code that
does not exist, so a command never tells whether something exists elsewhere.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import exists, select
from sqlmodel import Session

from core.errors import NotFound, SafeloopError
from models.tables import ENTERPRISE
from safeloop.cli.common import resolve_viewer
from safeloop.cli.usage import click_errors
from states.visibility import OPERATOR, Visibility, visibility_for
from states.workflow import Workflow


def _viewer(value: str | None) -> str | None:
    """``resolve_viewer`` while Click parses ``--as``: a refusal is a usage error (exit 2)."""
    try:
        return resolve_viewer(value)
    except SafeloopError as exc:
        raise click_errors.UsageError(exc.message) from exc


ViewAsOpt = Annotated[str | None, typer.Option(
    "--as", callback=_viewer,
    help="以此人的可见范围查看（组织文件中的 id）；不给则为运维人员，可见全部；"
         "设置了 SAFELOOP_TOKEN 时为令牌本人")]


def seeing(session: Session, person: str | None) -> Visibility:
    """What the command may read: the person's scope, or everything for the operator."""
    return OPERATOR if person is None else visibility_for(session.connection(), person)


def scoped(stmt: Any, visibility: Visibility, workflow: Workflow) -> Any:
    """``stmt`` (over ``workflow.table``) limited to the rows the person sees."""
    condition = visibility.where(workflow)
    return stmt if condition is None else stmt.where(condition)


def scoped_table(stmt: Any, visibility: Visibility, table: Any) -> Any:
    """The same for a table that is no workflow's (inspection plans): by its unit/enterprise."""
    condition = visibility.rows_where(table)
    return stmt if condition is None else stmt.where(condition)


def check_enterprise(session: Session, visibility: Visibility, key: str) -> None:
    """An enterprise named on the command line: "not found" unless the person sees some of it
    (the same words as ``safeloop.risks.enterprise_of`` for a key that does not exist)."""
    condition = visibility.enterprises_where(ENTERPRISE.c.id)
    if condition is None:
        return
    found = session.connection().execute(select(exists().where(
        ENTERPRISE.c.key == key, condition))).scalar()
    if not found:
        raise NotFound(f"企业「{key}」不存在")
