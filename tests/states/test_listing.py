"""Listed supervision (挂牌督办): rules, authorization, working-day clocks across the 2020
holidays, and the coupling with the hazard (no close while listed; delisting closes it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import GuardFailed, PermissionDenied, TransitionNotAllowed
from models import Hazard, Listing
from safeloop import orgfile
from states import engine
from states.audit import verify
from states.jobs.replay import replay
from states.workflows.hazard import HAZARD
from states.workflows.listing import LISTING
from tests.helpers import FULL_PLAN

T0 = datetime(2020, 9, 28, 2, 0, tzinfo=UTC)  # Monday 2020-09-28 10:00 in Shanghai
REPORT = [{"sha256": "b" * 64, "name": "评估报告.pdf", "size": 1024}]


def _major_rectifying(session, at: datetime = T0) -> int:
    hid = engine.create(session, HAZARD, actor="wu.chuyun", as_of=at, data={
        "unit": "jinhua-team-tank", "title": "液氨储罐安全阀失效", "category": "thing",
        "grade": "major"}).entity_id
    engine.fire(session, HAZARD, hid, "assign", actor="li.anquan", as_of=at,
                data={"owner": "wu.chuyun", "deadline": at + timedelta(days=90)})
    engine.fire(session, HAZARD, hid, "approve_plan", actor="wang.zhuren", as_of=at,
                data=FULL_PLAN)
    return hid


def _listed(session, at: datetime = T0) -> tuple[int, int]:
    hid = _major_rectifying(session, at)
    code = session.get(Hazard, hid).code
    lid = engine.create(session, LISTING, actor="qian.jianguan", as_of=at, data={
        "unit": "jinhua-team-tank", "hazard": code, "department": "edz-yjj"}).entity_id
    engine.fire(session, LISTING, lid, "list", actor="qian.jianguan", as_of=at,
                data={"deadline": at + timedelta(days=120)})
    return hid, lid


def test_listing_clocks_count_working_days_across_national_day(org):
    _, lid = _listed(org)
    listing = org.get(Listing, lid)
    # 3 working days after Mon 09-28: 09-29, 09-30, then the holiday 10-01..08, then 10-09
    assert listing.file_due.date().isoformat() == "2020-10-09"  # ends 10-09 24:00 local
    # 5 working days: 09-29, 09-30, 10-09, 10-10 (working Saturday), 10-12
    assert listing.publish_due.date().isoformat() == "2020-10-12"
    assert org.get(Hazard, listing.hazard_id).listing_id == lid


def test_spring_festival_clock(org):
    _, lid = _listed(org, datetime(2020, 1, 17, 2, tzinfo=UTC))  # Friday before 春节
    listing = org.get(Listing, lid)
    # 01-19 (working Sunday), 01-20, then 01-21 → 3 working days
    assert listing.file_due.date().isoformat() == "2020-01-21"


def test_only_regulators_of_the_jurisdiction_list(org, tmp_path: Path):
    hid = _major_rectifying(org)
    code = org.get(Hazard, hid).code
    data = {"unit": "jinhua-team-tank", "hazard": code}
    with pytest.raises(PermissionDenied):
        engine.create(org, LISTING, actor="wang.zhuren", as_of=T0, data=data)
    other = tmp_path / "other.yaml"
    other.write_text(
        "jurisdictions:\n  - {id: dt, name: 大同市}\n"
        "departments:\n  - {id: dt-yjj, name: 大同市应急管理局, jurisdiction: dt, industries: [化工]}\n"
        "  - {id: edz-jx, name: 开发区建设局, jurisdiction: xz-edz, industries: [建筑]}\n"
        "people:\n  - id: zhou.datong\n    name: 周大同\n"
        "    roles: [{role: regulator, jurisdiction: dt, department: dt-yjj}]\n"
        "  - id: lin.jianshe\n    name: 林建设\n"
        "    roles: [{role: regulator, jurisdiction: xz-edz, department: edz-jx}]\n",
        encoding="utf-8")
    orgfile.load(org, other)
    with pytest.raises(PermissionDenied):
        engine.create(org, LISTING, actor="zhou.datong", as_of=T0, data=data)
    with pytest.raises(PermissionDenied, match="不负责「化工」行业"):
        engine.create(org, LISTING, actor="lin.jianshe", as_of=T0, data=data)


def test_general_hazard_cannot_be_listed(org):
    hid = engine.create(org, HAZARD, actor="wu.chuyun", as_of=T0, data={
        "unit": "jinhua-team-tank", "title": "标识缺失", "category": "thing",
        "grade": "general"}).entity_id
    with pytest.raises(GuardFailed, match="只有重大隐患"):
        engine.create(org, LISTING, actor="qian.jianguan", as_of=T0, data={
            "unit": "jinhua-team-tank", "hazard": org.get(Hazard, hid).code})


def test_hazard_cannot_close_until_delisted(org):
    hid, lid = _listed(org)
    later = T0 + timedelta(days=30)
    engine.fire(org, HAZARD, hid, "submit", actor="wu.chuyun", as_of=later)
    with pytest.raises(GuardFailed, match="尚未验收通过"):
        engine.fire(org, LISTING, lid, "request_delisting", actor="wang.zhuren", as_of=later,
                    data={"evaluation": REPORT})
    assert engine.fire(org, HAZARD, hid, "accept", actor="wang.zhuren",
                       as_of=later).to_state == "accepted"
    org.expire_all()
    assert org.get(Hazard, hid).closed_at is None
    with pytest.raises(PermissionDenied):
        engine.fire(org, HAZARD, hid, "close", actor="wang.zhuren", as_of=later)
    engine.fire(org, LISTING, lid, "request_delisting", actor="wang.zhuren", as_of=later,
                data={"evaluation": REPORT})
    with pytest.raises(PermissionDenied):  # enterprise people cannot delist
        engine.fire(org, LISTING, lid, "delist", actor="wang.zhuren", as_of=later)
    with pytest.raises(TransitionNotAllowed):
        engine.fire(org, LISTING, lid, "report_progress", actor="wang.zhuren", as_of=later,
                    data={"progress": "x"})
    result = engine.fire(org, LISTING, lid, "delist", actor="qian.jianguan", as_of=later)
    assert result.to_state == "delisted"
    org.expire_all()
    hazard = org.get(Hazard, hid)
    assert hazard.state == "closed" and hazard.closed_at is not None
    assert verify(org.connection()).ok and replay(org.connection()).ok


def test_extension_must_be_asked_20_working_days_ahead(org):
    _, lid = _listed(org)
    deadline = T0 + timedelta(days=120)
    late = deadline - timedelta(days=20)  # fewer than 20 working days left
    with pytest.raises(GuardFailed, match="至少 20 个工作日"):
        engine.fire(org, LISTING, lid, "request_extension", actor="wang.zhuren", as_of=late,
                    comment="设备到货延迟", data={"deadline": deadline + timedelta(days=30)})
    engine.fire(org, LISTING, lid, "request_extension", actor="wang.zhuren", as_of=T0,
                comment="设备到货延迟", data={"deadline": deadline + timedelta(days=30)})
    listing = org.get(Listing, lid)
    assert listing.extension_due is not None
    engine.fire(org, LISTING, lid, "decide_extension", actor="qian.jianguan", as_of=T0,
                data={"approve": True})
    org.expire_all()
    listing = org.get(Listing, lid)
    assert listing.extension_due is None
    assert listing.deadline.date() == (deadline + timedelta(days=30)).date()


def test_escalation_and_duty_overdue_once(org):
    _, lid = _listed(org)
    engine.fire(org, LISTING, lid, "escalate", actor="qian.jianguan", as_of=T0, data={"level": 1})
    with pytest.raises(GuardFailed, match="不能重复"):
        engine.fire(org, LISTING, lid, "escalate", actor="system", as_of=T0, data={"level": 1})
    with pytest.raises(GuardFailed, match="尚未逾期"):
        engine.fire(org, LISTING, lid, "duty_overdue", actor="system", as_of=T0,
                    data={"duty": "file"})
    after = datetime(2020, 10, 10, 2, tzinfo=UTC)
    engine.fire(org, LISTING, lid, "duty_overdue", actor="system", as_of=after,
                data={"duty": "file"})
    with pytest.raises(GuardFailed, match="已完成或已记录逾期"):
        engine.fire(org, LISTING, lid, "duty_overdue", actor="system", as_of=after,
                    data={"duty": "file"})
