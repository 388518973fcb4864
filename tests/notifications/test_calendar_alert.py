"""The calendar's coverage alert reaches the auditors and the routing file's alert channels (the
administrators), rendered in zh-CN with what stops when coverage ends."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.calendar import WorkCalendar
from states.jobs import calendar_watch
from tests.notifications.conftest import Sink, dispatcher, outbox, people_routing, text_of


def test_coverage_alert_goes_to_auditors_and_alert_channels(org: Session, engine: Engine,
                                                            sink: Sink) -> None:
    moment = datetime(2026, 12, 1, 1, tzinfo=UTC)
    seq = calendar_watch.alert(org, calendar=WorkCalendar(), zone="Asia/Shanghai", as_of=moment)
    assert seq is not None
    routing = people_routing(sink, "he.shenji", "li.anquan", extra=f"alerts: [{sink.url('ops')}]\n")
    result = dispatcher(engine, routing).run(moment)
    assert result.delivered == 1
    [to_auditor] = map(text_of, sink.at("he.shenji"))
    [to_ops] = map(text_of, sink.at("ops"))
    assert to_auditor == to_ops
    assert "节假日安排 31 天后用完" in to_auditor and "2027-01-01" in to_auditor
    assert "safeloop calendar load" in to_auditor
    assert sink.at("li.anquan") == []  # not a safety officer's business
    [row] = outbox(org)
    assert row["status"] == "sent" and row["audit_seq"] == seq
