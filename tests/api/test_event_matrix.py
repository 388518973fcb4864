"""The role x event matrix through the API gives the engine's verdicts (issue 13), with real tokens.

The data is the demo's: its hazard and risk scenario (``safeloop.demo``), plus an entity of each
workflow the scenario does not reach (a listing, a suspension order, an annual plan, materialised
inspection tasks and statistics reports), one entity per (workflow, state). For each such entity
and each person of the demo org:

- ``GET show``'s "events this caller may fire" is ``states.engine.allowed_events``, and also the
  plain reading of the rules (the event's sources and roles x the roles the org file gives the
  person there, ``tests.scope_world.Plain``); an auditor's is empty (read-only);
- every event of the workflow, fired through the API, gets the status the engine's own verdict
  maps to (``engine.fire`` on the same body, rolled back): done -> 200, refused -> 403/422 with
  the error kind; an event the caller may not fire now -> 403 with the zh-CN shape (current state,
  the caller's allowed events) and nothing written.

Fast because nothing is kept: the app is bound to one connection holding a transaction, each
case runs inside a SAVEPOINT that is rolled back (the request's own session nests its savepoints
inside it), so every case starts from the same demo state.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import Connection, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.errors import SafeloopError
from core.rules import set_rules
from models.tables import AUDIT_ENTRY, ENTITY_TABLES, UNIT
from safeloop import checklists, demo, plans
from states import engine as state_engine
from states.audit import verify
from states.jobs.duties import materialize_duties
from states.jobs.materialize import materialize
from states.jobs.replay import replay
from states.jobs.stat_reports import materialize_reports
from states.registry import WORKFLOWS
from states.requests import Origin, set_origin
from tests.api.realauth import Tokens, api_settings, real_app, written
from tests.api.samples import body_for
from tests.conftest import DEMO_ORG
from tests.helpers import SEEDED_EVIDENCE, is_zh
from tests.scope_world import Plain

API = "/api/v1"
PEOPLE = [p["id"] for p in yaml.safe_load(DEMO_ORG.read_text(encoding="utf-8"))["people"]]
AUDITORS = {"he.shenji"}
# The engine's refusal -> the API's status and error kind (errors.py's table, written out here).
VERDICT = {"PermissionDenied": (403, "permission_denied"), "GuardFailed": (403, "guard_failed"),
           "TransitionNotAllowed": (403, "transition_not_allowed"), "InvalidInput": (422, "invalid_input"),
           "NotFound": (404, "not_found")}


# POST routes about the caller's own sign-in, not the workflows' state: an auditor may use them.
OWN_ACCOUNT = {f"{API}/login", f"{API}/logout", f"{API}/me/password"}


def build_demo(session: Session, storage: Path) -> None:
    """The demo's scenario and risks, then one entity of every other workflow."""
    d = demo.Demo(session, storage, Console(file=io.StringIO()))
    demo._scenario(d)
    demo._risks(d)
    at = d.at(10)

    def create(name: str, actor: str, data: dict[str, Any]) -> str:
        return state_engine.create(session, WORKFLOWS[name], actor=actor, as_of=at, data=data).code

    def fire(name: str, code: str, event: str, actor: str, **data: Any) -> None:
        state_engine.fire(session, WORKFLOWS[name], code, event, actor=actor, as_of=at, data=data)

    def hazard(grade: str) -> str:
        return create("hazard", "wu.chuyun", {"unit": "jinhua-team-tank", "title": "液氨管线腐蚀",
                                              "category": "thing", "grade": grade})

    hazard("general")  # reported
    pending = hazard("general")
    fire("hazard", pending, "assign", "li.anquan", owner="wu.chuyun", deadline=at + timedelta(days=9))
    fire("hazard", pending, "submit", "wu.chuyun")
    listed = []
    for _ in range(2):
        major = hazard("major")
        fire("hazard", major, "assign", "li.anquan", owner="wu.chuyun", deadline=at + timedelta(days=90))
        listed.append(create("listing", "qian.jianguan", {"unit": "jinhua-team-tank", "hazard": major,
                                                          "department": "edz-yjj"}))
    fire("listing", listed[1], "list", "qian.jianguan", deadline=at + timedelta(days=120))
    for start in (False, True):
        order = create("suspension", "qian.jianguan", {"unit": "jinhua-plant1", "reason": "重大隐患未整改",
                                                       "scope": "partial"})
        if start:
            fire("suspension", order, "start_rectification", "wang.zhuren")
    for year in (2027, 2028):
        plan = create("annual_plan", "qian.jianguan", {
            "jurisdiction": "xz-edz", "year": year, "department": "edz-yjj",
            "entries": [{"enterprise": "jinhua", "frequency": 4}, {"enterprise": "xinfeng", "frequency": 4}]})
        if year == 2028:
            fire("annual_plan", plan, "file", "qian.jianguan")
    risk = {k: v for k, v in body_for(WORKFLOWS["risk"], WORKFLOWS["risk"].create_event).items()
            if k != "comment"}
    identified = [create("risk", "li.anquan", risk) for _ in range(2)]
    fire("risk", identified[1], "evaluate", "li.anquan", method="lec", factors={"L": 3, "E": 6, "C": 15})
    checklists.load_shipped(session)
    for key in ("jinhua-team-a", "jinhua-team-b"):
        plans.add(session, plans.PlanSpec(f"matrix-{key}", key, active_from=at.date()))
    materialize(session, as_of=at)
    task = session.connection().execute(select(ENTITY_TABLES["inspection"].c.code).order_by(
        ENTITY_TABLES["inspection"].c.id.desc())).scalars().first()
    session.rollback()
    fire("inspection", task, "start", "li.anquan")
    materialize_reports(session, as_of=at)
    materialize_duties(session, as_of=at)  # due; then one done and one missed
    duties = session.connection().execute(select(ENTITY_TABLES["duty"].c.code).where(
        ENTITY_TABLES["duty"].c.kind == "risk_commitment").order_by(
        ENTITY_TABLES["duty"].c.id)).scalars().all()
    session.rollback()
    fire("duty", duties[0], "complete", "wang.zhuren", evidence=[dict(SEEDED_EVIDENCE[0])])
    state_engine.fire(session, WORKFLOWS["duty"], duties[1], "miss", actor="system",
                      as_of=at + timedelta(days=2))


