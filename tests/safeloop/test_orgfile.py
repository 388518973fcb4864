"""Loading the org file: idempotent reloads, updates, role replacement, subtree role coverage."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import select

from models import Person, RoleGrant, Unit
from safeloop import orgfile
from tests.conftest import DEMO_ORG
from tests.helpers import table_counts


def test_reload_is_idempotent(session):
    first = orgfile.load(session, DEMO_ORG)
    assert first.created["unit"] == 10 and first.created["person"] == 11
    before = table_counts(session)
    again = orgfile.load(session, DEMO_ORG)
    assert again.created == {} and again.updated == {}
    after = table_counts(session)
    assert {k: v for k, v in after.items() if k not in ("audit_entry",)} == {
        k: v for k, v in before.items() if k not in ("audit_entry",)}
    assert after["audit_entry"] == before["audit_entry"] + 1  # the load itself is audited


def test_edit_updates_names_paths_and_roles(session, tmp_path: Path):
    orgfile.load(session, DEMO_ORG)
    text = DEMO_ORG.read_text(encoding="utf-8")
    text = text.replace("name: 合成一班", "name: 合成甲班")
    text = text.replace("      - {role: rectifier, unit: jinhua-team-a}\n", "")
    edited = tmp_path / "org.yaml"
    edited.write_text(text, encoding="utf-8")
    report = orgfile.load(session, edited)
    assert report.updated == {"unit": 1}
    assert report.created == {"role_grant_removed": 1}
    unit = session.exec(select(Unit).where(Unit.key == "jinhua-team-a")).one()
    parent = session.exec(select(Unit).where(Unit.key == "jinhua-ws-synth")).one()
    assert unit.name == "合成甲班" and unit.path == f"{parent.path}{unit.id}/"
    sun = session.exec(select(Person).where(Person.key == "sun.banzhang")).one()
    roles = session.exec(select(RoleGrant.role).where(RoleGrant.person_id == sun.id)).all()
    assert roles == ["inspector"]
