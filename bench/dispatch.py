"""``notifications.dispatch``: send 10,000 outbox messages to a local HTTP sink.

Fixture: the demo org and 10,000 rectifying hazards (``seed_rectifying``, with their audit rows),
and one ``hazard.assign`` outbox row per hazard exactly as the engine writes it (recipient
``person:<owner>``, payload, the assign event's audit seq). The routing gives the owner a
``json://`` channel on a threaded HTTP server on 127.0.0.1 in this process (HTTP/1.0: one
connection per request, as Apprise's ``requests.post`` makes them).

Measured: ``Dispatcher.run`` (claim with lease, resolve, render the zh-CN template, send through
Apprise in a pool of 16 threads, record each delivery and outcome) in laps of 4 batches of 500.
Baseline, in the same process against the same sink, in alternating laps: ``requests.post`` of
the same JSON bodies Apprise posts, from a pool of 16 threads -- the raw HTTP cost, no database.
Untimed checks: every outbox row ``sent``, one delivery row each, the sink got each once.
Target (issue 5): >= 200 messages/s.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import requests
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.common import OWNER, SEED_AT, Result, Stopwatch, new_database, scratch_dir, seed_rectifying
from models import Delivery, Person
from models.tables import AUDIT_ENTRY as AUDIT
from models.tables import NOTIFICATION_DELIVERY
from models.tables import OUTBOX as OUT
from notifications import routing, templates
from notifications.dispatch import DispatchConfig, Dispatcher

NAME = "dispatch"
TARGET_RATE = 200.0
CONCURRENCY = 16
BATCH = 500
LAP_BATCHES = 4  # 2,000 messages per lap


SINK = """
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
count = 0
lock = threading.Lock()
class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            count += 1
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    def do_GET(self):
        body = str(count).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer.request_queue_size = 256
ThreadingHTTPServer.daemon_threads = True
server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


@contextmanager
def sink() -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 in a process of its own (as a real endpoint is not in
    the dispatcher's process): 200 to every POST; GET answers how many POSTs it got."""
    proc = subprocess.Popen([sys.executable, "-c", SINK], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()


def posts(address: str) -> int:
    return int(requests.get(f"http://{address}/", timeout=10).text)


def seed_outbox(engine: Engine, n: int) -> None:
    """One hazard.assign outbox row per seeded hazard, as ``states.rows.outbox_rows`` writes."""
    ids = seed_rectifying(engine, n)
    with Session(engine) as session:
        conn = session.connection()
        owner = conn.execute(select(Person.id).where(Person.key == OWNER)).scalar_one()  # type: ignore[call-overload]
        seqs = dict(conn.execute(select(AUDIT.c.entity_id, AUDIT.c.seq).where(
            AUDIT.c.entity_type == "hazard", AUDIT.c.event == "assign")).all())
        deadline = (SEED_AT + timedelta(days=7)).isoformat()
        rows = [{
            "created_at": SEED_AT, "audit_seq": seqs[i], "entity_type": "hazard", "entity_id": i,
            "event": "assign", "recipient": f"person:{owner}", "template": "hazard.assign",
            "payload": json.dumps({
                "code": f"YH-{i:06d}", "title": "压力表失效", "event": "assign",
                "event_label": "分派整改", "state": "rectifying", "state_label": "整改中",
                "actor": "li.anquan", "deadline": deadline}, ensure_ascii=False),
            "status": "pending", "attempts": 0,
        } for i in ids]
        conn.execute(insert(OUT), rows)
        session.commit()


def bodies(n: int) -> list[bytes]:
    """What Apprise's json:// plugin posts, for the baseline."""
    text = ("李安全 将一般隐患 YH-{i:06d}（合成一班）分派给您整改。\n- 整改期限：2026-11-09 10:00\n"
            "- 整改完成后提交验收：\n  safeloop hazard fire YH-{i:06d} submit --as sun.banzhang "
            "--measures <整改措施> --evidence <照片>")
    return [json.dumps({"version": "1.0", "title": f"【整改任务】YH-{i:06d} 压力表失效",
                        "message": text.format(i=i), "attachments": [], "type": "info"}).encode()
            for i in range(1, n + 1)]


def _post_all(url: str, payloads: list[bytes]) -> None:
    headers = {"User-Agent": "bench", "Content-Type": "application/json"}

    def post(body: bytes) -> int:
        return requests.post(url, data=body, headers=headers, timeout=10).status_code

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        codes = list(pool.map(post, payloads))
    if set(codes) != {200}:
        raise AssertionError(f"baseline posts failed: {sorted(set(codes))}")


def run(quick: bool = False, profile: bool = False) -> Result:
    n = 2_000 if quick else 10_000
    with scratch_dir(NAME) as tmp, sink() as address:
        engine = new_database(tmp / "dispatch.db")
        try:
            seed_outbox(engine, n)
            tset = templates.load()
            rules = routing.parse(f"people:\n  {OWNER}: ['json://{address}/owner']\n",
                                  known_templates=tset.names())
            config = DispatchConfig(concurrency=CONCURRENCY, batch_size=BATCH, digest_time=None,
                                    run_budget_s=None, backoff_s=0.2, backoff_max_s=1.0)
            dispatcher = Dispatcher(engine, rules, tset, config, owner="bench")
            payloads = bodies(n)
            measured, baseline = Stopwatch(profile), Stopwatch()
            per_lap = BATCH * LAP_BATCHES
            retried = 0
            as_of = SEED_AT + timedelta(minutes=1)
            for k, start in enumerate(range(0, n, per_lap)):
                block = payloads[start:start + per_lap]
                for turn in ((0, 1) if k % 2 == 0 else (1, 0)):
                    if turn == 0:
                        with baseline.lap():
                            _post_all(f"http://{address}/baseline", block)
                    else:
                        with measured.lap():
                            report = dispatcher.run(as_of, max_batches=LAP_BATCHES)
                        retried += report.sends_failed
            with measured.lap():  # a send that failed (say the sink's backlog was full) is retried
                for _ in range(20):
                    as_of += timedelta(seconds=2)
                    if dispatcher.run(as_of).claimed == 0:
                        break
            measured.print_profile(NAME)
            _check(engine, n)
            got = posts(address)
            if got < 2 * n:
                raise AssertionError(f"sink got {got} posts, expected {2 * n}")
        finally:
            engine.dispose()
    return Result.of(NAME, n, measured, baseline, TARGET_RATE, notes=(
        f"{n:,} hazard.assign messages, json:// to a loopback HTTP sink (own process), "
        f"{CONCURRENCY} threads, batches of {BATCH}; baseline = requests.post of the same bodies, "
        f"same threads; {retried} sends failed and were retried"))


def _check(engine: Engine, n: int) -> None:
    with Session(engine) as session:
        conn = session.connection()
        statuses = dict(conn.execute(select(OUT.c.status, func.count()).group_by(OUT.c.status)).all())
        sent = conn.execute(select(func.count()).select_from(NOTIFICATION_DELIVERY)
                            .where(Delivery.status == "sent")).scalar_one()  # type: ignore[arg-type]
    if statuses != {"sent": n} or sent != n:
        raise AssertionError(f"outbox {statuses}, {sent} deliveries sent, expected {n}")
