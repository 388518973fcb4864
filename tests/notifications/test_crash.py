"""A dispatcher SIGKILLed mid-batch loses nothing: once its leases run out, a new dispatcher
sends every message it had not finished -- and only messages that were sent but not yet recorded
when it died can reach anyone twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session

from models.db import make_engine
from tests.helpers import NOW, assign, report
from tests.notifications.conftest import FAST, Request, Sink, dispatcher, outbox, people_routing
from tests.notifications.worker import CONFIG

ROOT = Path(__file__).resolve().parents[2]
HAZARDS = 150  # two messages each: the report (li.anquan) and the assignment (sun.banzhang)
MARKERS = {"hazard.report": ("li.anquan", "新隐患待分派"), "hazard.assign": ("sun.banzhang", "整改任务")}


def message_of(request: Request) -> tuple[str, str]:
    """(person, first line) identifies a message here: one report and one assignment a hazard."""
    return request.path, request.body["title"]


def expected(rows: list[dict[str, object]]) -> dict[int, tuple[str, str]]:
    found = {}
    for row in rows:
        path, marker = MARKERS[str(row["template"])]
        code = json.loads(str(row["payload"]))["code"]
        found[int(row["id"])] = (path, f"【{marker}】{code} 压力表失效")  # type: ignore[arg-type]
    return found


@pytest.mark.slow
def test_dispatcher_killed_midway_loses_nothing(org: Session, db_url: str, sink: Sink,
                                                tmp_path: Path) -> None:
    for _ in range(HAZARDS):
        assign(org, report(org).entity_id)
    rows = outbox(org)
    ids = expected(rows)
    assert len(ids) == 2 * HAZARDS
    routing_file = tmp_path / "routing.yaml"
    routing_file.write_text(people_routing(sink, "li.anquan", "sun.banzhang"), encoding="utf-8")
    sink.delay_s = 0.04  # ~100 sends/s at concurrency 4: a batch of 20 takes ~0.2 s
    as_of = NOW + timedelta(minutes=1)
    ready = tmp_path / "ready"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.notifications.worker", db_url, str(routing_file),
         as_of.isoformat(), str(ready)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    watcher = make_engine(db_url)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.01)
        recorded = 0
        with watcher.connect() as conn:
            while time.monotonic() < deadline and proc.poll() is None:
                recorded, in_hand = conn.execute(text(
                    "SELECT (SELECT count(*) FROM notification_delivery WHERE status = 'sent'),"
                    " (SELECT count(*) FROM outbox WHERE status = 'sending')")).one()
                conn.rollback()
                if recorded >= HAZARDS // 2 and in_hand:  # mid-batch: rows leased, not done
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.005)
        proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, "the dispatcher finished before the kill"
        time.sleep(0.3)  # let the last in-flight requests land at the sink
        at_kill = {message_of(r) for r in sink.accepted}
        with watcher.connect() as conn:
            done_ids = set(conn.execute(text(
                "SELECT id FROM outbox WHERE status = 'sent'")).scalars())
            leased = conn.execute(text(
                "SELECT count(*) FROM outbox WHERE status = 'sending'")).scalar_one()
            recorded_keys = conn.execute(text(
                "SELECT count(*) FROM notification_delivery WHERE status = 'sent'")).scalar_one()
            conn.rollback()
        assert leased > 0 and len(done_ids) < len(ids)  # killed with work in its hands
        recorded_messages = {ids[i] for i in done_ids}
        unrecorded = at_kill - recorded_messages
    finally:
        watcher.dispose()

    # Restart after the victim's leases (30 s) have run out; nothing is lost.
    sink.delay_s = 0.0
    restart_at = as_of + timedelta(seconds=CONFIG.lease_s + 5)
    for attempt in range(20):
        dispatcher(org.get_bind(), people_routing(sink, "li.anquan", "sun.banzhang"), FAST)\
            .run(restart_at + timedelta(seconds=attempt))
        if {r["status"] for r in outbox(org)} == {"sent"}:
            break
        time.sleep(0.2)  # PostgreSQL may hold the dead session's locks for a moment
    assert {r["status"] for r in outbox(org)} == {"sent"}
    heard = Counter(message_of(r) for r in sink.accepted)
    assert set(heard) == set(ids.values())  # every message arrived
    twice = {m for m, n in heard.items() if n > 1}
    assert twice <= unrecorded, (twice - unrecorded, len(unrecorded), recorded_keys)
    assert max(heard.values()) <= 2
