"""The scope matrix through the API (issue 13): every read route x every person of the demo org
and the scope world's extra people, with real tokens and no dependency override.

Each answer is compared with an independent computation (``tests.scope_world.Plain``: Python
over all rows, the org file's own roles): lists (every page) and their filters, show (in scope:
200; out of scope: 404 with the very body of a code that does not exist), an event sent to an
entity out of scope (the same 404), the inbox (items and counts by kind, overdue included), the
audit query and export (auditors: their jurisdiction's trail; everyone else 403) and verify.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.tables import AUDIT_ENTRY, ENTERPRISE, ENTITY_TABLES, UNIT
from safeloop.api.queries import due_column
from safeloop.api.routes.bodies import body_model, required
from states.registry import WORKFLOWS
from tests.api.realauth import Tokens, api_settings, real_app, written
from tests.scope_world import PEOPLE, Plain, build_world

PERSONS = [p for p in PEOPLE if p not in ("nobody.here", "system")]  # no token can name these
GHOST = "ZZ-404404"  # a code no row has
API = "/api/v1"


@pytest.fixture
def scoped(session: Session, engine: Engine, db_url: str,
           tmp_path: Path) -> Iterator[tuple[Plain, TestClient, Tokens, datetime]]:
    document = build_world(session, tmp_path)
    now = datetime.now(UTC)
    _spread(session, now)
    tokens = Tokens(engine)
    for person in PERSONS:  # every token (and its audit rows) made before anything is compared
        tokens.secret(person)
    plain = Plain(session.connection(), document)
    session.rollback()  # on SQLite every transaction takes the write lock: hold none
    with TestClient(real_app(api_settings(db_url, tmp_path), engine)) as client:
        yield plain, client, tokens, now


def _spread(session: Session, now: datetime) -> None:
    """Give the world's rows real states (each workflow's states in turn) and due times on both
    sides of now, so the inbox and the overdue filter have something to find and to leave out."""
    conn = session.connection()
    for workflow in WORKFLOWS.values():
        table, states = workflow.table, list(workflow.states)
        due = due_column(workflow)
        for n, entity_id in enumerate(conn.execute(select(table.c.id).order_by(table.c.id)).scalars()):
            values: dict[str, Any] = {"state": states[n % len(states)]}
            if due is not None:
                values[due.name] = now + (timedelta(days=-2) if n % 2 else timedelta(days=9))
            conn.execute(update(table).where(table.c.id == entity_id).values(**values))
    session.commit()


def _rows(session: Session, name: str) -> list[Any]:
    table = ENTITY_TABLES[name]
    found = session.connection().execute(select(table)).all()
    session.rollback()
    return found


def _pages(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every item of a listing, following next_cursor."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        answer = client.get(path, headers=headers, params={
            "limit": 50, **params, **({"cursor": cursor} if cursor else {})})
        assert answer.status_code == 200, (path, answer.text)
        page = answer.json()
        items += page["items"]
        if not (cursor := page["next_cursor"]):
            return items


def test_lists_return_exactly_the_scope(scoped: tuple[Plain, TestClient, Tokens, datetime],
                                        session: Session) -> None:
    plain, client, tokens, now = scoped
    jinhua = session.connection().execute(
        select(ENTERPRISE.c.id).where(ENTERPRISE.c.key == "jinhua")).scalar_one()
    plant = session.connection().execute(select(UNIT.c.id, UNIT.c.path).where(
        UNIT.c.key == "jinhua-plant1")).one()
    session.rollback()
    seen_total = 0
    for name, workflow in WORKFLOWS.items():
        rows = _rows(session, name)
        assert rows, name
        due = due_column(workflow)
        for person in PERSONS:
            headers = tokens.headers(person)
            visible = [r for r in rows if plain.sees(person, name, r)]
            listed = _pages(client, f"{API}/{name}", headers)
            codes = [i["code"] for i in listed]
            assert len(codes) == len(set(codes)) and set(codes) == {r.code for r in visible}, (
                person, name)
            seen_total += len(codes)
            if workflow.scope != "unit":
                continue
            # the filters narrow the scope, never widen it
            by_enterprise = {i["code"] for i in _pages(client, f"{API}/{name}", headers,
                                                       enterprise="jinhua")}
            assert by_enterprise == {r.code for r in visible if r.enterprise_id == jinhua}, (person, name)
            by_unit = {i["code"] for i in _pages(client, f"{API}/{name}", headers, unit="jinhua-plant1")}
            under = {i for i, p in plain.unit_by_id.items() if p.startswith(plant.path)}
            assert by_unit == {r.code for r in visible if r.unit_id in under}, (person, name)
            if due is not None:
                late = {i["code"] for i in _pages(client, f"{API}/{name}", headers, overdue="true")}
                assert late == {r.code for r in visible if _late(r, due.name, workflow, now)}, (
                    person, name)
    assert seen_total > 0


def _late(row: Any, due: str, workflow: Any, now: datetime) -> bool:
    value = getattr(row, due)
    if value is None or row.state in workflow.terminal:
        return False
    return (value if value.tzinfo else value.replace(tzinfo=UTC)) < now


def test_show_in_scope_and_not_found_out_of_it(scoped: tuple[Plain, TestClient, Tokens, datetime],
                                               session: Session) -> None:
    plain, client, tokens, _ = scoped
    checked = {"in": 0, "out": 0}
    before = written(session.connection())
    session.rollback()
    for name, workflow in WORKFLOWS.items():
        rows = sorted(_rows(session, name), key=lambda r: r.id)
        quiet = next((rule for rule in workflow.events.values()
                      if not required(body_model(workflow, rule))), None)
        for person in PERSONS:
            headers = tokens.headers(person)
            missing = client.get(f"{API}/{name}/{GHOST}", headers=headers)
            assert missing.status_code == 404 and "etag" not in missing.headers
            inside = [r for r in rows if plain.sees(person, name, r)]
            outside = [r for r in rows if not plain.sees(person, name, r)]
            for row in {id(r): r for r in inside[:1] + inside[-1:]}.values():
                shown = client.get(f"{API}/{name}/{row.code}", headers=headers)
                assert shown.status_code == 200, (person, name, shown.text)
                assert shown.json()["entity"]["code"] == row.code
                assert shown.headers["etag"] == f'"{row.version}"'
                checked["in"] += 1
            for row in {id(r): r for r in outside[:1] + outside[-1:]}.values():
                hidden = client.get(f"{API}/{name}/{row.code}", headers=headers)
                assert hidden.status_code == 404, (person, name, row.code)
                assert "etag" not in hidden.headers
                assert hidden.json() == _as_missing(missing.json(), row.code), (person, name)
                if quiet is not None:  # acting on it: the same "not found", nothing written
                    fired = client.post(f"{API}/{name}/{row.code}/events/{quiet.name}", headers=headers)
                    assert fired.status_code == 404, (person, name, quiet.name, fired.text)
                    ghost = client.post(f"{API}/{name}/{GHOST}/events/{quiet.name}", headers=headers)
                    assert fired.json() == _as_missing(ghost.json(), row.code)
                checked["out"] += 1
    assert checked["in"] > 50 and checked["out"] > 50
    assert written(session.connection()) == before


def _as_missing(body: dict[str, Any], code: str) -> dict[str, Any]:
    """The body a code that does not exist gets, with ``code`` in its place."""
    loaded: dict[str, Any] = json.loads(json.dumps(body, ensure_ascii=False).replace(GHOST, code))
    return loaded


def test_inbox_is_what_the_person_may_act_on(scoped: tuple[Plain, TestClient, Tokens, datetime],
                                            session: Session) -> None:
    plain, client, tokens, now = scoped
    rows = {name: _rows(session, name) for name in WORKFLOWS}
    nonempty = 0
    for person in PERSONS:
        acting = any(r["role"] != "auditor" for r in plain.roles[person])
        expected: dict[str, set[str]] = {}
        late: dict[str, int] = {}
        for name, workflow in WORKFLOWS.items():
            due = due_column(workflow)
            for row in rows[name]:
                held = plain.roles_at(person, name, row)
                if not acting or row.state in workflow.terminal or not any(
                        held & set(rule.roles) for rule in workflow.events_from(row.state)):
                    continue
                expected.setdefault(name, set()).add(row.code)
                late[name] = late.get(name, 0) + bool(due is not None and _late(row, due.name, workflow, now))
        answer = client.get(f"{API}/inbox", params={"limit": 50}, headers=tokens.headers(person))
        assert answer.status_code == 200, answer.text
        inbox = answer.json()
        assert {k: (c["total"], c["overdue"]) for k, c in inbox["counts"].items()} == {
            k: (len(v), late[k]) for k, v in expected.items()}, person
        assert inbox["total"] == sum(len(v) for v in expected.values())
        every = {(name, code) for name, codes in expected.items() for code in codes}
        items = [(i["kind"], i["code"]) for i in inbox["items"]]
        assert set(items) <= every and len(items) == min(50, len(every)), person
        dues = [i["due"] for i in inbox["items"] if i["due"] is not None]
        assert [datetime.fromisoformat(d) for d in dues] == sorted(datetime.fromisoformat(d) for d in dues)
        nonempty += bool(every)
    assert nonempty >= 5


def test_audit_routes_show_the_auditors_jurisdiction(
        scoped: tuple[Plain, TestClient, Tokens, datetime], session: Session) -> None:
    plain, client, tokens, _ = scoped
    auditors = 0
    for person in PERSONS:
        headers = tokens.headers(person)
        is_auditor = any(r["role"] == "auditor" for r in plain.roles[person])
        query = client.get(f"{API}/audit", params={"limit": 50}, headers=headers)
        export = client.get(f"{API}/audit/export", headers=headers)
        verify = client.get(f"{API}/audit/verify", headers=headers)
        if not is_auditor:
            for answer in (query, export, verify):
                assert answer.status_code == 403 and answer.json()["error"] == "permission_denied", person
            continue
        auditors += 1
        assert verify.status_code == 200 and "ok" in verify.json()
        queried = [r["seq"] for r in _pages(client, f"{API}/audit", headers)]
        assert export.status_code == 200
        exported = [json.loads(line)["seq"] for line in export.text.splitlines()]
        csv_lines = client.get(f"{API}/audit/export", params={"format": "csv"}, headers=headers).text
        expected = _audit_expected(session, plain, person)
        assert queried == exported == sorted(expected), person
        assert len(csv_lines.splitlines()) == len(expected) + 1
        # by entity type: exactly the entities seen (each has its own audit row)
        for name in ENTITY_TABLES:
            ids = {r["entity_id"] for r in _pages(client, f"{API}/audit", headers, entity_type=name)}
            assert ids == {r.id for r in _rows(session, name) if plain.sees(person, name, r)}, (
                person, name)
    assert auditors == 3


def _audit_expected(session: Session, plain: Plain, person: str) -> set[int]:
    """Audit rows of the entities the person sees; administrative rows for top auditors only."""
    conn = session.connection()
    seen = {name: {r.id for r in conn.execute(select(table)).all() if plain.sees(person, name, r)}
            for name, table in ENTITY_TABLES.items()}
    rows = conn.execute(select(AUDIT_ENTRY.c.seq, AUDIT_ENTRY.c.entity_type, AUDIT_ENTRY.c.entity_id)).all()
    session.rollback()
    top = plain.top_auditor(person)
    return {seq for seq, kind, eid in rows
            if (kind in seen and eid in seen[kind]) or (kind not in ENTITY_TABLES and top)}
