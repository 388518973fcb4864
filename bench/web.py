"""The web pages under load: 50 concurrent signed-in sessions on 100,000 hazards, against the
REST API's figures for the same work on the same server in the same run.

The database and the server are ``bench.api``'s (``prepare``: the demo org, 200 enterprises,
100,000 hazards, every 20th moved into jinhua-team-a; ``serve``: uvicorn in a subprocess, one
worker, SQLite). A share of the hazards is then put in other states set-wise (rectifying with
deadlines before and after now, some escalated), so the dashboard has something to count.

Each of 50 users holds a real login session (``safeloop.accounts.sessions.login``, channel web;
its cookie) and browses as a person does, pausing ``THINK_S`` after each answer:

- ``GET /`` -- the inbox (the group principal: 5,000+ hazards to act on);
- ``GET /hazard/{code}`` -- a fresh reported hazard's page, its assign form (CSRF token, version);
- ``POST /hazard/{code}/events/assign`` -- that form posted: a real state change (303).

Then the dashboards: ``GET /dashboard`` as the development zone's regulator (the figures over the
enterprises of a jurisdiction: tens of thousands of hazards) and as the principal, by 50 users,
and once more one request at a time (no queue: the page's own time); the page remembers its
figures until the audit trail moves or the minute turns, so the same GROUP BYs are also timed
uncached, in-process. The API rows are the same
work through ``/api/v1`` with a personal token on the same server: ``GET /api/v1/inbox``,
``GET /api/v1/hazard/{code}``, ``POST /api/v1/hazard/{code}/events/assign``. The goal (issue 14):
p99 <= 150 ms for the pages at 50 users on SQLite.

    .venv/bin/python -m bench.web [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import and_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.api import ACTOR, CLIENTS, OWNER, THINK_S, Load, load, prepare, serve
from bench.common import Result, scratch_dir
from core.settings import Settings
from models.db import make_engine, utcnow
from models.tables import HAZARD as HAZARD_TABLE
from models.tables import INSPECTION_TASK as TASK_TABLE
from models.tables import LISTING as LISTING_TABLE
from safeloop.accounts import passwords, sessions
from safeloop.web import dashboard, focus
from safeloop.web.auth import CHANNEL, COOKIE
from states.visibility import visibility_for

NAME = "web"
PAGE_P99_MS = 150.0
REGULATOR = "qian.jianguan"
PASSWORD = "bench-web-password-7"
ZONE = ZoneInfo("Asia/Shanghai")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
VERSION = re.compile(r'id="form-assign">\s*<input type="hidden" name="csrf" value="[^"]+">\s*'
                     r'<input type="hidden" name="version" value="(\d+)"')
PAGES = ("inbox", "hazard", "event")
ALL = focus.Focus("all")


def vary(engine: Engine, fresh: list[int]) -> None:
    """A third of the hazards (none of the ``fresh`` ones the runs assign) rectifying, deadlines spread over
    ten days either side of now, a seventh of those escalated: set-wise UPDATEs."""
    table = HAZARD_TABLE
    now = utcnow()
    spared = table.c.id.not_in(fresh)  # the reported ones the runs open and assign
    with engine.begin() as conn:
        for shift in range(-5, 5):
            chosen = and_(table.c.id % 3 == 1, table.c.id % 10 == shift + 5, spared)
            conn.execute(update(table).where(chosen).values(state="rectifying",
                                                            deadline=now + timedelta(days=2 * shift)))
        conn.execute(update(table).where(and_(table.c.state == "rectifying", table.c.id % 7 == 0))
                     .values(escalation_level=1))


def login_secrets(engine: Engine, settings: Settings, person: str, n: int) -> list[str]:
    """``n`` login sessions of ``person`` (a password set first): their cookie values."""
    lifetimes = sessions.Lifetimes.from_settings(settings)
    with Session(engine, expire_on_commit=False) as session:
        passwords.set_password(session, person, PASSWORD, actor="admin")
        session.commit()
        return [sessions.login(session, person, PASSWORD, channel=CHANNEL, lifetimes=lifetimes).secret
                for _ in range(n)]


def local_deadline() -> str:
    """A deadline 30 days ahead as the form's datetime-local field gives it (Shanghai time)."""
    moment = max(utcnow(), datetime(2026, 11, 2, tzinfo=UTC)) + timedelta(days=30)
    return moment.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M")


