"""The read side of the CLI: ``--as`` on list, show, export and report commands narrows what is
read to what that person may see (``states.visibility``); without it the operator sees
everything, as before. Outside the person's scope is "not found", worded exactly as a code that
does not exist, so a command never tells whether something exists elsewhere.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from sqlalchemy import exists, select
from sqlmodel import Session

from core.errors import NotFound
from models.tables import ENTERPRISE
from states.visibility import OPERATOR, Visibility, visibility_for
from states.workflow import Workflow

ViewAsOpt = Annotated[str | None, typer.Option(
    "--as", help="以此人的可见范围查看（组织文件中的 id）；不给则为运维人员，可见全部")]


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
