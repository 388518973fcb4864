"""``safeloop flows run sweep-deadlines`` end to end, as a person runs it: a new process each time.

On a small database (the demo organisation, no hazards), one after the other:

* with a server: ``safeloop server`` started once on a free port (its start-up reported apart),
  each run with ``PREFECT_API_URL`` pointing to it;
* without: no ``PREFECT_API_URL``, so each run starts Prefect's ephemeral server (the baseline).

Both sides are whole CLI processes (interpreter, imports, settings, the flow run, exit), timed
by wall clock. Target: <= 5 s per run with the server. ``--quick`` runs 3 + 1 instead of 6 + 2.
Run it directly for the two lines alone: ``.venv/bin/python -m bench.flow_cli``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from bench.common import Result, new_database, scratch_dir
from safeloop.prefect_server import api_url, wait_ready

NAME = "flow_cli"
MAX_SECONDS = 5.0
CLI = [sys.executable, "-c", "from safeloop.cli import run; run()"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run([*CLI, "flows", "run", "sweep-deadlines", "--json"], env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0 or '"refused": 0' not in done.stdout:
        raise AssertionError(f"flows run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return seconds


def run(quick: bool = False, profile: bool = False) -> Result:
    served_runs, ephemeral_runs = (3, 1) if quick else (6, 2)
    home = tempfile.mkdtemp(prefix="safeloop-bench-prefect-home-")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SAFELOOP_"))}
    env.update({"PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    port = _free_port()
    url = api_url("127.0.0.1", port)
    try:
        with scratch_dir(NAME) as tmp:
            db = tmp / "small.db"
            new_database(db).dispose()
            env["SAFELOOP_DATABASE_URL"] = f"sqlite:///{db}"
            start = time.perf_counter()
            server = subprocess.Popen([*CLI, "server", "--port", str(port)], env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
            try:
                wait_ready(url, server)
                ready = time.perf_counter() - start
                served_env = {**env, "PREFECT_API_URL": url}
                _run(served_env)  # warm-up: the server's first flow and task registrations
                served = [_run(served_env) for _ in range(served_runs)]
                ephemeral = [_run(env) for _ in range(ephemeral_runs)]
            finally:
                os.killpg(server.pid, signal.SIGINT)  # Ctrl-C: safeloop server stops Prefect's
                server.wait(timeout=60)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return Result(
        NAME, 1, statistics.mean(served), statistics.mean(ephemeral), 0.0, max_seconds=MAX_SECONDS,
        notes=(f"safeloop flows run sweep-deadlines, demo org, no hazards; with safeloop server "
               f"(ready in {ready:.1f} s, not counted): "
               + ", ".join(f"{s:.2f}" for s in served)
               + " s; baseline = without a server (ephemeral start each run): "
               + ", ".join(f"{s:.2f}" for s in ephemeral) + " s"),
    )


if __name__ == "__main__":
    result = run(quick="--quick" in sys.argv)
    print(f"with safeloop server: {result.seconds:.2f} s per run; without: "
          f"{result.baseline_seconds:.2f} s\n{result.notes}")