async def _browse(base: str, secrets: list[str], codes: list[str],
                  think_s: float) -> dict[str, Load]:
    """Each user: inbox -> a fresh hazard's page -> its assign form posted, until the codes run out."""
    times: dict[str, list[float]] = {p: [] for p in PAGES}
    failures: list[str] = []
    queue = iter(codes)
    deadline = local_deadline()

    async def user(n: int, secret: str) -> None:
        async with httpx.AsyncClient(base_url=base, cookies={COOKIE: secret}, timeout=120,
                                     follow_redirects=False) as client:
            await asyncio.sleep(think_s * n / len(secrets))

            async def timed(page: str, method: str, url: str, expect: int, **kw: Any) -> httpx.Response:
                start = time.perf_counter()
                answer = await client.request(method, url, **kw)
                times[page].append(time.perf_counter() - start)
                if answer.status_code != expect:
                    failures.append(f"{method} {url}: {answer.status_code} {answer.text[:300]}")
                if think_s:
                    await asyncio.sleep(think_s)
                return answer

            for code in queue:
                await timed("inbox", "GET", "/", 200)
                page = await timed("hazard", "GET", f"/hazard/{code}", 200)
                csrf, version = CSRF.search(page.text), VERSION.search(page.text)
                if not csrf or not version:
                    failures.append(f"/hazard/{code}: no assign form")
                    continue
                await timed("event", "POST", f"/hazard/{code}/events/assign", 303, data={
                    "csrf": csrf.group(1), "version": version.group(1), "owner": OWNER,
                    "deadline": deadline, "comment": "请按期整改（基准测试）"})

    started = time.perf_counter()
    await asyncio.gather(*(user(n, s) for n, s in enumerate(secrets)))
    seconds = time.perf_counter() - started
    if failures:
        raise AssertionError(f"{len(failures)} page requests failed, e.g. {failures[0]}")
    return {p: Load(times[p], seconds) for p in PAGES}


async def _pages(base: str, secrets: list[str], path: str, total: int, think_s: float) -> Load:
    """``total`` GETs of ``path`` by the users of ``secrets`` (one after another when one user)."""
    times: list[float] = []
    failures: list[str] = []
    numbers = iter(range(total))

    async def user(n: int, secret: str) -> None:
        async with httpx.AsyncClient(base_url=base, cookies={COOKIE: secret}, timeout=120) as client:
            await asyncio.sleep(think_s * n / len(secrets))
            for _ in numbers:
                start = time.perf_counter()
                answer = await client.get(path)
                times.append(time.perf_counter() - start)
                if answer.status_code != 200:
                    failures.append(f"GET {path}: {answer.status_code} {answer.text[:300]}")
                if think_s:
                    await asyncio.sleep(think_s)

    started = time.perf_counter()
    await asyncio.gather(*(user(n, s) for n, s in enumerate(secrets)))
    if failures:
        raise AssertionError(f"{len(failures)} requests failed, e.g. {failures[0]}")
    return Load(times, time.perf_counter() - started)


