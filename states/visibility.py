"""What a person may see: one function, ``visibility_for``, used by every list, show, export and
report (CLI and API alike). Out of scope answers "not found", never "forbidden".

The rules are the engine's rules for acting (``states.actors``: ``Grant.covers``), said in SQL
from the same pieces (``mark``, ``department_limit``), so a person sees at least everything they
may act on and the two cannot drift apart:

- enterprise staff see the units their grants cover: a grant on a unit covers its subtree (a
  principal or safety officer granted at the enterprise's top unit sees the whole enterprise;
  one granted at a plant sees that plant);
- regulators see the enterprises of their jurisdiction and its sub-jurisdictions whose industry
  their department covers (no department = comprehensive supervision: every industry);
- auditors see their jurisdiction and below (every industry), or their unit subtree, read-only;
- jurisdiction-scoped rows (annual plans) are seen by regulators and auditors of the plan's
  jurisdiction or an ancestor of it (a city sees its districts' plans, a district not the city's);
  a regulator with a department sees its own department's plans and the plans in no
  department's name -- exactly the plans they may act on;
- the audit trail: the rows of entities the person sees; administrative rows (org loads, plans,
  checklists, batches, checkpoints, accounts) only operators and auditors of a top jurisdiction.

Every condition is set-wise SQL over the row's own columns (``IN (subquery)`` on unit_id,
enterprise_id, jurisdiction_id; contains-LIKE on the materialised paths of the small org tables),
so a caller adds one WHERE and it holds at any number of rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, and_, exists, false, or_, select

from core.errors import NotFound
from models.enums import Role
from models.tables import ENTERPRISE, ENTITY_TABLES, JURISDICTION, UNIT
from states.actors import Grant, Lookups, department_limit, mark
from states.workflow import Workflow

__all__ = ["Visibility", "visibility_for", "OPERATOR", "NOBODY"]


@dataclass(frozen=True)
class Visibility:
    """What one person may see. ``everything``: the operator (no ``--as``); ``read_only``: the
    person may look but holds no role that acts (auditors, and people with no grant)."""

    person_key: str | None
    grants: tuple[Grant, ...] = ()
    everything: bool = False
    read_only: bool = True
    # sees administrative audit rows (an auditor of a jurisdiction with no parent)
    administrative: bool = False

    # ---- rows of a workflow ------------------------------------------------------------------

    def where(self, workflow: Workflow) -> ColumnElement[bool] | None:
        """A condition over ``workflow.table``'s own columns; None = every row."""
        return self.rows_where(workflow.table, workflow.scope)

    def rows_where(self, table: Table, scope: str | None = None) -> ColumnElement[bool] | None:
        """The same for any table with unit_id/enterprise_id ("unit") or jurisdiction_id
        ("jurisdiction") columns; the scope is inferred from the columns when not given."""
        if self.everything:
            return None
        scope = scope or ("unit" if "unit_id" in table.c else "jurisdiction")
        if scope == "jurisdiction":
            return _any(self._plan_conditions(table))
        conditions: list[ColumnElement[bool]] = []
        units = [g.unit_id for g in self.grants if g.unit_id is not None]
        if units and "unit_id" in table.c:
            conditions.append(table.c.unit_id.in_(units_below(units)))
        enterprises = self._enterprises()
        if enterprises is not None:
            conditions.append(table.c.enterprise_id.in_(enterprises))
        return _any(conditions)

    def enterprises_where(self, column: Any) -> ColumnElement[bool] | None:
        """Enterprises of which the person sees something (a unit or the whole enterprise):
        ``column`` holds enterprise ids (``ENTERPRISE.c.id``, a table's ``enterprise_id``)."""
        if self.everything:
            return None
        conditions: list[ColumnElement[bool]] = []
        units = [g.unit_id for g in self.grants if g.unit_id is not None]
        if units:
            conditions.append(column.in_(select(UNIT.c.enterprise_id).where(
                UNIT.c.id.in_(units_below(units)))))
        enterprises = self._enterprises()
        if enterprises is not None:
            conditions.append(column.in_(enterprises))
        return _any(conditions)

    def sees(self, conn: Connection, workflow: Workflow, entity_id: int) -> bool:
        condition = self.where(workflow)
        table = workflow.table
        stmt = select(exists().where(table.c.id == entity_id,
                                     *([] if condition is None else [condition])))
        return bool(conn.execute(stmt).scalar())

    def require(self, conn: Connection, workflow: Workflow, entity_id: int, code: str) -> None:
        """NotFound, worded as for a code that does not exist, unless the person sees the row."""
        if not self.everything and not self.sees(conn, workflow, entity_id):
            raise NotFound(f"{workflow.label}「{code}」不存在", entity=code)

    # ---- the audit trail ---------------------------------------------------------------------

    def audit_where(self, audit_table: Table) -> ColumnElement[bool] | None:
        """Audit rows of the entities the person sees; administrative rows (entity types that
        are no workflow's) only for operators and top-jurisdiction auditors."""
        if self.everything:
            return None
        conditions: list[ColumnElement[bool]] = []
        for name, table in ENTITY_TABLES.items():
            condition = self.rows_where(table)
            if condition is not None:
                conditions.append(and_(audit_table.c.entity_type == name,
                                       audit_table.c.entity_id.in_(
                                           select(table.c.id).where(condition))))
        if self.administrative:
            conditions.append(audit_table.c.entity_type.not_in(list(ENTITY_TABLES)))
        return _any(conditions)

    # ---- the pieces ---------------------------------------------------------------------------

    def _enterprises(self) -> Any:
        """Enterprise ids reached through jurisdiction grants (regulators, auditors), or None."""
        reached: list[ColumnElement[bool]] = []
        for grant in self.grants:
            if grant.jurisdiction_id is None:
                continue
            inside = JURISDICTION.c.path.contains(mark(grant.jurisdiction_id))
            industries = department_limit(grant)
            if industries is None:
                reached.append(inside)
            elif industries:
                reached.append(and_(inside, ENTERPRISE.c.industry.in_(sorted(industries))))
        if not reached:
            return None
        return (select(ENTERPRISE.c.id)
                .join(JURISDICTION, JURISDICTION.c.id == ENTERPRISE.c.jurisdiction_id)
                .where(or_(*reached)))

    def _plan_conditions(self, table: Table) -> list[ColumnElement[bool]]:
        """Jurisdiction-scoped rows: the plan's jurisdiction is the grant's or below it, and a
        department-limited regulator's department is the plan's (or the plan names none)."""
        free: list[int] = []
        conditions: list[ColumnElement[bool]] = []
        for grant in self.grants:
            if grant.jurisdiction_id is None:
                continue
            if department_limit(grant) is None:
                free.append(grant.jurisdiction_id)
            else:
                conditions.append(and_(
                    table.c.jurisdiction_id.in_(jurisdictions_below([grant.jurisdiction_id])),
                    or_(table.c.department_id.is_(None),
                        table.c.department_id == grant.department_id)))
        if free:
            conditions.append(table.c.jurisdiction_id.in_(jurisdictions_below(free)))
        return conditions


