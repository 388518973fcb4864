"""No database password in Prefect's records: flow runs take the database from the environment,
never as a parameter (Prefect stores parameters in its database and shows them in its UI), and
what ``safeloop serve`` prints masks the password."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from prefect.client.orchestration import get_client
from typer.testing import CliRunner

from core.settings import Settings, get_settings, mask_url
from flows.sweep_deadlines import sweep_deadlines
from safeloop.cli.flows import serve_banner
from safeloop.cli.main import app

SECRET = "s3cret-Pa55"
AS_OF = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)


@pytest.fixture
def clean_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _with_password(url: str) -> str:
    """The test database's URL with a password added (trust auth ignores it), or as it is."""
    if not url.startswith("postgresql://"):
        return url
    rest = url.removeprefix("postgresql://")
    user, _, host = rest.partition("@")
    return f"postgresql://{user}:{quote(SECRET)}@{host}"


def test_flow_run_parameters_hold_no_password(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture,
                                              clean_settings: None) -> None:
    """A run against an unreachable PostgreSQL with a password: it fails, but neither its
    parameters (read back from Prefect's server) nor its logs nor its state carry the password."""
    monkeypatch.setenv("SAFELOOP_DATABASE_URL",
                       f"postgresql://safeloop:{SECRET}@127.0.0.1:1/safeloop")
    state = sweep_deadlines(as_of=AS_OF, return_state=True)
    assert state.is_failed()
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
    assert run.parameters and "as_of" in run.parameters
    assert "database_url" not in run.parameters
    assert SECRET not in json.dumps(run.parameters, default=str)
    assert "Connection refused" in caplog.text and SECRET not in caplog.text
    assert SECRET not in (state.message or "") and SECRET not in (run.state.message or "")


def test_cli_flows_run_passes_no_url(db_url: str, monkeypatch: pytest.MonkeyPatch,
                                     clean_settings: None) -> None:
    """``safeloop --db URL flows run`` on the real test database: the URL (with a password on
    PostgreSQL) reaches the flow, yet no flow run's parameters name it."""
    url = _with_password(db_url)
    monkeypatch.delenv("SAFELOOP_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["--db", url, "flows", "run", "sweep-deadlines",
                                      "--as-of", "2026-11-02 10:00", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["refused"] == 0  # stderr says which Prefect server ran it
    assert SECRET not in result.output
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(limit=200)
    assert runs
    for run in runs:
        shown = json.dumps(run.parameters, default=str)
        assert "database_url" not in run.parameters and SECRET not in shown
        assert url not in shown and db_url not in shown


@pytest.mark.parametrize(("url", "masked"), [
    (f"postgresql://safeloop:{SECRET}@db.example:5432/safeloop",
     "postgresql://safeloop:***@db.example:5432/safeloop"),
    (f"postgresql+psycopg://u:{quote('p@ss/w:rd')}@h/db", "postgresql+psycopg://u:***@h/db"),
    ("sqlite:///safeloop.db", "sqlite:///safeloop.db"),
    (f"not a url //u:{SECRET}@host", "not a url //u:***@host"),
])
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_serve_banner_masks_the_password() -> None:
    settings = Settings(database_url=f"postgresql://safeloop:{SECRET}@db.example/safeloop")
    line = serve_banner(settings)
    assert SECRET not in line
    assert "postgresql://safeloop:***@db.example/safeloop" in line and "Asia/Shanghai" in line
