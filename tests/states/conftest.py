"""A module-wide database per backend for table-like tests whose many cells each build their own
hazards (or change nothing at all): a fresh migrated database per cell would cost more than the
cells themselves.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from models.db import make_engine
from tests.conftest import BACKENDS
from tests.helpers import fresh_database, load_solo_people


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           ) -> Iterator[tuple[Session, dict[str, str]]]:
    """(session, role -> single-role actor) on the demo org plus the solo people."""
    directory = tmp_path_factory.mktemp("shared")
    with fresh_database(request.param, directory) as url:
        eng = make_engine(url)
        with Session(eng, expire_on_commit=False) as session:
            yield session, load_solo_people(session, directory)
        eng.dispose()
