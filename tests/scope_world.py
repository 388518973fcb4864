"""The scope test world, shared by the read-scoping tests of the engine
(tests/states/test_visibility.py) and of the API (tests/api/test_scope_matrix.py): the demo org
plus more people, rows of every workflow in every unit, and ``Plain`` -- who sees what, computed
without the module under test (Python over all rows, prefix tests on paths, the org file's own
roles and departments)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, func, insert, select
from sqlmodel import Session

from models.tables import (
    AUDIT_ENTRY,
    CHECKLIST_TEMPLATE,
    DEPARTMENT,
    ENTERPRISE,
    ENTITY_TABLES,
    INSPECTION_PLAN,
    JURISDICTION,
    UNIT,
)
from safeloop import orgfile
from tests.conftest import DEMO_ORG

# More people than the demo: another industry's department, a comprehensive regulator, a top
# auditor, an enterprise's own auditor, a person with no grant.
EXTRA = {
    "jurisdictions": [{"id": "xz-dx", "name": "东区", "parent": "xz"}],
    "departments": [
        {"id": "edz-jxj", "name": "开发区机械局", "jurisdiction": "xz-edz", "industries": ["工贸"]},
        {"id": "xz-yjj", "name": "市应急管理局", "jurisdiction": "xz", "industries": ["化工"]},
    ],
    "enterprises": [{"id": "dongfang", "name": "东方化工", "industry": "化工", "jurisdiction": "xz-dx",
                     "units": [{"id": "df-plant", "name": "东方厂", "tier": "plant",
                                "units": [{"id": "df-ws", "name": "东方车间", "tier": "workshop"}]}]}],
    "people": [
        {"id": "ma.jixie", "name": "马机械",
         "roles": [{"role": "regulator", "jurisdiction": "xz-edz", "department": "edz-jxj"}]},
        {"id": "liu.zonghe", "name": "刘综合", "roles": [{"role": "regulator", "jurisdiction": "xz"}]},
        {"id": "yang.shiyj", "name": "杨市应急",
         "roles": [{"role": "regulator", "jurisdiction": "xz", "department": "xz-yjj"}]},
        {"id": "gao.shenji", "name": "高审计", "roles": [{"role": "auditor", "jurisdiction": "xz"}]},
        {"id": "tian.neishen", "name": "田内审", "roles": [{"role": "auditor", "unit": "jinhua-plant1"}]},
        {"id": "xu.wuquan", "name": "徐无权", "roles": []},
        {"id": "dong.df", "name": "董东方", "roles": [{"role": "principal", "unit": "df-plant"}]},
    ],
}
MOMENT = datetime(2026, 11, 2, 8, tzinfo=UTC)


def org_document() -> dict[str, Any]:
    document = yaml.safe_load(DEMO_ORG.read_text(encoding="utf-8"))
    for key, more in EXTRA.items():
        document.setdefault(key, []).extend(more)
    return document


def build_world(session: Session, tmp_path: Path) -> dict[str, Any]:
    """The demo org and the extra people, and rows of every workflow in every unit (or every
    jurisdiction x department for annual plans), plus audit rows naming each of them."""
    document = org_document()
    path = tmp_path / "org.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    orgfile.load(session, path)
    conn = session.connection()
    counter = itertools.count(1)
    template = _fill(conn, CHECKLIST_TEMPLATE, counter, {})
    units = conn.execute(select(UNIT.c.id, UNIT.c.enterprise_id)).all()
    plans = {u: _fill(conn, INSPECTION_PLAN, counter, {"unit_id": u, "enterprise_id": e,
                                                         "template_id": template})
             for u, e in units}
    jurisdictions = list(conn.execute(select(JURISDICTION.c.id)).scalars())
    departments = [None, *conn.execute(select(DEPARTMENT.c.id)).scalars()]
    for name, table in ENTITY_TABLES.items():
        if name == "annual_plan":
            for j, d in itertools.product(jurisdictions, departments):
                _fill(conn, table, counter, {"jurisdiction_id": j, "department_id": d})
            continue
        for (u, e), copy in itertools.product(units, range(2)):
            over = {"unit_id": u, "enterprise_id": e}
            if name == "inspection":
                over.update(plan_id=plans[u], template_id=template)
            if name == "listing":  # one listing per hazard: the hazards of the same unit
                hazard = ENTITY_TABLES["hazard"]
                over["hazard_id"] = conn.execute(select(hazard.c.id).where(
                    hazard.c.unit_id == u).order_by(hazard.c.id).offset(copy).limit(1)).scalar()
            _fill(conn, table, counter, over)
    for name, table in ENTITY_TABLES.items():  # audit rows (chain not needed for reading)
        for entity_id in conn.execute(select(table.c.id)).scalars():
            _audit(conn, counter, name, entity_id)
    _audit(conn, counter, "checklist", 0)
    session.commit()
    return document


def _fill(conn: Any, table: Any, counter: Any, over: dict[str, Any]) -> int:
    """Insert one row: every required column a plain value of its type, ``over`` winning."""
    values: dict[str, Any] = {}
    for column in table.c:
        if column.primary_key or column.nullable or column.default is not None or (
                column.server_default is not None):
            continue
        n = next(counter)
        if column.foreign_keys:
            target = next(iter(column.foreign_keys)).column.table
            values[column.name] = conn.execute(select(func.min(target.c.id))).scalar()
        elif isinstance(column.type, DateTime):
            values[column.name] = MOMENT
        elif isinstance(column.type, Date):
            values[column.name] = MOMENT.date()
        elif isinstance(column.type, Boolean):
            values[column.name] = False
        elif isinstance(column.type, Integer | Numeric):
            values[column.name] = n
        elif _python_type(column) is str:
            length = getattr(getattr(column.type, "impl", column.type), "length", None)
            values[column.name] = f"v{n}"[: length or 64]
        else:
            values[column.name] = {}
    values.update(over)
    return int(conn.execute(insert(table).values(values).returning(table.c.id)).scalar_one())


def _python_type(column: Any) -> Any:
    kind = getattr(column.type, "impl", column.type)
    try:
        return kind.python_type
    except NotImplementedError:
        return None


def _audit(conn: Any, counter: Any, entity_type: str, entity_id: int) -> None:
    n = next(counter)
    conn.execute(insert(AUDIT_ENTRY).values(
        seq=10_000_000 + n, entity_type=entity_type, entity_id=entity_id, entity_code=f"c{n}",
        event="e", actor="x", actor_role="x", at="2026-11-02T00:00:00+00:00", data="{}",
        prev_hash="0" * 64, hash=f"{n:064d}"))


class Plain:
    """Who sees what, computed without the module under test: the org file's roles, each unit's
    and jurisdiction's path from the database, prefix tests in Python."""

    def __init__(self, conn: Any, document: dict[str, Any]) -> None:
        self.unit_path = {k: (i, p) for i, k, p in conn.execute(select(UNIT.c.id, UNIT.c.key, UNIT.c.path))}
        self.unit_by_id = {i: p for i, p in self.unit_path.values()}
        self.jur = {k: (i, p, parent) for i, k, p, parent in conn.execute(
            select(JURISDICTION.c.id, JURISDICTION.c.key, JURISDICTION.c.path, JURISDICTION.c.parent_id))}
        self.jur_by_id = {i: p for i, p, _ in self.jur.values()}
        self.dept = {k: i for i, k in conn.execute(select(DEPARTMENT.c.id, DEPARTMENT.c.key))}
        self.industries = {d["id"]: set(d.get("industries") or []) for d in document["departments"]}
        self.enterprise = {i: (industry, self.jur_by_id[j]) for i, industry, j in conn.execute(
            select(ENTERPRISE.c.id, ENTERPRISE.c.industry, ENTERPRISE.c.jurisdiction_id))}
        self.roles = {p["id"]: p.get("roles") or [] for p in document["people"]}

    def sees(self, person: str, name: str, row: Any) -> bool:
        return bool(self.roles_at(person, name, row))

    def roles_at(self, person: str, name: str, row: Any) -> set[str]:
        """The roles of ``person``'s grants that cover ``row`` (seeing it = holding one)."""
        held: set[str] = set()
        for role in self.roles.get(person, []):
            if name == "annual_plan":
                if "jurisdiction" not in role:
                    continue
                if not self.jur_by_id[row.jurisdiction_id].startswith(self.jur[role["jurisdiction"]][1]):
                    continue
                department = role.get("department")
                if role["role"] == "regulator" and department and row.department_id not in (
                        None, self.dept[department]):
                    continue
                held.add(role["role"])
                continue
            if "unit" in role:
                if self.unit_by_id[row.unit_id].startswith(self.unit_path[role["unit"]][1]):
                    held.add(role["role"])
                continue
            industry, jur_path = self.enterprise[row.enterprise_id]
            if not jur_path.startswith(self.jur[role["jurisdiction"]][1]):
                continue
            department = role.get("department")
            if role["role"] == "regulator" and department and industry not in self.industries[department]:
                continue
            held.add(role["role"])
        return held

    def top_auditor(self, person: str) -> bool:
        return any(r["role"] == "auditor" and "jurisdiction" in r and self.jur[r["jurisdiction"]][2] is None
                   for r in self.roles.get(person, []))


PEOPLE = [p["id"] for p in org_document()["people"]] + ["nobody.here", "system"]
