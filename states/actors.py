"""Who may act where: a person's role grants, the one test of role scope (``Actor.roles_at``), the
internal actors no person may use, and where a new entity would live.

Every workflow's role check goes through this module; no workflow reads grants or departments
itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, select

from core.errors import NotFound, PermissionDenied
from core.rules import Rules, rules_in_force
from models.enums import Role
from models.tables import DEPARTMENT, ENTERPRISE, JURISDICTION, PERSON, UNIT
from models.tables import ROLE_GRANT as GRANT
from states import rawdb
from states.requests import Origin
from states.workflow import Workflow

SYSTEM_ACTOR = "system"
# Actors that are no person: only flows and the engine's own cascades may act as them.
INTERNAL_ACTORS = frozenset({SYSTEM_ACTOR})

# Statements built once: building a Select costs more than executing it (see bench/).
# A grant's department comes with its industries ("" = a department without a list; NULL = a
# regulator without a department, i.e. comprehensive supervision of the jurisdiction).
_ACTOR = (
    select(PERSON.c.id, GRANT.c.role, GRANT.c.unit_id, GRANT.c.jurisdiction_id,
           GRANT.c.department_id, DEPARTMENT.c.industries)
    .select_from(PERSON.outerjoin(GRANT, GRANT.c.person_id == PERSON.c.id)
                 .outerjoin(DEPARTMENT, DEPARTMENT.c.id == GRANT.c.department_id))
    .where(PERSON.c.key == bindparam("key"))
)
_PERSON_ID = select(PERSON.c.id).where(PERSON.c.key == bindparam("key"))


@dataclass(frozen=True)
class Grant:
    """One role a person holds: in a unit subtree, or in a jurisdiction tree through a department."""

    role: str
    unit_id: int | None
    jurisdiction_id: int | None
    department_id: int | None = None
    industries: frozenset[str] | None = None  # None: no department (comprehensive supervision)

    def in_unit(self, unit_path: str) -> bool:
        return self.unit_id is not None and mark(self.unit_id) in unit_path

    def in_jurisdiction(self, jurisdiction_path: str) -> bool:
        return self.jurisdiction_id is not None and mark(self.jurisdiction_id) in jurisdiction_path

    def covers(self, row: Mapping[str, Any]) -> bool:
        """The grant reaches where ``row`` lives: its unit subtree, or its jurisdiction tree through
        a department that covers the row. ``states.visibility`` says the same in SQL, built from
        ``mark`` and ``department_limit`` below, so acting and seeing cannot drift apart."""
        return self.in_unit(row["_unit_path"]) or (
            self.in_jurisdiction(row["_jur_path"]) and department_covers(self, row))


def mark(node_id: int) -> str:
    """How a unit or jurisdiction appears in a materialised path (``/3/7/12/``): a path holding
    a node's mark is that node or below it -- the one test of "in this subtree"."""
    return f"/{node_id}/"


@dataclass(frozen=True)
class Actor:
    key: str
    id: int | None
    grants: tuple[Grant, ...]

    def roles_at(self, row: Mapping[str, Any]) -> set[str]:
        """Roles held where an entity lives: granted in its unit or an ancestor unit, or -- for
        regulators -- in its jurisdiction tree through a department that oversees the
        enterprise's industry (or, for a jurisdiction's own entities, is the entity's department).

        This is the one check of regulator scope: every workflow's role test goes through it.
        """
        if self.key in INTERNAL_ACTORS:
            return {Role.system.value}
        return {grant.role for grant in self.grants if grant.covers(row)}

    def outside_department(self, row: Mapping[str, Any]) -> str:
        """Why a regulator of the right jurisdiction holds no role here: their department."""
        for grant in self.grants:
            if (grant.role == Role.regulator.value and grant.in_jurisdiction(row["_jur_path"])
                    and not department_covers(grant, row)):
                if row.get("_industry") is not None:
                    return f"（其所在监管部门不负责「{row['_industry']}」行业）"
                return "（该计划属于其他监管部门）"
        return ""


def department_limit(grant: Grant) -> frozenset[str] | None:
    """The industries a grant is limited to, or None when it is not limited by department:
    auditors, and a regulator without a department (comprehensive supervision)."""
    if grant.role != Role.regulator.value:
        return None
    return grant.industries


def department_covers(grant: Grant, row: Mapping[str, Any]) -> bool:
    """A regulator's department covers an enterprise's industry, or is the plan's own department.

    Auditors (and a regulator without a department) are not limited by industry.
    """
    industries = department_limit(grant)
    if industries is None:
        return True
    industry = row.get("_industry")
    if industry is not None:
        return industry in industries
    department = row.get("department_id")
    return department is None or department == grant.department_id


