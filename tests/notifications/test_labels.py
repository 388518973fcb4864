"""The outbox payload carries the labels the templates need, so notifications/ imports nothing
from states/; rows queued before payloads carried them still render."""

from __future__ import annotations

import ast
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

import notifications
from models.tables import ENTITY_TABLES
from models.tables import OUTBOX as OUT
from states.registry import WORKFLOWS
from states.workflows.listing import LISTING
from tests.helpers import NOW, assign, fire, report
from tests.notifications.conftest import (
    DEMO_PEOPLE,
    Sink,
    dispatcher,
    outbox,
    people_routing,
    text_of,
)

LATER = NOW + timedelta(days=10, minutes=5)
LABELS = ("entity_label", "level_label")


def _escalated_hazard(org: Session) -> None:
    hid = report(org).entity_id
    assign(org, hid)
    fire(org, hid, "escalate", "system", data={"level": 2}, as_of=NOW + timedelta(days=10))


def _without_labels(row: dict[str, Any]) -> dict[str, Any]:
    payload = {k: v for k, v in json.loads(row["payload"]).items() if k not in LABELS}
    return dict(row, payload=json.dumps(payload, ensure_ascii=False))


def test_notifications_import_nothing_from_states() -> None:
    for path in sorted(Path(notifications.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                assert name.split(".")[0] != "states", f"{path.name}:{node.lineno} imports {name}"


def test_entity_tables_name_each_workflows_table() -> None:
    assert set(WORKFLOWS) == set(ENTITY_TABLES)
    for name, workflow in WORKFLOWS.items():
        assert ENTITY_TABLES[name] is workflow.table, name


def test_engine_payload_carries_the_labels(org: Session) -> None:
    _escalated_hazard(org)
    rows = outbox(org)
    payloads = {r["event"]: json.loads(r["payload"]) for r in rows}
    assert set(payloads) == {"report", "assign", "escalate"}
    assert {p["entity_label"] for p in payloads.values()} == {"隐患"}
    assert payloads["escalate"]["level_label"] == "主要负责人"
    assert "level_label" not in payloads["assign"]
    # each workflow labels its own levels: a listing's level 2 is an interview (约谈)
    assert LISTING.payload_labels(LISTING.events["escalate"], {"level": 2}) == {
        "entity_label": "挂牌督办", "level_label": "约谈"}


def test_a_payload_without_labels_still_renders(org: Session, engine: Engine,
                                                sink: Sink) -> None:
    _escalated_hazard(org)
    routes = people_routing(sink, *DEMO_PEOPLE)
    d = dispatcher(engine, routes)
    for row in outbox(org):
        old = _without_labels(row)
        if row["event"] == "escalate":
            assert d.preview(row, LATER).title.startswith("【逾期升级·主要负责人】YH-000001")
            shown = d.preview(old, LATER)
            assert shown.title.startswith("【逾期升级·】YH-000001")
            assert "升级到第 2 级（—）" in shown.body
        else:
            assert d.preview(old, LATER) == d.preview(row, LATER)
        # the generic template says 「通知」 where it has no label (no English type name)
        assert d.preview(dict(row, template="default"), LATER).title.startswith("【隐患】")
        assert d.preview(dict(old, template="default"), LATER).title.startswith("【通知】")

    rows = outbox(org)
    conn = org.connection()  # as if queued before the upgrade
    for row in rows:
        conn.execute(update(OUT).where(OUT.c.id == row["id"])
                     .values(payload=_without_labels(row)["payload"]))
    org.commit()
    result = dispatcher(engine, routes).run(LATER)
    assert result.messages == 4 and result.delivered == 4 and result.sends_failed == 0
    assert {r["status"] for r in outbox(org)} == {"sent"}
    [escalated] = [t for t in map(text_of, sink.at("wang.zhuren")) if "逾期升级" in t]
    assert "YH-000001" in escalated and "升级到第 2 级（—）" in escalated
