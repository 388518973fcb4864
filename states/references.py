"""Checks that what an event names exists and belongs together (referential integrity).

A foreign key only proves a row exists; these guards prove it is the *right* row: a listing's or
order's hazard belongs to its enterprise, a named department exists and serves the enterprise's
jurisdiction and industry. Input that names nothing real is bad input (``NotFound``, exit 2);
a real thing that does not fit is a refusal (the guard's message, exit 1).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from core.errors import NotFound
from models.tables import DEPARTMENT, ENTERPRISE, JURISDICTION
from states.workflow import Context


def department(ctx: Context, key: str) -> dict[str, Any]:
    """The department named ``key`` with its jurisdiction's path; NotFound if there is none."""
    row = ctx.conn.execute(
        select(DEPARTMENT.c.id, DEPARTMENT.c.key, DEPARTMENT.c.name, DEPARTMENT.c.industries,
               JURISDICTION.c.path.label("jurisdiction_path"),
               JURISDICTION.c.name.label("jurisdiction_name"))
        .join(JURISDICTION, JURISDICTION.c.id == DEPARTMENT.c.jurisdiction_id)
        .where(DEPARTMENT.c.key == key)).mappings().first()
    if row is None:
        raise NotFound(f"监管部门「{key}」不存在", department=key)
    return dict(row)


def _jurisdiction_path(ctx: Context, jurisdiction_id: int) -> str:
    return str(ctx.conn.execute(select(JURISDICTION.c.path)
                                .where(JURISDICTION.c.id == jurisdiction_id)).scalar() or "/")


def department_serves_jurisdiction(ctx: Context, key: str, jurisdiction_id: int) -> str | None:
    """A department acts in its own jurisdiction and the ones below it, never beside or above."""
    found = department(ctx, key)
    if not _jurisdiction_path(ctx, jurisdiction_id).startswith(found["jurisdiction_path"]):
        return f"监管部门「{key}」属于{found['jurisdiction_name']}，不管辖该辖区"
    return None


def department_serves_enterprise(ctx: Context, key: str, enterprise_id: int) -> str | None:
    """The department's jurisdiction covers the enterprise's, and its industries include it."""
    ent = ctx.conn.execute(select(ENTERPRISE.c.name, ENTERPRISE.c.industry,
                                  ENTERPRISE.c.jurisdiction_id)
                           .where(ENTERPRISE.c.id == enterprise_id)).mappings().one()
    found = department(ctx, key)
    if not _jurisdiction_path(ctx, ent["jurisdiction_id"]).startswith(found["jurisdiction_path"]):
        return (f"监管部门「{key}」属于{found['jurisdiction_name']}，"
                f"不管辖企业「{ent['name']}」所在辖区")
    if ent["industry"] not in (found["industries"] or "").split(","):
        return f"监管部门「{key}」不负责企业「{ent['name']}」的「{ent['industry']}」行业"
    return None
