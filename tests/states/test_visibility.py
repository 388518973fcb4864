"""Read scoping: for every person of the demo org (and a few more), every workflow's ``where()``
against an independent computation written plainly here (Python over all rows, prefix tests on
paths, the org file's own roles and departments), plus the audit trail, the edge cases, and a
check that whoever may act on a row also sees it."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Boolean, Date, DateTime, Integer, Numeric, func, insert, select
from sqlmodel import Session

from core.errors import PermissionDenied
from models.tables import (
    AUDIT_ENTRY,
    CHECKLIST_TEMPLATE,
    DEPARTMENT,
    ENTERPRISE,
    ENTITY_TABLES,
    INSPECTION_PLAN,
    JURISDICTION,
    PERSON,
    UNIT,
)
from safeloop import orgfile
from states import engine
from states.actors import Lookups
from states.registry import WORKFLOWS
from states.rows import loaders
from states.visibility import OPERATOR, visibility_for
from tests.conftest import DEMO_ORG
from tests.helpers import report

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


@pytest.fixture
def world(session: Session, tmp_path: Path) -> dict[str, Any]:
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


# ---- the independent computation ---------------------------------------------------------------


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
                return True
            if "unit" in role:
                if self.unit_by_id[row.unit_id].startswith(self.unit_path[role["unit"]][1]):
                    return True
                continue
            industry, jur_path = self.enterprise[row.enterprise_id]
            if not jur_path.startswith(self.jur[role["jurisdiction"]][1]):
                continue
            department = role.get("department")
            if role["role"] == "regulator" and department and industry not in self.industries[department]:
                continue
            return True
        return False

    def top_auditor(self, person: str) -> bool:
        return any(r["role"] == "auditor" and "jurisdiction" in r and self.jur[r["jurisdiction"]][2] is None
                   for r in self.roles.get(person, []))


PEOPLE = [p["id"] for p in org_document()["people"]] + ["nobody.here", "system"]


def _visible(conn: Any, table: Any, condition: Any) -> set[int]:
    stmt = select(table.c.id)
    if condition is not None:
        stmt = stmt.where(condition)
    return set(conn.execute(stmt).scalars())


def test_scope_matrix(world: dict[str, Any], session: Session) -> None:
    conn = session.connection()
    plain = Plain(conn, world)
    seen_any = 0
    for person in PEOPLE:
        vis = visibility_for(conn, person)
        for name, workflow in WORKFLOWS.items():
            rows = conn.execute(select(workflow.table)).all()
            expected = {r.id for r in rows if plain.sees(person, name, r)}
            assert _visible(conn, workflow.table, vis.where(workflow)) == expected, (person, name)
            seen_any += len(expected)
        # the audit trail: rows of the entities seen, and administrative rows for top auditors
        audit = conn.execute(select(AUDIT_ENTRY.c.seq, AUDIT_ENTRY.c.entity_type,
                                    AUDIT_ENTRY.c.entity_id)).all()
        visible = {name: _visible(conn, wf.table, vis.where(wf)) for name, wf in WORKFLOWS.items()}
        expected_audit = {seq for seq, kind, eid in audit
                          if (kind in visible and eid in visible[kind])
                          or (kind not in ENTITY_TABLES and plain.top_auditor(person))}
        got = set(conn.execute(select(AUDIT_ENTRY.c.seq).where(
            vis.audit_where(AUDIT_ENTRY))).scalars())
        assert got == expected_audit, person
    assert seen_any > 0
    # the matrix is not trivially empty or full: a few people's hazard counts by hand
    hazard = WORKFLOWS["hazard"]
    counts = {p: len(_visible(conn, hazard.table, visibility_for(conn, p).where(hazard)))
              for p in ("wang.zhuren", "zhao.chejian", "sun.banzhang", "zheng.changzhang",
                        "qian.jianguan", "ma.jixie", "yang.shiyj", "gao.shenji", "xu.wuquan")}
    # two hazards per unit: jinhua has 7 units, xinfeng 3, dongfang 2
    assert counts == {"wang.zhuren": 14, "zhao.chejian": 6, "sun.banzhang": 2,
                      "zheng.changzhang": 6, "qian.jianguan": 20, "ma.jixie": 6,
                      "yang.shiyj": 18, "gao.shenji": 24, "xu.wuquan": 0}
    assert set(WORKFLOWS) == set(ENTITY_TABLES)
    for name, workflow in WORKFLOWS.items():  # audit_where infers each table's scope the same way
        assert (workflow.scope == "unit") == ("unit_id" in ENTITY_TABLES[name].c), name


def test_sees_and_operator(world: dict[str, Any], session: Session) -> None:
    conn = session.connection()
    hazard = WORKFLOWS["hazard"]
    jinhua = select(ENTERPRISE.c.id).where(ENTERPRISE.c.key == "jinhua").scalar_subquery()
    inside = conn.execute(select(hazard.table.c.id).where(
        hazard.table.c.enterprise_id == jinhua)).scalars().first()
    assert inside is not None
    assert visibility_for(conn, "wang.zhuren").sees(conn, hazard, inside)
    assert not visibility_for(conn, "zheng.changzhang").sees(conn, hazard, inside)  # enterprise B
    assert not visibility_for(conn, "ma.jixie").sees(conn, hazard, inside)  # another industry
    assert visibility_for(conn, "qian.jianguan").sees(conn, hazard, inside)
    for nobody in ("xu.wuquan", "nobody.here", "system"):
        vis = visibility_for(conn, nobody)
        assert not vis.sees(conn, hazard, inside) and vis.read_only
        for workflow in WORKFLOWS.values():
            assert _visible(conn, workflow.table, vis.where(workflow)) == set()
        assert not conn.execute(select(AUDIT_ENTRY.c.seq).where(vis.audit_where(AUDIT_ENTRY))).first()
    total = conn.execute(select(func.count()).select_from(hazard.table)).scalar_one()
    assert OPERATOR.where(hazard) is None and OPERATOR.audit_where(AUDIT_ENTRY) is None
    assert len(_visible(conn, hazard.table, None)) == total


def test_other_industry_regulator_sees_nothing_of_a_chemical_enterprise(
        world: dict[str, Any], session: Session) -> None:
    conn = session.connection()
    chemical = set(conn.execute(select(ENTERPRISE.c.id).where(ENTERPRISE.c.industry == "化工")).scalars())
    vis = visibility_for(conn, "ma.jixie")
    for name, workflow in WORKFLOWS.items():
        if workflow.scope != "unit":
            continue
        seen = conn.execute(select(workflow.table.c.enterprise_id).where(vis.where(workflow))).scalars()
        assert not chemical & set(seen), name
    assert not vis.read_only


def test_auditor_reads_the_trail_of_their_jurisdiction_but_cannot_fire(org: Session) -> None:
    session = org
    code = report(session).code
    conn = session.connection()
    vis = visibility_for(conn, "he.shenji")
    assert vis.read_only
    trail = conn.execute(select(AUDIT_ENTRY.c.entity_code).where(
        vis.audit_where(AUDIT_ENTRY))).scalars().all()
    assert code in trail and "demo_org.yaml" not in trail  # not a top auditor: no org loads
    with pytest.raises(PermissionDenied):
        engine.fire(session, WORKFLOWS["hazard"], code, "cancel", actor="he.shenji", comment="x")


def test_whoever_may_act_also_sees(world: dict[str, Any], session: Session) -> None:
    """The engine's role check and the read scope come from the same rule: every (person, row)
    where the person holds a role is a row they see."""
    conn = session.connection()
    lookups = Lookups(conn)
    for name, workflow in WORKFLOWS.items():
        base, _, _ = loaders(workflow.table, False)
        rows = [dict(r) for r in conn.execute(base).mappings()]
        for person in PEOPLE:
            if person in ("nobody.here", "system"):
                continue
            actor = lookups.actor(person)
            acting = {r["id"] for r in rows if actor.roles_at(r)}
            seen = _visible(conn, workflow.table, visibility_for(conn, person).where(workflow))
            assert acting <= seen, (person, name)
            if not any(g.role == "auditor" for g in actor.grants):
                assert acting == seen, (person, name)


def test_person_table_has_everyone(world: dict[str, Any], session: Session) -> None:
    keys = set(session.connection().execute(select(PERSON.c.key)).scalars())
    assert {p for p in PEOPLE if p not in ("nobody.here", "system")} <= keys
    assert date(2026, 1, 1)  # the types imported for the filler stay used
