"""The fuzz suite's command server: one long-lived child process that runs ``safeloop`` argv.

Starting ``safeloop`` costs seconds (Prefect, SQLAlchemy, Rich imports), so the suite starts this
server once and sends it one request per invocation as a JSON line on stdin:
``{"argv": [...], "env": {...}, "cwd": "...", "bound": 10}``. It runs the real typer app in this
process (Click's test runner captures stdout and stderr separately) and answers with one JSON line:
exit code, both streams, the uncaught exception's traceback if any, whether the bound was hit,
and the seconds taken. ``argv`` strings may carry lone surrogates: that is how Python hands
invalid UTF-8 argv bytes to a program (``os.fsdecode``), and JSON carries them unchanged.

Guards so that hostile input cannot take the machine down: the address space is capped (reading
``/dev/zero`` into memory ends in ``MemoryError``, not in the OOM killer), and each request runs
under an interval timer whose ``Hang`` (a BaseException, so no ``except Exception`` in the product
swallows it) ends a runaway loop (a CPU-time bound, fair on a loaded machine) or a blocking
``open`` of a FIFO (a wall-clock bound, ``WALL_FACTOR`` times longer). The parent kills the whole
server if even that does not answer in time, and starts a new one.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import sys
import time
import traceback
from typing import Any

ADDRESS_SPACE = 2 * 1024**3  # bytes; the machine has 24 GiB shared by several sessions
WALL_FACTOR = 4.0  # a request's wall-clock bound is this times its CPU bound (as in fuzz_support)


class Hang(BaseException):  # noqa: N818 — it is a signal, not an error the product may catch
    """Raised by the interval timer when a request outlives its bound."""


def _on_alarm(signum: int, _frame: Any) -> None:
    raise Hang("cpu" if signum == signal.SIGPROF else "wall")


def _timers_off() -> None:
    signal.setitimer(signal.ITIMER_PROF, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _settings_cache_clear() -> None:
    from core.settings import get_settings

    get_settings.cache_clear()


def handle(request: dict[str, Any]) -> dict[str, Any]:
    """Run one argv with its environment and working directory; never raises."""
    from typer.testing import CliRunner

    from safeloop.cli.main import app

    env: dict[str, str | None] = request.get("env") or {}
    bound = float(request.get("bound", 10))
    cwd = os.getcwd()
    os.chdir(request.get("cwd") or cwd)
    _settings_cache_clear()
    runner = CliRunner()
    started = time.monotonic()
    answer: dict[str, Any] = {"exit": None, "stdout": "", "stderr": "", "exception": None,
                              "traceback": "", "hang": False}
    cpu_started = _cpu()
    signal.setitimer(signal.ITIMER_PROF, bound)  # CPU time: a busy loop, fair under load
    signal.setitimer(signal.ITIMER_REAL, bound * WALL_FACTOR)  # a blocking open or read
    try:
        result = runner.invoke(app, request["argv"], env=env, catch_exceptions=True,
                               prog_name="safeloop")
        _timers_off()
        answer["exit"] = result.exit_code
        answer["stdout"] = result.stdout
        answer["stderr"] = result.stderr
        exc = result.exception
        if exc is not None and not isinstance(exc, SystemExit):
            answer["exception"] = type(exc).__name__
            answer["traceback"] = "".join(traceback.format_exception(exc))[-4000:]
    except Hang as hang:
        answer["hang"] = str(hang)  # which bound: "cpu" (a busy loop) or "wall" (blocked)
    except BaseException as exc:  # noqa: BLE001 — report anything the runner itself let through
        _timers_off()
        answer["exception"] = type(exc).__name__
        answer["traceback"] = "".join(traceback.format_exception(exc))[-4000:]
    finally:
        _timers_off()
        answer["seconds"] = round(time.monotonic() - started, 3)
        answer["cpu_seconds"] = round(_cpu() - cpu_started, 3)
        os.chdir(cwd)
        _settings_cache_clear()
    return answer


def main() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGPROF, _on_alarm)
    from safeloop.cli.main import app  # noqa: F401 — import once, before the first request

    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        if not line.strip():
            continue
        answer = handle(json.loads(line))
        out.write(json.dumps(answer) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
