"""Where a person may report a hazard (and whether they audit): the units in which they hold
one of the report event's roles, decided by the engine's own test (``engine.roles_in_scope``).

The person's grants narrow the candidates in one query (their unit subtrees and jurisdiction
trees); each candidate is then checked as the engine will check the create, so the picker
offers exactly the units a report would be accepted in.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, or_, select

from core.errors import NotFound
from models.enums import Role
from models.tables import ENTERPRISE, JURISDICTION, UNIT
from models.tables import ROLE_GRANT as GRANT
from states import engine
from states.actors import Lookups, mark
from states.registry import WORKFLOWS

MAX_UNITS = 300  # a picker longer than this is no use on a phone


class Unit(NamedTuple):
    key: str
    name: str
    enterprise: str


def units_for(conn: Connection, person: str) -> list[Unit]:
    """The units where ``person`` may report a hazard, in tree order."""
    hazard = WORKFLOWS["hazard"]
    roles = set(hazard.create_event.roles)
    try:
        grants = [g for g in Lookups(conn).actor(person).grants if g.role in roles]
    except NotFound:
        return []
    reach = [UNIT.c.path.contains(mark(g.unit_id)) for g in grants if g.unit_id is not None]
    reach += [JURISDICTION.c.path.contains(mark(g.jurisdiction_id)) for g in grants
              if g.jurisdiction_id is not None]
    if not reach:
        return []
    rows = conn.execute(
        select(UNIT.c.key, UNIT.c.name, ENTERPRISE.c.name)
        .join(ENTERPRISE, ENTERPRISE.c.id == UNIT.c.enterprise_id)
        .join(JURISDICTION, JURISDICTION.c.id == ENTERPRISE.c.jurisdiction_id)
        .where(or_(*reach)).order_by(ENTERPRISE.c.name, UNIT.c.path).limit(MAX_UNITS)).all()
    return [Unit(*row) for row in rows
            if roles & engine.roles_in_scope(conn, hazard, person, {"unit": row[0]})]


def is_auditor(conn: Connection, person_id: int) -> bool:
    """Whether the person holds the auditor role anywhere (the inbox's link to /audit)."""
    found = conn.execute(select(GRANT.c.id).where(GRANT.c.person_id == person_id,
                                                  GRANT.c.role == Role.auditor.value).limit(1)).first()
    return found is not None
