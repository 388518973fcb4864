"""Schemathesis against the app's live OpenAPI document: no server error, no undocumented status,
no answer that breaks its documented schema or content type.

The app runs on a real database (SQLite; PostgreSQL too when ``SAFELOOP_TEST_DATABASE_URL`` is
set) with the demo org, a few hazards in several states, and real personal tokens
(``safeloop.accounts.tokens``): a principal who can act on most events, then an auditor (read-only,
the audit routes). Every operation of the document gets a few positive cases (valid by the
schema; some aimed at existing entities' codes, so events really fire or are really refused) and
a few negative ones (invalid by the schema: they must be refused with a documented 4xx).
Generation is derandomized so CI sees the same cases on every run; the run time stays bounded by
``max_examples`` (well under a minute on SQLite).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core.settings import Settings
from safeloop.accounts.tokens import create_token
from safeloop.api.app import API_PREFIX, create_app
from tests.helpers import walk_to

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance]
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 4}
ACTOR = "wang.zhuren"  # principal of the jinhua group: most hazard events are theirs
AUDITOR = "he.shenji"
HAZARD_STATES = ("reported", "rectifying", "pending_acceptance", "planning")
SKIPPED_PATHS = {"/healthz"}  # no token, no input: covered by tests/api/test_routes.py


def _settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=db_url, storage_dir=tmp_path / "store",
                    api_max_upload_bytes=64 * 1024, api_page_size=20, api_page_max=50)


@pytest.fixture
def live(db_url: str, engine: Engine, org: Session, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The app on the demo org with a few hazards, and real bearer headers for two people."""
    codes = []
    for state in HAZARD_STATES:
        hid = walk_to(org, state, grade="major" if state == "planning" else "general")
        codes.append(org.connection().exec_driver_sql(
            f"SELECT code FROM hazard WHERE id = {int(hid)}").scalar_one())
    headers = {}
    for person in (ACTOR, AUDITOR):
        token = create_token(org, person, name="schemathesis", actor="admin")
        headers[person] = {"Authorization": f"Bearer {token.secret}"}
    org.commit()
    app = create_app(_settings(db_url, tmp_path), engine=engine)
    yield {"app": app, "headers": headers, "codes": codes}


def _strategy(operation: Any, mode: GenerationMode, codes: list[str]) -> st.SearchStrategy[Any]:
    """Cases for ``operation``; where it has a ``{code}``, half of them name an existing entity."""
    generated = operation.as_strategy(generation_mode=mode)
    if "{code}" not in operation.path or mode is GenerationMode.NEGATIVE:
        return generated
    aimed = st.sampled_from(codes).flatmap(
        lambda code: operation.as_strategy(generation_mode=mode, path_parameters={"code": code}))
    return st.one_of(generated, aimed)


def _run(operation: Any, mode: GenerationMode, headers: dict[str, str], codes: list[str],
         seen: Counter[int]) -> None:
    @settings(max_examples=EXAMPLES[mode], deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=_strategy(operation, mode, codes))
    def check(case: Any) -> None:
        response = case.call(headers=headers)
        seen[response.status_code] += 1
        case.validate_response(response, checks=CHECKS, headers=headers)

    check()


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {str(exc)[:400]}"]
    for sub in getattr(exc, "exceptions", ()):
        parts.append(f"  - {type(sub).__name__}: {str(sub)[:600]}")
    return "\n".join(parts)


def fuzz(app: FastAPI, headers: dict[str, str], codes: list[str], seen: Counter[int],
         keep: Callable[[Any], bool] = lambda _op: True) -> list[str]:
    """Every operation of the live document, positive then negative; the failures as text and
    the statuses answered counted in ``seen``."""
    schema = schemathesis.openapi.from_asgi(f"{API_PREFIX}/openapi.json", app)
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20, "the document lists the generated workflow routes"
    for operation in operations:
        if operation.path in SKIPPED_PATHS or not keep(operation):
            continue
        for mode in EXAMPLES:
            try:
                _run(operation, mode, headers, codes, seen)
            except Unsatisfiable:  # nothing to negate (no parameters, no body): no such cases
                continue
            except (Exception, FailureGroup) as exc:  # noqa: BLE001 - collect all, report together
                failures.append(f"{operation.method.upper()} {operation.path} ({mode.value}): "
                                f"{_describe(exc)}")
    return failures


def test_schemathesis_as_principal(live: dict[str, Any]) -> None:
    seen: Counter[int] = Counter()
    failures = fuzz(live["app"], live["headers"][ACTOR], live["codes"], seen)
    assert not failures, "\n\n".join(failures)
    # the run reached the handlers: reads answered, events fired and refused, bad input refused
    assert seen[200] > 20 and seen[404] and seen[422], seen
    assert seen[403] or seen[409], seen


def test_schemathesis_as_auditor(live: dict[str, Any]) -> None:
    """The auditor's pass: the reads and the audit routes (events are refused read-only: 403)."""
    seen: Counter[int] = Counter()
    failures = fuzz(live["app"], live["headers"][AUDITOR], live["codes"], seen,
                    keep=lambda op: op.method.upper() == "GET" or "/events/" in op.path)
    assert not failures, "\n\n".join(failures)
    assert seen[200] > 20 and seen[403], seen  # audit routes answer; events are refused
