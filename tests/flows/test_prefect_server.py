"""The deployment path end to end: a real Prefect server, the repository's prefect.yaml deployed
with ``prefect deploy --all``, a flow run started by name and executed by a process worker.

One slow test (~60-120 s): server, work pool, deploy, run, worker --run-once, then the run's state
on the server and the checkpoint row it wrote in the database.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import Session

from models.db import make_engine
from models.tables import AUDIT_CHECKPOINT
from states import audit
from states.jobs import checkpoint
from tests.helpers import fresh_database

ROOT = Path(__file__).resolve().parents[2]  # the repository: prefect.yaml and flows/
PREFECT = [sys.executable, "-m", "prefect"]
POOL = "safeloop"  # the work pool every deployment of prefect.yaml names
DEPLOYMENT = "audit-checkpoint/audit-checkpoint"
READY_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def prefect(env: dict[str, str], *args: str, timeout: float = 120, cwd: Path | None = None,
            ) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*PREFECT, *args], env=env, cwd=cwd or ROOT, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"prefect {' '.join(args)}\n{done.stdout}\n{done.stderr}"
    return done


@contextmanager
def started(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A subprocess in its own process group, always stopped (TERM, then KILL) on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)  # the group we created: uvicorn's children too
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)


def wait_healthy(api: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        assert server.poll() is None, f"prefect server exited:\n{log.read_text(errors='replace')}"
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"prefect server not healthy after {READY_TIMEOUT_S} s:\n"
                f"{log.read_text(errors='replace')}")


@pytest.mark.slow
def test_deploy_and_worker_run_audit_checkpoint(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SAFELOOP_"))}
    env.update({
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "INFO",
        # No scheduler: the deployments' crons (sweep every 15 min) must not add runs of their own.
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
    })
    prefect_yaml = (ROOT / "prefect.yaml").read_bytes()

    with fresh_database("sqlite", tmp_path) as url:
        with ExitStack() as stack:  # the server and worker, stopped whatever happens
            server_log = tmp_path / "server.log"
            server = stack.enter_context(started(
                [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port),
                 "--analytics-off"], env, server_log))
            wait_healthy(api, server, server_log)

            prefect(env, "work-pool", "create", POOL, "--type", "process")
            deployed = prefect(env, "--no-prompt", "deploy", "--all", timeout=180)
            assert (ROOT / "prefect.yaml").read_bytes() == prefect_yaml  # --no-prompt saved nothing
            names = {d["name"] for d in httpx.post(f"{api}/deployments/filter", json={}).json()}
            assert names == {"materialize-inspections", "sweep-deadlines", "audit-checkpoint",
                             "dispatch-notifications"}, \
                deployed.stdout

            run = prefect(env, "deployment", "run", DEPLOYMENT)
            runs = httpx.post(f"{api}/flow_runs/filter", json={}).json()
            assert len(runs) == 1, run.stdout
            run_id = runs[0]["id"]
            assert run_id in run.stdout

            # The database and storage folder come from the worker's environment (see prefect.yaml).
            worker_env = {**env, "SAFELOOP_DATABASE_URL": url, "SAFELOOP_STORAGE_DIR": str(store)}
            worker_log = tmp_path / "worker.log"
            worker = stack.enter_context(started(
                [*PREFECT, "worker", "start", "--pool", POOL, "--run-once"], worker_env, worker_log))
            try:
                worker.wait(timeout=240)
            except subprocess.TimeoutExpired:
                pytest.fail(f"worker did not finish:\n{worker_log.read_text(errors='replace')}")
            logs = worker_log.read_text(errors="replace")

            state = httpx.get(f"{api}/flow_runs/{run_id}").json()["state"]
            assert state["type"] == "COMPLETED", f"{state}\n{logs}"
            listed = prefect(env, "flow-run", "ls", "--state-type", "COMPLETED", "-o", "json")
            assert [r["id"] for r in json.loads(listed.stdout)] == [run_id], listed.stdout

        eng = make_engine(url)
        try:
            with Session(eng) as session:
                seq, head = audit.lock_head(session.connection())
                rows = session.connection().execute(
                    select(AUDIT_CHECKPOINT)).mappings().all()
                session.rollback()
                assert [(r["seq"], r["hash"], r["flow_run_id"]) for r in rows] == \
                    [(seq, head, run_id)]
                assert seq > 0  # the demo org's load is on the chain
                points = checkpoint.read_file(store / checkpoint.CHECKPOINT_FILE)
                assert [(p.seq, p.flow_run_id) for p in points] == [(seq, run_id)]
                assert checkpoint.verify_checkpoints(session, store / checkpoint.CHECKPOINT_FILE) == []
        finally:
            eng.dispose()
