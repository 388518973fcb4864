"""Run the benchmarks and print one table: ``.venv/bin/python -m bench.run [--quick]``.

Each benchmark times the real code and a raw-SQL (or raw-hashlib) baseline in the same process on
the same kind of file, so the ratio column stays meaningful on a slow or noisy machine where the
absolute per-second figures do not. Exit status is 0 unless ``--strict`` and a target is missed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence

from bench import (
    api,
    audit_growth,
    audit_verify,
    dispatch,
    duties,
    fire_batch,
    fire_single,
    flow_cli,
    flow_overhead,
    materialize,
    risk_derive,
    sweep,
    visibility,
)
from bench.common import OPTIONS, Result
from bench.report import environment, load, table

# A benchmark returns one Result, or several (one per size) that share its name as a prefix.
BENCHMARKS: dict[str, Callable[[bool, bool], Result | list[Result]]] = {
    fire_single.NAME: fire_single.run,
    fire_batch.NAME: fire_batch.run,
    audit_growth.NAME: audit_growth.run,  # 1,000,000 prior audit rows vs none
    audit_verify.NAME: audit_verify.run,
    materialize.NAME: materialize.run,
    duties.NAME: duties.run,
    sweep.NAME: sweep.run,
    risk_derive.NAME: risk_derive.run,
    dispatch.NAME: dispatch.run,
    visibility.NAME: visibility.run,
    api.NAME: api.run,  # uvicorn in a subprocess; PostgreSQL too with SAFELOOP_BENCH_PG_URL
    flow_cli.NAME: flow_cli.run,  # safeloop flows run as processes, with and without safeloop server
    flow_overhead.NAME: flow_overhead.run,  # last: it imports Prefect, starts its server
}
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="smaller n (about 2 min in all on an idle machine; flow_overhead "
                             "alone needs the Prefect server's start-up)")
    parser.add_argument("--only", nargs="+", choices=list(BENCHMARKS), help="run just these")
    parser.add_argument("--profile", action="store_true",
                        help="run the measured (non-baseline) part under cProfile and print the "
                             "top entries; the figures are then inflated by the profiler")
    parser.add_argument("--tmpdir", help="where the scratch SQLite files go (default: system temp)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any target is missed")
    parser.add_argument("--db", metavar="URL",
                        help="a PostgreSQL URL: the engine benchmarks that support it run there "
                             "(a fresh schema each, dropped afterwards)")
    parser.add_argument("--prior-audit", type=int, default=0, metavar="N",
                        help="chain N older audit rows before the engine benchmarks' measured "
                             "events (production's trail; 1000000 for a province's year)")
    args = parser.parse_args(argv)
    OPTIONS.db_url, OPTIONS.prior_audit = args.db, args.prior_audit
    if args.tmpdir:
        tempfile.tempdir = args.tmpdir
    print(f"safeloop benchmarks ({'quick' if args.quick else 'full'}): {environment()}", flush=True)
    results: list[Result | tuple[str, str]] = []
    started = time.perf_counter()
    for name in args.only or list(BENCHMARKS):
        print(f"  running {name} …", flush=True)
        t0 = time.perf_counter()
        try:
            returned = BENCHMARKS[name](args.quick, args.profile)
        except Exception as exc:  # report and go on: one broken benchmark must not hide the rest
            traceback.print_exc()
            results.append((name, f"{type(exc).__name__}: {exc}"))
            continue
        for result in returned if isinstance(returned, list) else [returned]:
            results.append(result)
            print(f"    {result.name}: {result.seconds:.2f} s, {result.rate:,.0f}/s vs baseline "
                  f"{result.baseline_seconds:.2f} s, {result.baseline_rate:,.0f}/s", flush=True)
        print(f"    ({time.perf_counter() - t0:.0f} s with setup)", flush=True)
    print()
    print(table(results))
    print(f"\nratio = per second / baseline per second (wall clock); cpu ratio = the same over this "
          f"process's CPU time\ntotal {time.perf_counter() - started:.0f} s, {load()}")
    missed = any(not isinstance(r, Result) or not r.passed for r in results)
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