def representatives(conn: Connection) -> list[tuple[str, Any]]:
    """One entity per (workflow, state) the data holds: the first by id."""
    found = []
    for name, table in ENTITY_TABLES.items():
        seen: set[str] = set()
        for row in conn.execute(select(table).order_by(table.c.id)).all():
            if row.state not in seen:
                seen.add(row.state)
                found.append((name, row))
    return found


@pytest.fixture
def demo_db(org: Session, engine: Engine, tmp_path: Path) -> Iterator[tuple[Engine, Tokens]]:
    build_demo(org, tmp_path / "demo")
    tokens = Tokens(engine)
    for person in PEOPLE:
        tokens.secret(person)
    org.rollback()
    yield engine, tokens


class Harness:
    """The app bound to one connection in a transaction; ``case()`` is a savepoint rolled back."""

    def __init__(self, conn: Connection, app: FastAPI) -> None:
        self.conn, self.app = conn, app
        self.outer = conn.begin()

    def case(self) -> Any:
        return self.conn.begin_nested()

    def engine_verdict(self, workflow: Any, entity_id: int, event: str, person: str,
                       body: dict[str, Any]) -> tuple[int, str | None]:
        """What ``engine.fire`` says to the same request, as (status, error kind); rolled back."""
        savepoint = self.case()
        data = {k: v for k, v in body.items() if k not in ("comment", "role")}
        try:
            with Session(self.conn, expire_on_commit=False) as session:
                set_origin(session, Origin(channel="api", credential=None,
                                           tolerance=timedelta(seconds=300)))
                set_rules(session, self.app.state.rules)
                try:
                    state_engine.fire(session, workflow, entity_id, event, actor=person,
                                      comment=body.get("comment"), data=data)
                except SafeloopError as exc:
                    return VERDICT[next(c.__name__ for c in type(exc).__mro__ if c.__name__ in VERDICT)]
                return 200, None
        finally:
            savepoint.rollback()


