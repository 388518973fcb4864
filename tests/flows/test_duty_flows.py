"""The duty parts of the daily flows: ``materialize-inspections`` creates the rule pack's duties
(idempotent), ``sweep-deadlines`` reports the duties it reminded, missed and escalated."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from core.settings import get_settings
from flows.materialize_inspections import materialize_inspections
from flows.sweep_deadlines import sweep_deadlines
from models.tables import DUTY

AS_OF = datetime(2020, 12, 30, 22, tzinfo=UTC)  # 2020-12-31 06:00 local


@pytest.fixture
def world(org: Session, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("SAFELOOP_DATABASE_URL", db_url)
    get_settings.cache_clear()
    yield org
    get_settings.cache_clear()


def _duties(session: Session) -> int:
    count = session.connection().execute(select(func.count()).select_from(DUTY)).scalar_one()
    session.rollback()
    return int(count)


def test_materialise_then_sweep_duties_through_the_flows(world: Session) -> None:
    first = materialize_inspections.fn(as_of=AS_OF)
    assert first["duties"]["created"] == 15 == _duties(world)
    assert materialize_inspections.fn(as_of=AS_OF)["duties"]["created"] == 0
    swept = sweep_deadlines.fn(as_of=datetime(2021, 1, 1, 1, tzinfo=UTC))  # 09:00 on 1 January
    # past: 31 December's daily duties (3) and 1 January's 08:00 commitment (1); 2020's drills
    # (yearly 2, half-yearly on-site 3 and high-risk 1) and the Q4 technical check (1)
    assert swept["duties_missed"] == 11
    # each at level 1; 31 December's commitment, 25 h late, also at levels 2 and 3
    assert swept["duty_escalations"] == {1: 11, 2: 1, 3: 1}