def measure(url: str, storage: Path, hazards: int, enterprises: int, events: int,
            dashboards: int) -> list[Result]:
    engine = make_engine(url)
    settings = Settings(database_url=url, storage_dir=storage)
    try:
        data = prepare(engine, hazards, enterprises)
        ids: list[int] = data["ids"]
        if len(ids) < 2 * events:
            raise AssertionError(f"{len(ids)} fresh hazards for {2 * events} events")
        web_codes = [data["codes"][i] for i in ids[:events]]
        api_codes = [data["codes"][i] for i in ids[events:2 * events]]
        vary(engine, ids)
        principal = login_secrets(engine, settings, ACTOR, CLIENTS)
        regulator = login_secrets(engine, settings, REGULATOR, CLIENTS)
    finally:
        engine.dispose()
    body = {"owner": OWNER, "deadline": (datetime.now(UTC) + timedelta(days=30)).isoformat()}
    api_routes: dict[str, Callable[[int], tuple[str, str, dict[str, Any]]]] = {
        "inbox": lambda _i: ("GET", "/api/v1/inbox", {}),
        "hazard": lambda i: ("GET", f"/api/v1/hazard/{web_codes[i % len(web_codes)]}", {}),
        "event": lambda i: ("POST", f"/api/v1/hazard/{api_codes[i]}/events/assign", {"json": body}),
    }
    with serve(url, storage, 1) as base:
        asyncio.run(_pages(base, principal[:5], "/", 25, 0))  # warm-up: pools, templates
        load(base, data["token"], api_routes["inbox"], 25)
        web = asyncio.run(_browse(base, principal, web_codes, THINK_S))
        api = {name: load(base, data["token"], route, events, expect=200, think_s=THINK_S)
               for name, route in api_routes.items()}
        boards = {
            f"dashboard@{who}": asyncio.run(_pages(base, people, "/dashboard", dashboards, THINK_S))
            for who, people in (("regulator", regulator), ("principal", principal))
        }
        alone = {
            "dashboard@regulator": asyncio.run(_pages(base, regulator[:1], "/dashboard", 20, 0)),
            "dashboard@principal": asyncio.run(_pages(base, principal[:1], "/dashboard", 20, 0)),
        }
    cold = uncached(url)
    results = []
    for page in PAGES:
        w, a = web[page], api[page]
        notes = (f"page p50 {w.ms(50):.1f} ms, p99 {w.ms(99):.1f} ms ({len(w.latencies)} requests, "
                 f"{CLIENTS} sessions, {THINK_S:g} s pause); API same run p50 {a.ms(50):.1f} ms, "
                 f"p99 {a.ms(99):.1f} ms")
        results.append(Result(f"{NAME}/sqlite/{page}", len(w.latencies), w.seconds,
                              a.seconds * len(w.latencies) / max(len(a.latencies), 1), target_rate=0,
                              notes=notes, p99_ms=w.ms(99), max_p99_ms=PAGE_P99_MS))
    for name, board in boards.items():
        one = alone[name]
        alone_ms = f"p50 {one.ms(50):.1f} ms, max {max(one.latencies) * 1000:.1f} ms"
        notes = (f"p50 {board.ms(50):.1f} ms, p99 {board.ms(99):.1f} ms ({CLIENTS} sessions, {THINK_S:g} s "
                 f"pause); one at a time {alone_ms}; its GROUP BYs uncached, in-process: "
                 f"p50 {cold[name].ms(50):.1f} ms, max {max(cold[name].latencies) * 1000:.1f} ms")
        results.append(Result(f"{NAME}/sqlite/{name}", len(board.latencies), board.seconds, one.seconds,
                              target_rate=0, notes=notes, p99_ms=board.ms(99), max_p99_ms=PAGE_P99_MS))
    return results


def uncached(url: str, runs: int = 10) -> dict[str, Load]:
    """The dashboard's queries themselves (``safeloop.web.dashboard``'s GROUP BYs, not its memo),
    one run after another in this process, for the regulator and the principal."""
    engine = make_engine(url)
    out = {}
    try:
        with engine.connect() as conn:
            for who, person in (("regulator", REGULATOR), ("principal", ACTOR)):
                scope = visibility_for(conn, person)
                times = []
                for _ in range(runs):
                    start = time.perf_counter()
                    now = utcnow()
                    periods = dashboard.windows(now, str(ZONE))
                    dashboard.hazard_cells(conn, focus.where(scope, ALL, HAZARD_TABLE), now)
                    dashboard.listing_counts(conn, focus.where(scope, ALL, LISTING_TABLE), now)
                    dashboard.completion(conn, focus.where(scope, ALL, TASK_TABLE), periods)
                    times.append(time.perf_counter() - start)
                out[f"dashboard@{who}"] = Load(times, sum(times))
    finally:
        engine.dispose()
    return out


def run(quick: bool, _profile: bool) -> list[Result]:
    hazards, enterprises, events, dashboards = (20_000, 50, 150, 100) if quick else (100_000, 200, 500, 300)
    with scratch_dir(NAME) as folder:
        return measure(f"sqlite:///{folder / 'web.db'}", folder / "store", hazards, enterprises, events,
                       dashboards)


def main(argv: Sequence[str] | None = None) -> int:
    from bench.report import environment, table

    parser = argparse.ArgumentParser(prog="python -m bench.web", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 hazards, fewer requests")
    args = parser.parse_args(argv)
    print(f"safeloop web benchmark: {environment()}", flush=True)
    results = run(args.quick, False)
    print(table(results))
    print(f"\nper second = page requests/s ({CLIENTS} signed-in sessions pausing {THINK_S:g} s after "
          "each answer); baseline/s = the API's requests/s for the same work on the same server in "
          "the same run (dashboards: one request at a time); p99 goal: 150 ms per page.")
    return 0 if all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