def test_role_event_matrix_matches_the_engine(demo_db: tuple[Engine, Tokens], db_url: str,
                                              tmp_path: Path) -> None:
    engine, tokens = demo_db
    conn = engine.connect()
    harness = Harness(conn, real_app(api_settings(db_url, tmp_path), conn))
    stats = {"cases": 0, "done": 0, "refused": 0, "states": 0}
    try:
        with TestClient(harness.app) as client:
            entities = representatives(conn)
            plain = Plain(conn, yaml.safe_load(DEMO_ORG.read_text(encoding="utf-8")))
            assert {name for name, _ in entities} == set(WORKFLOWS)
            stats["states"] = len(entities)
            for name, row in entities:
                workflow = WORKFLOWS[name]
                for person in PEOPLE:
                    headers = tokens.headers(person)
                    savepoint = harness.case()
                    shown = client.get(f"{API}/{name}/{row.code}", headers=headers)
                    savepoint.rollback()
                    if not plain.sees(person, name, row):
                        assert shown.status_code == 404, (name, row.code, person)
                        continue
                    assert shown.status_code == 200, (name, row.code, shown.text)
                    may = [e["event"] for e in shown.json()["allowed_events"]]
                    savepoint = harness.case()  # a session on the connection: in a savepoint
                    with Session(conn) as s:
                        engine_says = [r.name for r in state_engine.allowed_events(
                            s, workflow, row.id, person)]
                    savepoint.rollback()
                    held = plain.roles_at(person, name, row)
                    by_rules = [r.name for r in workflow.events_from(row.state) if held & set(r.roles)]
                    if person in AUDITORS:
                        assert may == [] and by_rules == [], person
                    else:
                        assert may == engine_says == by_rules, (name, row.state, person)
                    for event in workflow.events:
                        _one_case(client, harness, workflow, row, person, event, may, headers, stats)
    finally:
        harness.outer.rollback()
        conn.close()
    assert stats["done"] >= 20 and stats["refused"] >= 200 and stats["states"] >= 18, stats


def _one_case(client: TestClient, harness: Harness, workflow: Any, row: Any, person: str,
              event: str, may: list[str], headers: dict[str, str], stats: dict[str, int]) -> None:
    name = workflow.name
    body = body_for(workflow, workflow.events[event])
    expected = harness.engine_verdict(workflow, row.id, event, person, body)
    savepoint = harness.case()
    try:
        before = written(harness.conn)
        answer = client.post(f"{API}/{name}/{row.code}/events/{event}", json=body, headers=headers)
        where = (name, row.code, row.state, person, event, answer.text[:300])
        stats["cases"] += 1
        if person in AUDITORS:  # read-only: refused before the engine is asked
            assert expected[0] != 200 and answer.status_code == 403, where
            assert answer.json()["error"] == "permission_denied", where
        elif answer.status_code == 200:
            assert expected == (200, None), where
        else:
            assert (answer.status_code, answer.json()["error"]) == expected, where
        if event in may:
            assert answer.status_code != 403 or answer.json()["error"] == "guard_failed", where
        else:
            shape = answer.json()
            assert answer.status_code == 403, where
            assert shape["error"] in ("permission_denied", "transition_not_allowed"), where
            assert is_zh(shape["message"]), where
            if person not in AUDITORS:
                assert shape["state"] == row.state and shape["allowed_events"] == may, where
        if answer.status_code == 200:
            stats["done"] += 1
        else:
            stats["refused"] += 1
            assert written(harness.conn) == before, where
            assert harness.conn.execute(select(workflow.table.c.version, workflow.table.c.state).where(
                workflow.table.c.id == row.id)).one() == (row.version, row.state), where
    finally:
        savepoint.rollback()


def test_auditor_every_post_is_403_and_writes_nothing(demo_db: tuple[Engine, Tokens], db_url: str,
                                                      tmp_path: Path) -> None:
    engine, tokens = demo_db
    app = real_app(api_settings(db_url, tmp_path), engine)
    with engine.connect() as conn:
        entities = representatives(conn)
        before = written(conn)
        conn.rollback()
    headers = tokens.headers("he.shenji")
    posts = 0
    with TestClient(app) as client:
        for route in app.routes:
            if "POST" not in getattr(route, "methods", ()):
                continue
            path: str = route.path  # type: ignore[attr-defined]
            if not path.startswith(API + "/"):  # the web pages: cookies and CSRF, tests/web
                continue
            if path in OWN_ACCOUNT:  # signing in and out, one's own password: no state change
                continue
            if path == f"{API}/evidence":
                jpeg = b"\xff\xd8\xff" + b"0" * 64
                answer = client.post(path, headers=headers, files={"file": ("a.jpg", jpeg)})
            elif "/events/" in path:
                name, event = path.removeprefix(API + "/").split("/")[0], path.rsplit("/", 1)[-1]
                workflow = WORKFLOWS[name]
                code = next(r.code for n, r in entities if n == name)
                answer = client.post(re.sub(r"\{code[^}]*\}", code, path), headers=headers,
                                     json=body_for(workflow, workflow.events[event]))
            else:
                workflow = WORKFLOWS[path.removeprefix(API + "/")]
                answer = client.post(path, headers=headers, json=body_for(workflow, workflow.create_event))
            assert answer.status_code == 403 and answer.json()["error"] == "permission_denied", (
                path, answer.text)
            posts += 1
        reads = [client.get(f"{API}/{name}/{row.code}", headers=headers) for name, row in entities]
        assert all(r.status_code == 200 for r in reads)  # their jurisdiction: every demo entity
        assert client.get(f"{API}/audit", headers=headers).status_code == 200
    assert posts > 50
    with engine.connect() as conn:
        assert written(conn) == before


