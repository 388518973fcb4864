"""The REST API under load: 50 concurrent clients against uvicorn, 100,000 hazards in the database.

The app is served by uvicorn in a subprocess on 127.0.0.1 (a free port; ``safeloop.api.serve:app``,
the app ``safeloop web`` serves, without the access log), on a SQLite file -- and on PostgreSQL
with 2 uvicorn workers when ``--pg URL`` (or ``SAFELOOP_BENCH_PG_URL``) names a server. The data
is ``bench.visibility``'s: the demo org plus 200 enterprises and 100,000 hazards over their units
(every 20th moved into the demo's jinhua-team-a, so the principal has 5,000 to act on). Callers
carry real personal tokens (``safeloop.accounts.tokens``). A bounded async httpx loop keeps 50
requests in flight and times each:

- ``GET /api/v1/inbox`` as the group principal (wang.zhuren: 5,000+ hazards to assign);
- ``GET /api/v1/hazard?state=reported`` as the same (one page of 50, newest first, scoped);
- ``POST /api/v1/hazard/{code}/events/assign``: a fresh reported hazard each time, so every POST
  is a real state change (reported -> rectifying, an audit row, an outbox message).

The baseline is the same handler work called in-process, one call at a time on the same file
(the scope, the query or ``engine.fire``; no HTTP, token or JSON): the ratio is the API's
requests/s over the in-process calls/s. Goals (issue 13): p99 <= 100 ms for reads and <= 200 ms
for events at 50 users on SQLite.

Two shapes of load per route. **50 users**: each of 50 clients sends a request, reads the answer,
pauses ``THINK_S`` (a person reads a page or fills a form; starts staggered over that pause) and
sends the next -- the issue's "50 users", and what the p99 goals are checked against.
**Saturated**: 50 requests always in flight, no pause -- the most the server does (requests/s
and its ratio to the in-process calls) and how latency grows when the queue never empties (no
p99 goal: with 50 always waiting, p99 is about 50 / the rate, whatever the code does).
The client shares the machine with the server, so on a small
box its CPU time is part of what is measured.

    .venv/bin/python -m bench.api [--quick] [--pg postgresql://…] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select, text, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.common import DEMO_ORG, ROOT, Result, scratch_dir
from bench.visibility import seed_into
from core.rules import Rules, set_rules
from core.settings import Settings
from models.db import make_engine, utcnow
from models.tables import HAZARD as HAZARD_TABLE
from models.tables import UNIT
from safeloop import orgfile
from safeloop.accounts.tokens import create_token
from safeloop.api import queries
from safeloop.schema import upgrade
from states import engine as state_engine
from states.actors import Lookups
from states.registry import WORKFLOWS
from states.visibility import visibility_for
from states.workflows.hazard import HAZARD

NAME = "api"
CLIENTS = 50
ACTOR = "wang.zhuren"  # principal of the jinhua group: sees and assigns the demo units' hazards
OWNER = "sun.banzhang"  # rectifier in jinhua-team-a
UNIT_KEY = "jinhua-team-a"
MOVE_EVERY = 20  # every 20th seeded hazard moves into the principal's group (5,000 of 100,000)
PAGE = 50
READ_P99_MS, EVENT_P99_MS = 100.0, 200.0
THINK_S = 1.0  # a user's pause between one answer and their next request
STARTUP_S = 60.0


@dataclass
class Load:
    """Latencies (seconds) of a run's requests and its wall-clock time."""

    latencies: list[float]
    seconds: float
    failures: int = 0
    first_failure: str = ""

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def ms(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


# ---- the database ----------------------------------------------------------------------------


def prepare(engine: Engine, hazards: int, enterprises: int) -> dict[str, Any]:
    """Migrate, load the demo org, seed, move the principal's share, make the tokens."""
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        orgfile.load(session, DEMO_ORG)
        session.commit()
    seed_into(engine, hazards, enterprises)
    with Session(engine, expire_on_commit=False) as session:
        conn = session.connection()
        unit_id, enterprise_id = conn.execute(
            select(UNIT.c.id, UNIT.c.enterprise_id).where(UNIT.c.key == UNIT_KEY)).one()
        conn.execute(update(HAZARD_TABLE).where(HAZARD_TABLE.c.id % MOVE_EVERY == 0)
                     .values(unit_id=unit_id, enterprise_id=enterprise_id))
        ids = list(conn.execute(select(HAZARD_TABLE.c.id).where(
            HAZARD_TABLE.c.unit_id == unit_id, HAZARD_TABLE.c.state == "reported")
            .order_by(HAZARD_TABLE.c.id)).scalars())
        codes = dict(conn.execute(select(HAZARD_TABLE.c.id, HAZARD_TABLE.c.code)
                                  .where(HAZARD_TABLE.c.id.in_(ids))).all())
        token = create_token(session, ACTOR, name="bench", actor="admin").secret
        session.commit()
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return {"ids": ids, "codes": codes, "token": token}


def deadline() -> str:
    """A deadline after the seeded hazards' discovery (2026-11-02) and after now."""
    return (max(utcnow(), datetime(2026, 11, 2, tzinfo=UTC)) + timedelta(days=30)).isoformat()


@contextmanager
def pg_schema(url: str) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server (dropped afterwards): the URL to use."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


# ---- the server --------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(url: str, storage: Path, workers: int) -> Iterator[str]:
    """uvicorn in a subprocess on a free local port; yields the base URL once /healthz answers."""
    port = free_port()
    env = {**os.environ, "SAFELOOP_DATABASE_URL": url, "SAFELOOP_STORAGE_DIR": str(storage),
           "SAFELOOP_SIMULATE_TIME": "false", "SAFELOOP_API_PAGE_SIZE": str(PAGE)}
    command = [sys.executable, "-m", "uvicorn", "safeloop.api.serve:app", "--host", "127.0.0.1",
               "--port", str(port), "--workers", str(workers), "--no-access-log",
               "--log-level", "warning", "--no-server-header"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() - started > STARTUP_S:
                raise RuntimeError("uvicorn did not answer /healthz in time")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


Request = Callable[[int], tuple[str, str, dict[str, Any]]]


async def _load(base: str, token: str, request: Request, total: int, expect: int,
                think_s: float) -> Load:
    """``total`` requests by ``CLIENTS`` clients, each pausing ``think_s`` after every answer
    (0: always ``CLIENTS`` in flight), each request timed."""
    latencies: list[float] = []
    failures: list[str] = []
    numbers = iter(range(total))
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=120) as client:

        async def client_loop(user: int) -> None:
            await asyncio.sleep(think_s * user / CLIENTS)  # users arrive spread over one pause
            for i in numbers:
                method, url, kwargs = request(i)
                start = time.perf_counter()
                response = await client.request(method, url, **kwargs)
                latencies.append(time.perf_counter() - start)
                if response.status_code != expect:
                    failures.append(f"{method} {url}: {response.status_code} {response.text[:200]}")
                if think_s:
                    await asyncio.sleep(think_s)

        started = time.perf_counter()
        await asyncio.gather(*(client_loop(user) for user in range(CLIENTS)))
        seconds = time.perf_counter() - started
    return Load(latencies, seconds, len(failures), failures[0] if failures else "")


def load(base: str, token: str, request: Request, total: int, expect: int = 200,
         think_s: float = 0.0) -> Load:
    return asyncio.run(_load(base, token, request, total, expect, think_s))


# ---- the same work in-process ----------------------------------------------------------------


def in_process(engine: Engine, rules: Rules, work: Callable[[Session, int], None], n: int) -> Load:
    """``work`` called ``n`` times one after another, each on a fresh session (as a request)."""
    latencies = []
    started = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        with Session(engine, expire_on_commit=False) as session:
            set_rules(session, rules)
            work(session, i)
            session.rollback()
        latencies.append(time.perf_counter() - t0)
    return Load(latencies, time.perf_counter() - started)


def inbox_work(session: Session, _i: int) -> None:
    conn = session.connection()
    scope = visibility_for(conn, ACTOR)
    actor = Lookups(conn).actor(ACTOR)
    queries.inbox(conn, list(WORKFLOWS.values()), actor, scope, utcnow(), PAGE)


def list_work(session: Session, _i: int) -> None:
    conn = session.connection()
    scope = visibility_for(conn, ACTOR)
    queries.page(conn, HAZARD, scope.where(HAZARD), queries.ListFilter(state="reported"), None,
                 PAGE, utcnow())


# ---- one backend -----------------------------------------------------------------------------


def measure(url: str, storage: Path, workers: int, hazards: int, enterprises: int, reads: int,
            events: int, label: str) -> list[Result]:
    engine = make_engine(url)
    try:
        data = prepare(engine, hazards, enterprises)
        ids: list[int] = data["ids"]
        if len(ids) < 3 * events:
            raise AssertionError(f"{len(ids)} fresh hazards for {3 * events} events")
        api_ids, local_ids = ids[:2 * events], ids[2 * events:3 * events]
        body = {"owner": OWNER, "deadline": deadline()}
        routes: dict[str, tuple[Request, int]] = {
            "inbox": (lambda _i: ("GET", "/api/v1/inbox", {}), reads),
            "list": (lambda _i: ("GET", "/api/v1/hazard", {"params": {"state": "reported"}}), reads),
            "event": (lambda i: ("POST", f"/api/v1/hazard/{data['codes'][api_ids[i]]}/events/assign",
                                 {"json": body}), events),
        }
        saturated_event: Request = lambda i: routes["event"][0](events + i)  # noqa: E731 (fresh ones)
        loads: dict[str, Load] = {}
        busy: dict[str, Load] = {}
        with serve(url, storage, workers) as base:
            load(base, data["token"], routes["inbox"][0], CLIENTS)  # warm-up: pools, token use
            load(base, data["token"], routes["list"][0], CLIENTS)
            for name, (request, total) in routes.items():
                loads[name] = load(base, data["token"], request, total, think_s=THINK_S)
                busy[name] = load(base, data["token"],
                                  saturated_event if name == "event" else request, total)
                for run in (loads[name], busy[name]):
                    if run.failures:
                        raise AssertionError(f"{name}: {run.failures} failed, e.g. {run.first_failure}")
        rules = Rules.from_settings(Settings(database_url=url, storage_dir=storage))

        def event_work(session: Session, i: int) -> None:
            state_engine.fire(session, HAZARD, local_ids[i], "assign", actor=ACTOR,
                              data={"owner": OWNER, "deadline": body["deadline"]})

        local = {"inbox": in_process(engine, rules, inbox_work, min(reads, 300)),
                 "list": in_process(engine, rules, list_work, min(reads, 300)),
                 "event": in_process(engine, rules, event_work, events)}
        with engine.connect() as conn:
            moved = conn.execute(select(HAZARD_TABLE.c.id).where(
                HAZARD_TABLE.c.id.in_(ids[:3 * events]), HAZARD_TABLE.c.state != "rectifying")).first()
        if moved is not None:
            raise AssertionError(f"hazard {moved[0]} was not assigned: an event did not happen")
    finally:
        engine.dispose()
    results = []
    for name in routes:
        budget = EVENT_P99_MS if name == "event" else READ_P99_MS
        results.append(_result(f"{NAME}/{label}/{name}", loads[name], local[name], budget, workers,
                               f"{CLIENTS} users, {THINK_S:g} s pause"))
        results.append(_result(f"{NAME}/{label}/{name}@saturated", busy[name], local[name], None,
                               workers, f"{CLIENTS} always in flight"))
    return results


def _result(name: str, api: Load, local: Load, budget_ms: float | None, workers: int,
            shape: str) -> Result:
    notes = (f"p50 {api.ms(50):.1f} ms, p99 {api.ms(99):.1f} ms, {api.rate:,.0f} req/s ({shape}, "
             f"{workers} worker(s)); in-process p50 {local.ms(50):.1f} ms, p99 {local.ms(99):.1f} ms "
             f"({len(local.latencies)} calls, {local.rate:,.0f}/s)")
    n = len(api.latencies)
    return Result(name, n, api.seconds, n / local.rate if local.rate else 0.0, target_rate=0,
                  notes=notes, p99_ms=api.ms(99), max_p99_ms=budget_ms)


def run(quick: bool, profile: bool, pg_url: str | None = None) -> list[Result]:
    """SQLite (1 worker), and PostgreSQL (2 workers) when a URL is given or in the environment."""
    hazards, enterprises, reads, events = (20_000, 50, 300, 200) if quick else (100_000, 200, 1_000, 500)
    pg_url = pg_url or os.environ.get("SAFELOOP_BENCH_PG_URL")
    results = []
    with scratch_dir(NAME) as folder:
        results += measure(f"sqlite:///{folder / 'api.db'}", folder / "store", 1, hazards,
                           enterprises, reads, events, "sqlite")
    if pg_url:
        with scratch_dir(NAME) as folder, pg_schema(pg_url) as url:
            results += measure(url, folder / "store", 2, hazards, enterprises, reads, events, "pg")
    return results


def main(argv: Sequence[str] | None = None) -> int:
    from bench.report import environment, table

    parser = argparse.ArgumentParser(prog="python -m bench.api", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 hazards, fewer requests")
    parser.add_argument("--pg", help="also run on this PostgreSQL server (a scratch schema)")
    args = parser.parse_args(argv)
    print(f"safeloop api benchmark: {environment()}", flush=True)
    results = run(args.quick, False, args.pg)
    print(table(results))
    print(f"\nper second = API requests/s ({CLIENTS} users pausing {THINK_S:g} s between requests; "
          f"@saturated: {CLIENTS} always in flight); baseline/s = the same work in-process, one call "
          "at a time; ratio = the two. p99 goals apply to the users' rows.")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
