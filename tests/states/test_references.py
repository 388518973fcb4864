"""Integrity of references between entities (issue 10): one open listing per hazard (guard and
database), departments that exist and serve the enterprise, an order's or a listing's hazard in
its own enterprise. Each attack is refused with a zh-CN message and changes nothing."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.errors import GuardFailed, NotFound, PermissionDenied, SafeloopError
from models import Hazard
from models.db import make_engine
from models.tables import LISTING as LISTING_TABLE
from safeloop import orgfile
from states import engine
from states.audit import verify
from states.jobs.replay import replay
from states.workflows.annual_plan import ANNUAL_PLAN
from states.workflows.hazard import HAZARD
from states.workflows.listing import LISTING
from states.workflows.suspension import SUSPENSION
from tests.helpers import is_zh, table_counts
from tests.states.test_listing import T0, _major_rectifying

OTHER_ORG = (
    "jurisdictions:\n  - {id: dt, name: 大同市}\n"
    "departments:\n  - {id: dt-yjj, name: 大同市应急管理局, jurisdiction: dt, industries: [化工]}\n"
    "  - {id: edz-jx, name: 开发区建设局, jurisdiction: xz-edz, industries: [建筑]}\n"
)


def _propose(session: Session, code: str, **extra: Any) -> engine.FireResult:
    return engine.create(session, LISTING, actor="qian.jianguan", as_of=T0,
                         data={"unit": "jinhua-team-tank", "hazard": code, **extra})


def _code(session: Session, hid: int) -> str:
    return str(session.get(Hazard, hid).code)  # type: ignore[union-attr]


def _refused(session: Session, attempt: Any, error: type[SafeloopError], match: str) -> str:
    before = table_counts(session)
    with pytest.raises(error, match=match) as info:
        attempt()
    assert is_zh(info.value.message)
    assert table_counts(session) == before
    return info.value.message


def test_hazard_cannot_be_proposed_twice(org: Session) -> None:
    code = _code(org, _major_rectifying(org))
    first = _propose(org, code, department="edz-yjj")
    message = _refused(org, lambda: _propose(org, code), GuardFailed, "已有未摘牌的挂牌督办")
    assert first.code in message and "拟挂牌" in message
    engine.fire(org, LISTING, first.entity_id, "list", actor="qian.jianguan", as_of=T0,
                data={"deadline": T0 + timedelta(days=90)})
    _refused(org, lambda: _propose(org, code), GuardFailed, "已挂牌督办")
    assert verify(org.connection()).ok and replay(org.connection()).ok


def test_database_refuses_a_second_open_listing(org: Session) -> None:
    """The partial unique index holds even for a writer that skips the engine."""
    code = _code(org, _major_rectifying(org))
    first = _propose(org, code)
    row = dict(org.connection().execute(
        select(LISTING_TABLE).where(LISTING_TABLE.c.id == first.entity_id)).mappings().one())
    org.rollback()
    row.pop("id")
    twin = {**row, "code": "GP-twin"}
    with pytest.raises(IntegrityError):
        org.connection().execute(insert(LISTING_TABLE).values(twin))
    org.rollback()
    # a delisted listing does not count: the index covers open listings only
    org.connection().execute(insert(LISTING_TABLE).values({**twin, "state": "delisted"}))
    org.rollback()


def test_concurrent_proposals_list_a_hazard_once(db_url: str, org: Session) -> None:
    code = _code(org, _major_rectifying(org))
    org.rollback()
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def propose() -> None:
        eng = make_engine(db_url)
        try:
            with Session(eng, expire_on_commit=False) as session:
                barrier.wait(timeout=30)
                try:
                    _propose(session, code)
                    outcomes.append("ok")
                except SafeloopError as exc:
                    outcomes.append(type(exc).__name__)
                except Exception as exc:  # an untyped database error is what this test catches
                    outcomes.append(f"untyped {type(exc).__name__}")
        finally:
            eng.dispose()

    threads = [threading.Thread(target=propose) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sorted(outcomes) == ["GuardFailed", "ok"], outcomes
    count = org.connection().execute(
        select(LISTING_TABLE.c.id).where(LISTING_TABLE.c.hazard_id.is_not(None))).all()
    assert len(count) == 1


def test_unknown_department_is_not_silently_dropped(org: Session) -> None:
    code = _code(org, _major_rectifying(org))
    message = _refused(org, lambda: _propose(org, code, department="nope"), NotFound, "nope")
    assert "监管部门" in message


@pytest.mark.parametrize(("department", "why"), [("dt-yjj", "不管辖"), ("edz-jx", "不负责")])
def test_department_must_serve_the_enterprise(org: Session, tmp_path: Path, department: str,
                                              why: str) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(OTHER_ORG, encoding="utf-8")
    orgfile.load(org, other)
    code = _code(org, _major_rectifying(org))
    _refused(org, lambda: _propose(org, code, department=department), GuardFailed, why)


def test_annual_plan_department_must_exist_and_serve_its_jurisdiction(org: Session,
                                                                      tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(OTHER_ORG, encoding="utf-8")
    orgfile.load(org, other)

    def draft(department: str) -> Any:
        return lambda: engine.create(org, ANNUAL_PLAN, actor="qian.jianguan", as_of=T0, data={
            "jurisdiction": "xz-edz", "year": 2020, "department": department,
            "entries": [{"enterprise": "jinhua", "frequency": 2}]})

    _refused(org, draft("nope"), NotFound, "nope")
    _refused(org, draft("dt-yjj"), PermissionDenied, "其他监管部门")  # not his department


def _xinfeng_hazard(session: Session) -> str:
    hid = engine.create(session, HAZARD, actor="qian.jianguan", as_of=T0, data={
        "unit": "xinfeng-team-weld", "title": "焊接烟尘除尘失效", "category": "thing",
        "grade": "major"}).entity_id
    return _code(session, hid)


def test_order_cannot_name_another_enterprises_hazard(org: Session) -> None:
    foreign = _xinfeng_hazard(org)

    def order(hazard: str) -> Any:
        return lambda: engine.create(org, SUSPENSION, actor="qian.jianguan", as_of=T0, data={
            "unit": "jinhua-group", "reason": "重大隐患未整改", "hazard": hazard})

    _refused(org, order(foreign), GuardFailed, "不属于被责令停产整顿的企业")
    _refused(org, order("YH-999999"), NotFound, "YH-999999")
    own = _code(org, _major_rectifying(org))
    assert order(own)().to_state == "ordered"
    assert verify(org.connection()).ok and replay(org.connection()).ok


def test_listing_cannot_name_another_enterprises_hazard(org: Session) -> None:
    foreign = _xinfeng_hazard(org)
    _refused(org, lambda: _propose(org, foreign), GuardFailed, "不属于挂牌单位所在企业")
