"""The ``dispatch-notifications`` flow as a real Prefect flow run (and through the CLI): the outbox
rows of a hazard's transitions reach a loopback endpoint, the run's report counts them, and a
second run sends nothing again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from core.settings import get_settings
from flows.dispatch_notifications import dispatch_notifications
from flows.registry import FLOWS
from safeloop.cli.main import app
from tests.helpers import NOW, assign, fire, report
from tests.notifications.conftest import Sink, outbox, people_routing, running_sink


@pytest.fixture
def routed_sink(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    monkeypatch.setenv("SAFELOOP_DATABASE_URL", db_url)  # flows read it; never a flow parameter
    with running_sink() as found:
        path = tmp_path / "routing.yaml"
        path.write_text(people_routing(found, "li.anquan", "sun.banzhang"), encoding="utf-8")
        monkeypatch.setenv("SAFELOOP_NOTIFY_ROUTING", str(path))
        monkeypatch.setenv("SAFELOOP_NOTIFY_DIGEST_TIME", "")
        get_settings.cache_clear()
        yield found
    get_settings.cache_clear()


def test_dispatch_flow_sends_the_outbox(org: Session, db_url: str, routed_sink: Sink) -> None:
    hid = report(org).entity_id
    assign(org, hid)
    fire(org, hid, "submit", "sun.banzhang")
    state = dispatch_notifications(as_of=NOW + timedelta(minutes=1), return_state=True)
    assert state.is_completed()
    result = state.result()
    assert result["messages"] == 3 and result["delivered"] == 3 and result["sends_ok"] == 3
    assert len(routed_sink.at("li.anquan")) == 2 and len(routed_sink.at("sun.banzhang")) == 1
    assert {r["status"] for r in outbox(org)} == {"sent"}
    again = dispatch_notifications.fn(as_of=NOW + timedelta(minutes=2))
    assert again["claimed"] == 0 and len(routed_sink.accepted) == 3
    assert FLOWS["dispatch-notifications"].cron == "* * * * *"


def test_dispatch_flow_through_the_cli(org: Session, db_url: str, routed_sink: Sink) -> None:
    assign(org, report(org).entity_id)
    result = CliRunner().invoke(app, ["--db", db_url, "flows", "run", "dispatch-notifications",
                                      "--as-of", "2026-11-02 10:05", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["delivered"] == 2  # stderr says which Prefect server ran it
    assert len(routed_sink.accepted) == 2