def test_two_clients_on_one_version_exactly_one_wins(demo_db: tuple[Engine, Tokens], db_url: str,
                                                     tmp_path: Path) -> None:
    """Two clients (two TestClients, two threads) fire on the same ETag at once, for a hazard and
    a risk: one 200, one 409; then the chain verifies (route and ``states.audit.verify``) and the
    replay of the trail agrees with the tables."""
    engine, tokens = demo_db
    app = real_app(api_settings(db_url, tmp_path), engine)
    with engine.connect() as conn:
        table = WORKFLOWS["hazard"].table
        hazard = conn.execute(select(table.c.code).join(UNIT, UNIT.c.id == table.c.unit_id).where(
            table.c.state == "planning", UNIT.c.key == "jinhua-team-tank")).scalars().first()
        risk = conn.execute(select(WORKFLOWS["risk"].table.c.code).where(
            WORKFLOWS["risk"].table.c.state == "approved")).scalars().first()
        conn.rollback()
    races = [("hazard", hazard, "extend_deadline", ("qian.jianguan", "wang.zhuren")),
             ("risk", risk, "report_change", ("li.anquan", "wang.zhuren"))]
    with engine.connect() as conn:
        recorded = {code: _count(conn, code, event) for _, code, event, _ in races}
        conn.rollback()
    with TestClient(app) as first, TestClient(app) as second:
        for name, code, event, people in races:
            assert code, name
            shown = first.get(f"{API}/{name}/{code}", headers=tokens.headers(people[0]))
            etag = shown.headers["etag"]
            body = body_for(WORKFLOWS[name], WORKFLOWS[name].events[event])
            barrier = threading.Barrier(2)
            answers: dict[str, Any] = {}

            def fire(client: TestClient, person: str, code: str = code, name: str = name,
                     event: str = event, body: dict[str, Any] = body, barrier: Any = barrier,
                     answers: dict[str, Any] = answers, etag: str = etag) -> None:
                barrier.wait()
                answers[person] = client.post(f"{API}/{name}/{code}/events/{event}", json=body,
                                              headers=tokens.headers(person, **{"If-Match": etag}))

            threads = [threading.Thread(target=fire, args=(c, p)) for c, p in zip((first, second), people,
                                                                                 strict=True)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            statuses = sorted(a.status_code for a in answers.values())
            assert statuses == [200, 409], {p: a.text for p, a in answers.items()}
            loser = next(a for a in answers.values() if a.status_code == 409).json()
            assert loser["error"] == "conflict" and is_zh(loser["message"]) and "state" in loser
            winner = next(a for a in answers.values() if a.status_code == 200)
            assert winner.headers["etag"] == f'"{int(etag.strip(chr(34))) + 1}"'
        verified = first.get(f"{API}/audit/verify", headers=tokens.headers("he.shenji"))
        assert verified.status_code == 200 and verified.json()["ok"] is True, verified.text
    with engine.connect() as conn:
        assert verify(conn).ok
        conn.rollback()
        report = replay(conn)
        assert report.ok, report
        for _, code, event, _ in races:  # exactly one event recorded per race
            assert _count(conn, code, event) == recorded[code] + 1


def _count(conn: Connection, code: str, event: str) -> int:
    return int(conn.execute(select(func.count()).select_from(AUDIT_ENTRY).where(
        AUDIT_ENTRY.c.entity_code == code, AUDIT_ENTRY.c.event == event)).scalar_one())
