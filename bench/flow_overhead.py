"""What the Prefect flow adds to the deadline sweep: ``sweep_deadlines(...)`` vs the same work direct.

The same fixture as ``bench.sweep`` (rectifying hazards, 1 % overdue) at two sizes, 100,000 and
1,000,000 hazards (1,000 and 10,000 overdue), each run on fresh identical copies:

* direct: ``flows.sweep_deadlines.sweep_task.fn(as_of, None, None)``, i.e. the
  task's body without Prefect: settings, a new engine and session, ``states.jobs.sweep.sweep``;
* flow: ``flows.sweep_deadlines.sweep_deadlines(as_of=...)``, the real flow run
  (one task run) against Prefect's ephemeral server.

The difference (flow - direct) is Prefect's cost; it should stay roughly constant whatever the
size. Target: <= 3 s at each size. Set-up, reported apart and not in the per-run figures: the
ephemeral server is started explicitly first (its start-up time), then one warm-up flow run on a
ledger with no hazards takes the remaining one-time costs (client, engine imports), and a second
empty run shows the fixed per-run cost. Flow runs are timed with the heartbeat tail disabled,
``temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None})``: otherwise each run ends
with a ~1 s wait for its heartbeat thread. Prefect is imported only here, after PREFECT_HOME (a
temp dir), PREFECT_SERVER_ANALYTICS_ENABLED=false and
PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120 are set, so keep this benchmark last in a
run. The server's own CPU (a subprocess) is read from /proc and reported per flow run.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench import sweep as sweep_bench
from bench.common import (
    Result,
    Stopwatch,
    check_chain,
    copy_database,
    new_database,
    remove_database,
    scratch_dir,
)
from flows.common import prefect_defaults

NAME = "flow_overhead"
MAX_EXTRA_SECONDS = 3.0
AS_OF = sweep_bench.AS_OF
_ENV = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def _prefect_environment() -> str | None:
    """Point Prefect at a private home before its first import; returns that home (or None if
    Prefect was already imported, when only the settings it has not read yet can change)."""
    if "prefect" in sys.modules:
        return None
    home = tempfile.mkdtemp(prefix="safeloop-bench-prefect-home-")
    # Registered before the server starts, so it runs after the server's own atexit stop.
    atexit.register(shutil.rmtree, home, True)
    os.environ["PREFECT_HOME"] = home
    for name, value in _ENV.items():
        os.environ.setdefault(name, value)
    prefect_defaults()  # log level WARNING: the flow's log_prints lines stay quiet
    return home


def _server_process() -> Any:
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer._instances.get(None)
    return getattr(server, "server_process", None)


def _server_cpu() -> float | None:
    """user + system CPU seconds of the ephemeral server subprocess so far (Linux /proc)."""
    process = _server_process()
    if process is None:
        return None
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _start_server() -> float | None:
    """Start the ephemeral server now (what the first flow run would do); its start-up time."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return None  # a real server is configured: there is nothing to start
    start = time.perf_counter()
    SubprocessASGIServer().start()
    return time.perf_counter() - start


def _fixture(tmp: Path, hazards: int) -> tuple[Path, sweep_bench.Fixture]:
    seed = tmp / f"seed-{hazards}.db"
    return seed, sweep_bench.seed_hazards(seed, hazards)


def run(quick: bool = False, profile: bool = False) -> list[Result]:
    sizes, reps = ((10_000, 100_000), 1) if quick else ((100_000, 1_000_000), 2)
    home = _prefect_environment()
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    from flows.common import use_database
    from flows.sweep_deadlines import sweep_deadlines, sweep_task

    results: list[Result] = []
    with scratch_dir(NAME) as tmp, ExitStack() as stack:
        stack.enter_context(temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}))
        server_start = _start_server()
        empty = tmp / "empty.db"
        new_database(empty).dispose()
        url = f"sqlite:///{empty}"
        t0 = time.perf_counter()
        with use_database(url):  # the database is never a flow parameter
            sweep_deadlines(as_of=AS_OF)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        with use_database(url):
            sweep_deadlines(as_of=AS_OF)
        empty_run = time.perf_counter() - t0
        setup = (f"server start-up {server_start:.1f} s, " if server_start is not None
                 else "a configured server (PREFECT_API_URL), ")
        setup += (f"first (warm-up) flow run {first:.2f} s, then an empty-ledger flow run "
                  f"{empty_run:.2f} s")
        for hazards in sizes:
            seed, fixture = _fixture(tmp, hazards)
            flow, direct = Stopwatch(profile), Stopwatch()
            pairs: list[tuple[float, float]] = []
            server_cpu: list[float] = []
            for k in range(reps):
                ours, theirs = tmp / f"flow-{k}.db", tmp / f"direct-{k}.db"
                copy_database(seed, ours)
                copy_database(seed, theirs)
                before = (flow.seconds, direct.seconds)
                for side in ((0, 1) if k % 2 == 0 else (1, 0)):
                    if side == 0:
                        cpu0 = _server_cpu()
                        with use_database(f"sqlite:///{ours}"), flow.lap():
                            via_flow = sweep_deadlines(as_of=AS_OF)
                        cpu1 = _server_cpu()
                        if cpu0 is not None and cpu1 is not None:
                            server_cpu.append(cpu1 - cpu0)
                    else:
                        with use_database(f"sqlite:///{theirs}"), direct.lap():
                            plain = sweep_task.fn(AS_OF, None, None)
                pairs.append((flow.seconds - before[0], direct.seconds - before[1]))
                for report in (via_flow, plain):
                    if report["escalations"] != dict(fixture.events) or report["refused"]:
                        raise AssertionError(f"sweep report {report}, expected "
                                             f"{dict(fixture.events)}")
                check_chain(ours, 1 + fixture.total_events)
                check_chain(theirs, 1 + fixture.total_events)
                remove_database(ours)
                remove_database(theirs)
            remove_database(seed)
            flow.print_profile(f"{NAME} {hazards:,}")
            extra = [f - d for f, d in pairs]
            size = f"{hazards / 1e6:g}M" if hazards >= 1_000_000 else f"{hazards // 1000:,}k"
            # CPU is steadier than wall time on a shared box: this process's, plus the server's.
            cpu = (f"; CPU per run: flow {flow.cpu_seconds / reps:.2f} s here")
            if server_cpu:
                cpu += f" + {sum(server_cpu) / len(server_cpu):.2f} s in the ephemeral server"
            cpu += f", direct {direct.cpu_seconds / reps:.2f} s"
            results.append(Result.of(
                f"{NAME}@{size}", fixture.total_events, flow, direct, 0.0, runs=reps,
                max_extra_seconds=MAX_EXTRA_SECONDS,
                notes=f"{hazards:,} hazards, {fixture.overdue:,} overdue, "
                      f"{fixture.total_events:,} escalations; flow/direct s per run: "
                      + "; ".join(f"{f:.2f}/{d:.2f}" for f, d in pairs)
                      + f"; flow - direct = {', '.join(f'{e:+.2f}' for e in extra)} s{cpu}; "
                      f"heartbeat tail disabled; set-up (not counted): {setup}"
                      + ("" if home else "; Prefect was imported before this benchmark, so "
                                         "PREFECT_HOME was not redirected"),
            ))
    return results
