"""End to end on SQLite and PostgreSQL: transitions write outbox rows, the dispatcher sends each
to each of its channels on real loopback endpoints, records every channel's result, retries with
backoff, gives up (and alerts the auditors) after N tries, and never sends a delivered message
twice; due-soon reminders collapse into one digest per person and day."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import make_engine
from notifications import store
from notifications.dispatch import DispatchConfig, delivery_key
from safeloop import checklists, orgfile, plans
from states import audit
from states.jobs import checkpoint
from states.jobs.materialize import materialize
from states.jobs.sweep import sweep
from states.workflows.hazard import HAZARD
from tests.helpers import NOW, assign, fire, report
from tests.notifications.conftest import (
    DEMO_PEOPLE,
    TIMEOUT,
    Mailbox,
    Sink,
    deliveries,
    dispatcher,
    outbox,
    people_routing,
    text_of,
)

LATER = NOW + timedelta(minutes=5)


def everyone(sink: Sink, extra: str = "") -> str:
    return people_routing(sink, *DEMO_PEOPLE, extra=extra)


def test_closed_loop_reaches_the_right_people(org: Session, engine: Engine, sink: Sink) -> None:
    hid = report(org).entity_id  # -> safety officers covering the team: li.anquan
    assign(org, hid)  # -> owner sun.banzhang
    fire(org, hid, "submit", "sun.banzhang", data={"measures": "已更换压力表"})  # -> acceptor
    fire(org, hid, "reject", "li.anquan", comment="密封件未更换")  # -> owner
    result = dispatcher(engine, everyone(sink)).run(LATER)
    assert result.messages == 4 and result.delivered == 4 and result.sends_failed == 0

    # sends run concurrently: one person's messages of one batch may arrive in any order
    to_li = sorted(map(text_of, sink.at("li.anquan")), key=lambda t: "待验收" in t)
    to_sun = sorted(map(text_of, sink.at("sun.banzhang")), key=lambda t: "验收不通过" in t)
    assert len(to_li) == 2 and len(to_sun) == 2 and len(sink.accepted) == 4
    report_msg, submit_msg = to_li
    assert "新隐患待分派" in report_msg and "YH-000001" in report_msg
    assert "safeloop hazard fire YH-000001 assign --as li.anquan" in report_msg
    assert "待验收" in submit_msg and "已更换压力表" in submit_msg
    assert "safeloop hazard fire YH-000001 accept --as li.anquan" in submit_msg
    assign_msg, reject_msg = to_sun
    assert "整改期限：2026-11-09 10:00" in assign_msg  # 02:00 UTC deadline, local time shown
    assert "safeloop hazard fire YH-000001 submit --as sun.banzhang" in assign_msg
    assert "验收不通过" in reject_msg and "密封件未更换" in reject_msg

    rows = outbox(org)
    assert [r["status"] for r in rows] == ["sent"] * 4
    assert all(r["sent_at"] is not None and r["lease_owner"] is None for r in rows)
    sent = deliveries(org)
    assert len(sent) == 4 and {d["status"] for d in sent} == {"sent"}
    assert {d["key"] for d in sent} == {
        delivery_key(f"outbox:{r['id']}", sink.url(p)) for r, p in zip(
            rows, ["li.anquan", "sun.banzhang", "li.anquan", "sun.banzhang"], strict=True)}

    again = dispatcher(engine, everyone(sink)).run(LATER + timedelta(hours=1))
    assert again.claimed == 0 and len(sink.accepted) == 4


def test_escalation_levels_missed_inspection_and_checkpoint(org: Session, engine: Engine,
                                                            sink: Sink, tmp_path: Path) -> None:
    hid = report(org).entity_id
    assign(org, hid)
    for level in (1, 2, 3):
        fire(org, hid, "escalate", "system", data={"level": level},
             as_of=NOW + timedelta(days=8 + level))
    checklists.load_shipped(org)
    plans.add(org, plans.PlanSpec(key="team-a-daily", unit="jinhua-team-a",
                                  active_from=date(2026, 11, 1)))
    materialize(org, as_of=datetime(2026, 11, 2, 0, 0, tzinfo=UTC))
    sweep(org, as_of=datetime(2026, 11, 3, 1, 0, tzinfo=UTC))  # the day is over: missed
    point = checkpoint.take(org, as_of=NOW + timedelta(days=20))
    sink_rules = everyone(sink)
    dispatcher(engine, sink_rules).run(NOW + timedelta(days=21))

    def texts(person: str, word: str) -> list[str]:
        return [t for t in map(text_of, sink.at(person)) if word in t]

    assert len(texts("zhao.chejian", "逾期升级·单位负责人")) == 1  # level 1: unit head
    assert len(texts("wang.zhuren", "逾期升级·主要负责人")) == 1  # level 2: principal
    assert len(texts("qian.jianguan", "逾期升级·监管部门")) == 1  # level 3: regulator
    assert len(texts("sun.banzhang", "逾期升级")) == 3  # the owner hears every level
    assert "升级到第 3 级" in texts("qian.jianguan", "逾期升级")[0]
    [missed] = texts("zhao.chejian", "【漏检】")  # unit head of the team's workshop
    assert "team-a-daily/2026-11-02" in missed and "2026-11-02 23:59" in missed
    [audit_msg] = texts("he.shenji", "审计检查点")
    assert point.hash in audit_msg and "safeloop audit verify" in audit_msg
    assert {r["status"] for r in outbox(org)} == {"sent"}


def test_channels_from_org_file_routing_units_roles_and_email(
        org: Session, engine: Engine, sink: Sink, smtp: Mailbox, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    own = tmp_path / "own.yaml"
    own.write_text(f"""\
