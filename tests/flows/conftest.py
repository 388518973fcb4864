"""Prefect for the flow tests: a private PREFECT_HOME, no analytics, one test harness per session.

The test modules here import ``flows.*`` (and so Prefect) at collection time, and Prefect reads its
settings and creates ``$PREFECT_HOME`` when first imported: the environment is therefore set when
this conftest is imported, before any test module of this folder, not in a fixture.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

_PREFECT_WAS_IMPORTED = "prefect" in sys.modules
PREFECT_HOME = tempfile.mkdtemp(prefix="safeloop-prefect-home-")
_SAVED = {name: os.environ.get(name) for name in (  # restored at the end of the session
    "PREFECT_HOME", "PREFECT_SERVER_ANALYTICS_ENABLED", "PREFECT_LOGGING_LEVEL",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS")}
os.environ["PREFECT_HOME"] = PREFECT_HOME
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

from flows.common import prefect_defaults  # noqa: E402  (does not import Prefect)

prefect_defaults()  # the slow-start timeout and log level the flows use in production

OWN_SERVER = {"test_prefect_server.py", "test_local_server.py"}  # start `prefect server` themselves
HARNESS_STARTUP_TIMEOUT_S = 120  # ~8-20 s here under load; the default 30 s is too tight


@pytest.fixture(scope="session", autouse=True)
def prefect_harness(request: pytest.FixtureRequest) -> Iterator[None]:
    """A temporary Prefect server (SQLite) for every real flow run of the session."""
    here = Path(__file__).parent
    needed = any(item.path.parent == here and item.path.name not in OWN_SERVER
                 for item in request.session.items)
    try:
        if not needed:  # only tests that start their own server: no harness, no Prefect import
            yield
            return
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
        from prefect.testing.utilities import prefect_test_harness

        if _PREFECT_WAS_IMPORTED:  # imported before this conftest: its home was read already
            warnings.warn("Prefect was imported before tests/flows/conftest.py set PREFECT_HOME",
                          stacklevel=1)
        # Without a heartbeat frequency each flow run skips its ~1 s heartbeat-thread join.
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}), \
                prefect_test_harness(server_startup_timeout=HARNESS_STARTUP_TIMEOUT_S):
            yield
    finally:
        for name, value in _SAVED.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        shutil.rmtree(PREFECT_HOME, ignore_errors=True)