OPERATOR = Visibility(None, everything=True, read_only=False, administrative=True)
NOBODY = Visibility(None)


def visibility_for(conn: Connection, person_key: str) -> Visibility:
    """What ``person_key`` may see, from their role grants (the engine's own loading of them);
    an unknown person, or an internal actor, sees nothing."""
    try:
        actor = Lookups(conn).actor(person_key)
    except NotFound:
        return NOBODY
    if actor.id is None:  # an internal actor (``system``) is no person
        return NOBODY
    auditing = [g.jurisdiction_id for g in actor.grants
                if g.role == Role.auditor.value and g.jurisdiction_id is not None]
    administrative = bool(auditing) and conn.execute(
        select(exists().where(JURISDICTION.c.id.in_(auditing),
                              JURISDICTION.c.parent_id.is_(None)))).scalar() is True
    acting = any(g.role != Role.auditor.value for g in actor.grants)
    return Visibility(person_key, actor.grants, read_only=not acting,
                      administrative=administrative)


def units_below(unit_ids: Iterable[int]) -> Any:
    """The ids of these units and every unit below them (materialised paths)."""
    return select(UNIT.c.id).where(or_(*(UNIT.c.path.contains(mark(u)) for u in sorted(set(unit_ids)))))


def jurisdictions_below(ids: Iterable[int]) -> Any:
    """The ids of these jurisdictions and every one below them."""
    return select(JURISDICTION.c.id).where(
        or_(*(JURISDICTION.c.path.contains(mark(j)) for j in sorted(set(ids)))))


def _any(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    """Any of the conditions; none = no row (``false()``: a visible WHERE, never "everything")."""
    if not conditions:
        return false()
    return conditions[0] if len(conditions) == 1 else or_(*conditions)
