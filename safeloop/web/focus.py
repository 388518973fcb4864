"""What a dashboard or a filtered list is about: everything the person sees, one enterprise
(``?enterprise=KEY``) or one jurisdiction with those below it (``?jurisdiction=KEY``).

A focus only narrows the person's read scope (``states.visibility``), never widens it: an
enterprise the person sees nothing of, or a jurisdiction outside their grants, is "not found"
(404), worded as for a key that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Connection, Table, and_, select

from core.errors import InvalidInput, NotFound
from models.tables import ENTERPRISE, JURISDICTION
from states.actors import mark
from states.visibility import Visibility, jurisdictions_below

MAX_KEY = 100


@dataclass(frozen=True)
class Focus:
    kind: str  # all | enterprise | jurisdiction
    key: str = ""
    name: str = "全部可见范围"
    id: int | None = None

    def enterprises(self, column: Any) -> ColumnElement[bool] | None:
        """The condition on a column of enterprise ids; None for everything in scope."""
        if self.kind == "enterprise":
            return column == self.id
        if self.kind == "jurisdiction":
            return column.in_(select(ENTERPRISE.c.id).join(
                JURISDICTION, JURISDICTION.c.id == ENTERPRISE.c.jurisdiction_id)
                .where(JURISDICTION.c.path.contains(mark(self.id))))
        return None

    def query(self) -> dict[str, str]:
        return {self.kind: self.key} if self.kind != "all" else {}

    def link(self, path: str, **more: Any) -> str:
        """``path`` with this focus and ``more`` as its query string."""
        params = {**self.query(), **{k: str(v) for k, v in more.items() if v not in (None, "")}}
        return f"{path}?{urlencode(params)}" if params else path


def where(scope: Visibility, focus: Focus, table: Table) -> ColumnElement[bool] | None:
    """The person's scope on ``table`` (a unit-scoped workflow table) narrowed to the focus."""
    parts = [c for c in (scope.rows_where(table), focus.enterprises(table.c.enterprise_id))
             if c is not None]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else and_(*parts)


def jurisdictions(conn: Connection, scope: Visibility) -> list[tuple[str, str]]:
    """(key, name) of the jurisdictions the person's jurisdiction grants reach, tree order."""
    if scope.everything:
        stmt = select(JURISDICTION.c.key, JURISDICTION.c.name)
    else:
        ids = [g.jurisdiction_id for g in scope.grants if g.jurisdiction_id is not None]
        if not ids:
            return []
        stmt = select(JURISDICTION.c.key, JURISDICTION.c.name).where(
            JURISDICTION.c.id.in_(jurisdictions_below(ids)))
    return [(str(k), str(n)) for k, n in conn.execute(stmt.order_by(JURISDICTION.c.path))]


def enterprises(conn: Connection, scope: Visibility) -> list[tuple[str, str]]:
    """(key, name) of the enterprises the person sees something of."""
    condition = scope.enterprises_where(ENTERPRISE.c.id)
    stmt = select(ENTERPRISE.c.key, ENTERPRISE.c.name)
    if condition is not None:
        stmt = stmt.where(condition)
    return [(str(k), str(n)) for k, n in conn.execute(stmt.order_by(ENTERPRISE.c.key))]


def focus_of(conn: Connection, scope: Visibility, params: Any) -> Focus:
    """The focus the query string asks for, checked against the person's scope."""
    enterprise, jurisdiction = params.get("enterprise") or "", params.get("jurisdiction") or ""
    if enterprise and jurisdiction:
        raise InvalidInput("请只选择企业或辖区之一", field="enterprise")
    if enterprise:
        key = enterprise[:MAX_KEY]
        condition = scope.enterprises_where(ENTERPRISE.c.id)
        row = conn.execute(select(ENTERPRISE.c.id, ENTERPRISE.c.name).where(
            ENTERPRISE.c.key == key, *([] if condition is None else [condition]))).first()
        if row is None:
            raise NotFound(f"企业「{key}」不存在")
        return Focus("enterprise", key, str(row[1]), int(row[0]))
    if jurisdiction:
        key = jurisdiction[:MAX_KEY]
        row = conn.execute(select(JURISDICTION.c.id, JURISDICTION.c.name)
                           .where(JURISDICTION.c.key == key)).first()
        if row is None or key not in {k for k, _ in jurisdictions(conn, scope)}:
            raise NotFound(f"辖区「{key}」不存在")
        return Focus("jurisdiction", key, f"{row[1]}（含下级辖区）", int(row[0]))
    return Focus("all")
