"""Constraint errors read the same on SQLite and PostgreSQL: a duplicate key people chose is
"already exists" (exit 2), a lost race on a generated code is a concurrent update (exit 1)."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from core.errors import ConcurrentUpdate, InvalidInput
from models.tables import HAZARD, INSPECTION_PLAN
from safeloop import checklists, plans
from safeloop.integrity import refusal, violation
from tests.helpers import report


def _copy_row(session: Session, table: object, **changes: object) -> IntegrityError:
    """Insert a copy of the table's first row (new id): the unique index refuses it."""
    conn = session.connection()
    row = dict(conn.execute(select(table)).mappings().first())  # type: ignore[call-overload, arg-type]
    row.pop("id")
    row.update(changes)
    with pytest.raises(IntegrityError) as caught:
        conn.execute(insert(table).values(**row))  # type: ignore[arg-type]
    session.rollback()
    return caught.value


def test_duplicate_plan_key_is_already_exists(org: Session) -> None:
    checklists.load_shipped(org)
    plans.add(org, plans.PlanSpec(key="team-a", unit="jinhua-team-a"))
    exc = _copy_row(org, INSPECTION_PLAN)
    assert violation(exc).kind == "UNIQUE" and violation(exc).table == "inspection_plan"
    error = refusal(exc)
    assert isinstance(error, InvalidInput) and error.exit_code == 2 and "已存在" in error.message


def test_duplicate_hazard_code_is_a_lost_race(org: Session) -> None:
    report(org)
    exc = _copy_row(org, HAZARD, version=1)
    error = refusal(exc)
    assert isinstance(error, ConcurrentUpdate) and error.exit_code == 1
    assert "请重试" in error.message


def test_missing_reference_is_bad_input(org: Session) -> None:
    checklists.load_shipped(org)
    plans.add(org, plans.PlanSpec(key="team-a", unit="jinhua-team-a"))
    exc = _copy_row(org, INSPECTION_PLAN, key="other", unit_id=999_999)
    assert violation(exc).kind == "FOREIGN KEY"
    error = refusal(exc)
    assert isinstance(error, InvalidInput) and "不存在" in error.message