jurisdictions: [{{id: xz, name: 忻州市}}]
people:
  - id: sun.banzhang
    name: 孙班长
    email: sun@jinhua.example.com
    channels: ["{sink.url('own-sun')}"]
    roles:
      - {{role: inspector, unit: jinhua-team-a}}
      - {{role: rectifier, unit: jinhua-team-a}}
""", encoding="utf-8")
    orgfile.load(org, own)
    monkeypatch.setenv("TEST_PLANT_BOT", "plantbot")
    text = f"""\
email: "mailto://safeloop@127.0.0.1:{smtp.port}?to={{email}}&from=safeloop@example.com&mode=insecure"
units:
  jinhua-plant1:
    - url: "{sink.url('plant-${TEST_PLANT_BOT}')}"
      roles: [safety_officer]
roles:
  safety_officer: ["{sink.url('all-safety')}"]
"""
    hid = report(org).entity_id  # role:safety_officer@unit:team-a
    assign(org, hid)  # person:sun
    dispatcher(engine, text).run(LATER)
    assert [text_of(r) for r in sink.at("own-sun")][0].count("整改任务") == 1
    assert len(sink.at("plant-plantbot")) == 1 and len(sink.at("all-safety")) == 1
    to = sorted(str(m["To"]) for m in smtp.messages)  # li.anquan's e-mail is in the demo org
    assert len(to) == 2 and "sun@jinhua.example.com" in to[1] and "li@jinhua.example" in to[0]
    rows = deliveries(org)
    assert any(d["channel"] == sink.url("plant-${TEST_PLANT_BOT}") for d in rows)
    assert not any("plantbot" in d["channel"] for d in rows)  # the secret is not stored


def test_failures_retry_with_backoff_then_deliver_exactly_once(
        org: Session, engine: Engine, sink: Sink) -> None:
    """Half the sends fail (500, or held past the client's timeout); every message still arrives
    exactly once, and the transitions were committed whatever the endpoint did."""
    sink.hold_s = 1.2
    flip = Counter[str]()

    def flaky(path: str, body: object, n: int) -> int | str:
        flip[path] += 1  # every other request to a person fails: 500, then a timeout, ...
        k = flip[path]
        if k % 2:
            return 500 if (k // 2) % 2 == 0 else TIMEOUT
        return 200

    sink.behaviour = flaky
    config = DispatchConfig(max_attempts=10, backoff_s=1.0, backoff_max_s=4.0, concurrency=8,
                            batch_size=7, timeout_s=0.6, lease_s=60, digest_time=None,
                            run_budget_s=None)
    rules = everyone(sink)
    ids = []
    for _ in range(6):
        hid = report(org).entity_id
        assign(org, hid)
        ids.append(hid)
    moment = LATER
    for rnd in range(12):
        dispatcher(engine, rules, config).run(moment)
        if rnd < 3:  # the workflow goes on while notifications fail
            fire(org, ids[rnd], "submit", "sun.banzhang", as_of=NOW + timedelta(hours=rnd + 1))
        moment += timedelta(seconds=10)
        if all(r["status"] == "sent" for r in outbox(org)):
            break
    rows = outbox(org)
    assert rows and {r["status"] for r in rows} == {"sent"}, Counter(r["status"] for r in rows)
    assert max(r["attempts"] for r in rows) >= 2  # there were failures to retry
    sent_keys = Counter((r.path, _code_event(r)) for r in sink.accepted)
    assert len(sent_keys) == len(rows) and set(sent_keys.values()) == {1}
    assert {r.status for r in sink.received} >= {200, 500, 504}
    with Session(engine) as s:
        states = {hid: s.connection().execute(
            HAZARD.table.select().where(HAZARD.table.c.id == hid)).mappings().one()["state"]
            for hid in ids}
        verified = audit.verify(s.connection())
    assert [states[h] for h in ids] == ["pending_acceptance"] * 3 + ["rectifying"] * 3
    assert verified.ok
    failed = [d for d in deliveries(org) if d["attempts"] > 1]
    assert failed and all(d["status"] == "sent" for d in failed)


def _code_event(request: object) -> str:
    text = text_of(request)  # type: ignore[arg-type]
    return text.split("\n", 1)[0]


def test_dead_after_max_attempts_alerts_auditors_and_retry_requeues(
        org: Session, engine: Engine, sink: Sink) -> None:
    sink.behaviour = lambda path, body, n: 500 if path == "sun.banzhang" else 200
    config = DispatchConfig(max_attempts=3, backoff_s=1.0, backoff_max_s=4.0, concurrency=4,
                            timeout_s=2, digest_time=None, run_budget_s=None)
    hid = report(org).entity_id
    assign(org, hid)
    moment = LATER
    for _ in range(3):
        dispatcher(engine, everyone(sink), config).run(moment)
        moment += timedelta(seconds=10)
    rows = {r["template"]: r for r in outbox(org)}
    dead = rows["hazard.assign"]
    assert dead["status"] == "dead" and dead["attempts"] == 3 and "500" in dead["last_error"]
    alert = rows["notify.dead"]
    assert alert["recipient"] == "role:auditor" and alert["status"] == "sent"
    [alert_msg] = [text_of(r) for r in sink.at("he.shenji")]
    assert f"safeloop outbox retry {dead['id']}" in alert_msg and "hazard.assign" in alert_msg
    assert len(sink.received) == 1 + 3 + 1  # report, three tries, the alert

    sink.behaviour = lambda path, body, n: 200
    with engine.connect() as conn:
        assert store.requeue(conn, [dead["id"]], None) == 1
    dispatcher(engine, everyone(sink), config).run(moment)
    assert {r["status"] for r in outbox(org)} == {"sent"}
    assert len(sink.at("sun.banzhang")) == 1


def test_unrouted_messages_are_kept_and_reported(org: Session, engine: Engine,
                                                 sink: Sink) -> None:
    hid = report(org).entity_id
    assign(org, hid)
    only_auditor = people_routing(sink, "he.shenji")
    result = dispatcher(engine, only_auditor).run(LATER)
    assert result.unrouted == 2 and result.alerts == 1
    statuses = {r["template"]: r["status"] for r in outbox(org)}
    assert statuses == {"hazard.report": "unrouted", "hazard.assign": "unrouted",
                        "notify.unrouted": "sent"}  # the alert went out in the same run
    [alert_msg] = map(text_of, sink.at("he.shenji"))
    assert "2 条消息没有可用的接收渠道" in alert_msg and "hazard.assign" in alert_msg


def test_disabled_rule_and_tags(org: Session, engine: Engine, sink: Sink) -> None:
    text = f"""\
people:
  sun.banzhang:
    - {{url: "{sink.url('sun-im')}", tags: [im]}}
    - {{url: "{sink.url('sun-mail')}", tags: [mail]}}
  li.anquan: ["{sink.url('li')}"]
rules:
  hazard.report: {{enabled: false}}
  hazard.assign: {{tags: [im], also: ["person:wang.zhuren"]}}
"""
    text = text.replace("people:\n", "people:\n  wang.zhuren: [" + sink.url("wang") + "]\n")
    hid = report(org).entity_id
    assign(org, hid)
    result = dispatcher(engine, text).run(LATER)
    assert result.skipped == 1
    assert len(sink.at("sun-im")) == 1 and sink.at("sun-mail") == []
    assert sink.at("li") == [] and sink.at("wang") == []  # wang's channel has no "im" tag
    assert {r["status"] for r in outbox(org)} == {"sent", "skipped"}


# ---- digests ---------------------------------------------------------------------------------


def _due_soon_hazards(org: Session, count: int, *, reminded_at: datetime) -> list[str]:
    codes = []
    for k in range(count):
        hid = report(org).entity_id
        fire(org, hid, "assign", "li.anquan",
             data={"owner": "sun.banzhang", "deadline": reminded_at + timedelta(hours=10 + k)})
        fire(org, hid, "remind_due", "system", as_of=reminded_at)
        codes.append(f"YH-{hid:06d}")
    return codes


def reminders(sink: Sink) -> list[str]:
    """What sun.banzhang got about due dates (the assignments before them are not counted)."""
    return [t for t in map(text_of, sink.at("sun.banzhang")) if "到期" in t.split("\n", 1)[0]]


def test_due_soon_reminders_collapse_into_one_digest_at_the_digest_hour(
        org: Session, engine: Engine, sink: Sink) -> None:
    early = datetime(2026, 11, 2, 22, 15, tzinfo=UTC)  # 06:15 on the 3rd in Asia/Shanghai
    codes = _due_soon_hazards(org, 5, reminded_at=early)
    config = DispatchConfig(digest_time="08:00", concurrency=4, run_budget_s=None)
    rules = people_routing(sink, "sun.banzhang")
    held = dispatcher(engine, rules, config).run(early + timedelta(minutes=1))
    assert held.held == 5 and reminders(sink) == []
    more = _due_soon_hazards(org, 2, reminded_at=early + timedelta(minutes=30))
    still = dispatcher(engine, rules, config).run(early + timedelta(hours=1))
    assert still.held == 2 and reminders(sink) == []
    at_eight = datetime(2026, 11, 3, 0, 0, 30, tzinfo=UTC)
    result = dispatcher(engine, rules, config).run(at_eight)
    assert result.digests == 1 and result.messages == 1
    [digest] = reminders(sink)
    assert "2026-11-03 您有 7 条隐患即将到期" in digest
    assert all(code in digest for code in codes + more)
    rows = [r for r in outbox(org) if r["template"] == "hazard.remind_due"]
    assert {r["status"] for r in rows} == {"sent"}
    assert len({r["digest_of"] for r in rows}) == 1
    [sent] = [d for d in deliveries(org) if d["covers"]]
    assert json.loads(sent["covers"]) == sorted(r["id"] for r in rows)


def test_a_failed_digest_is_resent_whole_not_regrouped(org: Session, engine: Engine,
                                                       sink: Sink) -> None:
    failed: list[str] = []

    def first_digest_fails(path: str, body: object, n: int) -> int:
        if "到期提醒汇总" in str(body.get("title")) and not failed:  # type: ignore[attr-defined]
            failed.append(path)
            return 500
        return 200

    sink.behaviour = first_digest_fails
    config = DispatchConfig(digest_time=None, backoff_s=1, concurrency=4, run_budget_s=None)
    rules = people_routing(sink, "sun.banzhang")
    at = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    first = _due_soon_hazards(org, 3, reminded_at=at)
    dispatcher(engine, rules, config).run(at)
    later = _due_soon_hazards(org, 2, reminded_at=at + timedelta(minutes=1))
    dispatcher(engine, rules, config).run(at + timedelta(minutes=2))
    texts = reminders(sink)
    assert len(texts) == 2  # the first digest again (3 items) and a new one (2 items)
    whole = [t for t in texts if all(c in t for c in first)]
    assert len(whole) == 1 and not any(c in whole[0] for c in later)
    assert any(all(c in t for c in later) and "您有 2 条" in t for t in texts)
    assert failed and max(d["attempts"] for d in deliveries(org)) == 2


def test_a_single_reminder_goes_out_as_itself(org: Session, engine: Engine, sink: Sink) -> None:
    at = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)
    [code] = _due_soon_hazards(org, 1, reminded_at=at)
    dispatcher(engine, people_routing(sink, "sun.banzhang")).run(at)
    [text] = reminders(sink)
    assert "【即将到期】" in text and code in text


# ---- two dispatchers -------------------------------------------------------------------------


def test_two_dispatchers_at_once_send_each_message_once(org: Session, db_url: str,
                                                        sink: Sink) -> None:
    sink.delay_s = 0.005
    for _ in range(30):
        hid = report(org).entity_id
        assign(org, hid)
    rules = everyone(sink)
    config = DispatchConfig(batch_size=5, concurrency=4, digest_time=None, run_budget_s=None)
    engines = [make_engine(db_url) for _ in range(2)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def run(eng: Engine, name: str) -> None:
        try:
            barrier.wait(timeout=30)
            dispatcher(eng, rules, config, owner=name).run(LATER)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e, f"d{i}")) for i, e in enumerate(engines)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    for eng in engines:
        eng.dispose()
    assert not errors, errors
    rows = outbox(org)
    assert len(rows) == 60 and {r["status"] for r in rows} == {"sent"}
    heard = Counter((r.path, _code_event(r)) for r in sink.accepted)
    assert len(heard) == 60 and set(heard.values()) == {1}


def test_missing_secret_fails_the_channel_not_the_run(org: Session, engine: Engine,
                                                      sink: Sink,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SUN_PATH", "sun-secret")
    rules = f"people:\n  sun.banzhang: ['{sink.url('${TEST_SUN_PATH}')}']\n"
    d = dispatcher(engine, rules)  # checked at load: the variable is set
    monkeypatch.delenv("TEST_SUN_PATH")
    hid = report(org).entity_id
    assign(org, hid)
    result = d.run(LATER)
    assert result.sends_failed == 1
    [row] = [r for r in outbox(org) if r["template"] == "hazard.assign"]
    assert row["status"] == "pending" and "TEST_SUN_PATH" in row["last_error"]
    monkeypatch.setenv("TEST_SUN_PATH", "sun-secret")
    d.run(LATER + timedelta(minutes=1))
    assert len(sink.at("sun-secret")) == 1


def test_listing_reaches_principal_and_regulator(org: Session, engine: Engine,
                                                             sink: Sink) -> None:
    from states import engine as workflow_engine
    from states.workflows.listing import LISTING
    from tests.helpers import FULL_PLAN

    at = datetime(2020, 9, 28, 2, 0, tzinfo=UTC)
    hid = workflow_engine.create(org, HAZARD, actor="wu.chuyun", as_of=at, data={
        "unit": "jinhua-team-tank", "title": "液氨储罐安全阀失效", "category": "thing",
        "grade": "major"}).entity_id
    workflow_engine.fire(org, HAZARD, hid, "assign", actor="li.anquan", as_of=at,
                         data={"owner": "wu.chuyun", "deadline": at + timedelta(days=90)})
    workflow_engine.fire(org, HAZARD, hid, "approve_plan", actor="wang.zhuren", as_of=at,
                         data=FULL_PLAN)
    lid = workflow_engine.create(org, LISTING, actor="qian.jianguan", as_of=at, data={
        "unit": "jinhua-team-tank", "hazard": f"YH-{hid:06d}", "department": "edz-yjj"}).entity_id
    workflow_engine.fire(org, LISTING, lid, "list", actor="qian.jianguan", as_of=at,
                         data={"deadline": at + timedelta(days=120)})
    dispatcher(engine, everyone(sink)).run(at + timedelta(minutes=1))
    for person in ("wang.zhuren", "qian.jianguan"):
        [listed] = [t for t in map(text_of, sink.at(person)) if "已被挂牌督办" in t]
        assert "山西晋华化工集团有限公司" in listed and "2021-01-26 10:00" in listed
    assert {r["status"] for r in outbox(org)} == {"sent"}
