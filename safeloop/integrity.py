"""A constraint the database enforced, as the typed refusal a person should see.

Checks in code find most conflicts first; what remains reaches the database when two requests
race (two ``plan add`` of one key on PostgreSQL, two drafts of one annual plan), and the unique
index is then the last word. Both SQLite's and PostgreSQL's errors are read, so the refusal is
the same on either: nothing was written, and the message says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from core.errors import ConcurrentUpdate, InvalidInput, SafeloopError

# Unique keys people choose: a second one is "already exists" (bad input, exit 2).
ALREADY_EXISTS = {
    "inspection_plan": "排查计划编号已存在",
    "annual_plan": "该辖区（监管部门）该年度的年度监督检查计划已存在，请修改已有计划",
    "site_area": "该企业已有同名区域",
    "checklist_template": "该检查表的这个版本已存在",
    "checklist_item": "检查表中已有相同编号的检查项",
    "role_grant": "此人已持有该角色",
}
_SQLITE = re.compile(r"(UNIQUE|FOREIGN KEY|NOT NULL|CHECK) constraint failed(?::\s*(\w+)\.(\w+))?")
_PG_KINDS = {"23505": "UNIQUE", "23503": "FOREIGN KEY", "23502": "NOT NULL", "23514": "CHECK"}


@dataclass(frozen=True)
class Violation:
    kind: str  # UNIQUE, FOREIGN KEY, NOT NULL, CHECK, or "" if unknown
    table: str
    column: str


def violation(exc: IntegrityError) -> Violation:
    """Which kind of constraint, on which table (and, where the driver says, which column)."""
    orig = exc.orig
    diag = getattr(orig, "diag", None)
    if diag is not None:  # psycopg
        kind = _PG_KINDS.get(getattr(orig, "sqlstate", None) or "", "")
        column = diag.column_name or diag.constraint_name or ""
        return Violation(kind, diag.table_name or "", column)
    found = _SQLITE.search(str(orig))
    if found is None:
        return Violation("", "", "")
    return Violation(found.group(1), found.group(2) or "", found.group(3) or "")


def refusal(exc: IntegrityError) -> SafeloopError:
    """The typed error for ``exc``: exit 2 for input that conflicts, 1 for a lost race on a code."""
    v = violation(exc)
    if v.kind == "UNIQUE":
        if "code" in v.column or "period" in v.column or v.table == "audit_entry":
            return ConcurrentUpdate("与他人同时提交的操作冲突，本次操作未生效，请重试", table=v.table)
        if v.table in ALREADY_EXISTS:
            return InvalidInput(ALREADY_EXISTS[v.table], table=v.table)
        return InvalidInput(f"与已有记录重复（{v.table or '未知表'}），本次操作未生效", table=v.table)
    if v.kind == "FOREIGN KEY":
        return InvalidInput("引用的记录不存在（或已被删除），本次操作未生效", table=v.table)
    return InvalidInput(f"数据不符合数据库约束（{v.table or v.kind or '未知'}），本次操作未生效",
                        table=v.table)