class Lookups:
    """Per-transaction caches of actors and people so a batch queries each once, and the rules
    in force for the transaction: the ones the entry point put on the session (``set_rules``),
    else -- library callers, tests calling the engine directly -- built from the settings once
    per transaction, when the first decision needs them (``core.rules.rules_in_force``)."""

    def __init__(self, conn: Connection, rules: Rules | None = None) -> None:
        self.conn = conn
        self.actors: dict[str, Actor] = {}
        self.people: dict[str, int] = {}
        self.memo: dict[Any, Any] = {}
        self._rules = rules

    @property
    def rules(self) -> Rules:
        if self._rules is None:
            self._rules = rules_in_force()
        return self._rules

    def actor(self, key: str) -> Actor:
        if key in self.actors:
            return self.actors[key]
        if key == SYSTEM_ACTOR:
            found = Actor(key, None, ())
        else:
            rows = rawdb.query(self.conn, _ACTOR, key)
            if rows is None:
                rows = self.conn.execute(_ACTOR, {"key": key}).all()
            if not rows:
                raise NotFound(f"人员「{key}」不存在", key=key)
            grants = tuple(
                Grant(r[1], r[2], r[3], r[4],
                      None if r[4] is None else frozenset(i for i in (r[5] or "").split(",") if i))
                for r in rows if r[1] is not None)
            found = Actor(key, rows[0][0], grants)
        self.actors[key] = found
        return found

    def person_id(self, key: str) -> int:
        if key not in self.people:
            pid = self.conn.execute(_PERSON_ID, {"key": key}).scalar()
            if pid is None:
                raise NotFound(f"人员「{key}」不存在", key=key)
            self.people[key] = pid
        return self.people[key]


def refuse_internal_actor(actor: str, origin: Origin) -> None:
    """A person (CLI, web, API) never acts as an internal actor; flows and cascades may."""
    if actor in INTERNAL_ACTORS and origin.by_person:
        raise PermissionDenied(
            f"「{actor}」是系统内部身份，只有定时流程和级联操作可以使用，任何人都不能以它的名义操作",
            actor=actor)


def scope_of_new(
    conn: Connection, workflow: Workflow, data: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """Where a new entity lives (its unit, or its jurisdiction): the row stub for role checks,
    the scope columns to insert, and how to name it in messages."""
    stub: dict[str, Any] = {"state": None, "code": "", "plan": None}
    if workflow.scope == "jurisdiction":
        key = data.get("jurisdiction")
        found = conn.execute(select(JURISDICTION.c.id, JURISDICTION.c.path)
                             .where(JURISDICTION.c.key == str(key))).first()
        if found is None:
            raise NotFound(f"辖区「{key}」不存在", jurisdiction=key)
        stub.update(jurisdiction_id=found[0], _unit_path="", _jur_path=found[1],
                    _industry=None, department_id=None)
        if data.get("department"):  # a plan in a department's name: only that department acts
            department = conn.execute(select(DEPARTMENT.c.id).where(
                DEPARTMENT.c.key == str(data["department"]))).scalar()
            if department is None:
                raise NotFound(f"监管部门「{data['department']}」不存在",
                               department=data["department"])
            stub["department_id"] = department
        return stub, {"jurisdiction_id": found[0]}, f"辖区「{key}」的{workflow.label}"
    unit_key = data.get("unit")
    unit = conn.execute(
        select(UNIT.c.id, UNIT.c.path, UNIT.c.enterprise_id, JURISDICTION.c.path,
               ENTERPRISE.c.industry)
        .join(ENTERPRISE, ENTERPRISE.c.id == UNIT.c.enterprise_id)
        .join(JURISDICTION, JURISDICTION.c.id == ENTERPRISE.c.jurisdiction_id)
        .where(UNIT.c.key == str(unit_key))
    ).first()
    if unit is None:
        raise NotFound(f"单位「{unit_key}」不存在", unit=unit_key)
    stub.update(unit_id=unit[0], enterprise_id=unit[2], _unit_path=unit[1], _jur_path=unit[3],
                _industry=unit[4])
    return stub, {"unit_id": unit[0], "enterprise_id": unit[2]}, f"单位「{unit_key}」的{workflow.label}"


def roles_in_scope(conn: Connection, workflow: Workflow, person: str,
                   data: Mapping[str, Any]) -> set[str]:
    """The roles ``person`` holds where a new entity of ``workflow`` described by ``data`` would
    live: for checks on people named before any event (e.g. an inspection plan's assignee)."""
    row, _, _ = scope_of_new(conn, workflow, data)
    return Lookups(conn).actor(person).roles_at(row)
