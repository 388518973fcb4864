"""Read scoping: for every person of the demo org (and a few more), every workflow's ``where()``
against an independent computation written plainly here (Python over all rows, prefix tests on
paths, the org file's own roles and departments), plus the audit trail, the edge cases, and a
check that whoever may act on a row also sees it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from core.errors import PermissionDenied
from models.tables import AUDIT_ENTRY, ENTERPRISE, ENTITY_TABLES, PERSON
from states import engine
from states.actors import Lookups
from states.registry import WORKFLOWS
from states.rows import loaders
from states.visibility import OPERATOR, visibility_for
from tests.helpers import report
from tests.scope_world import PEOPLE, Plain, build_world


@pytest.fixture
def world(session: Session, tmp_path: Path) -> dict[str, Any]:
    """The demo org and the extra people, and rows of every workflow in every unit (or every
    jurisdiction x department for annual plans), plus audit rows naming each of them."""
    return build_world(session, tmp_path)


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
