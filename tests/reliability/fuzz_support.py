"""The CLI fuzz suite's machinery: the command server's client, the database/storage snapshot,
the invariants every invocation must keep, and the demo state the commands are aimed at.

Each invocation is checked for: an exit code of 0, 1 or 2; no traceback or Python exception
name in its output; an answer within its time bound; and, when it was refused (exit 1 or 2), a
zh-CN message, every table's row count and the audit head (seq, hash) unchanged, and no new file
under the storage folder.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import selectors
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_ORG = ROOT / "safeloop" / "data" / "demo_org.yaml"
DEMO_RISKS = ROOT / "safeloop" / "data" / "demo_risks.yaml"
BOUND_S = 4.0  # CPU seconds for one command in the running server; typical: 0.1-0.5 s
WALL_FACTOR = 4.0  # and wall-clock seconds, this times more (the machine may be loaded)
FLOW_BOUND_S = 40.0  # CPU s for a real Prefect run (its temporary server is a child: not counted)
CJK = re.compile(r"[\u4e00-\u9fff]")
_BUILTIN_ERRORS = sorted(n for n in dir(builtins) if n.endswith(("Error", "Exception")))
EXCEPTION_NAME = re.compile(
    r"\b(" + "|".join(_BUILTIN_ERRORS) + r"|[A-Z]\w*(?:Error|Exception)|KeyboardInterrupt|"
    r"StopIteration|RecursionError|ValidationError|sqlalchemy\.exc|psycopg|sqlite3\.)\b")


# ---- the command server -----------------------------------------------------------------------


@dataclass
class Answer:
    argv: list[str]
    exit: int | None
    stdout: str
    stderr: str
    exception: str | None
    traceback: str
    hang: str  # "" or the bound it overran: "cpu" (a busy loop) or "wall" (blocked)
    seconds: float
    bound: float
    cpu_seconds: float = 0.0

    @property
    def text(self) -> str:
        return f"{self.stdout}\n{self.stderr}"


class Server:
    """A ``fuzz_runner`` child process; restarted when a request gets no answer in time."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = home / "server-stderr.log"

    def start(self) -> None:
        env = {**os.environ, "MALLOC_ARENA_MAX": "2", "PREFECT_HOME": str(self.home / "prefect"),
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1",
               "COLUMNS": "200"}
        env = {k: v for k, v in env.items() if not k.startswith("SAFELOOP_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.fuzz_runner"], cwd=ROOT, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log.open("ab"),
            start_new_session=True)
        ready = self._read_line(120.0)
        assert ready is not None and json.loads(ready).get("ready"), "fuzz server did not start"

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.stdout.close()
        self.proc = None

    def _read_line(self, timeout: float) -> bytes | None:
        assert self.proc is not None and self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                return None
        line = self.proc.stdout.readline()
        return line or None

    def run(self, argv: list[str], env: dict[str, str], cwd: Path, bound: float = BOUND_S) -> Answer:
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        request = {"argv": argv, "env": env, "cwd": str(cwd), "bound": bound}
        started = time.monotonic()
        try:
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
            line = self._read_line(bound * WALL_FACTOR + 15.0)
        except BrokenPipeError:
            line = None
        if line is None:  # hung in C code past the timer, or the server died: start afresh
            self.stop()
            return Answer(argv, None, "", "", None, "", "killed",
                          round(time.monotonic() - started, 3), bound)
        got = json.loads(line)
        return Answer(argv, got["exit"], got["stdout"], got["stderr"], got["exception"],
                      got["traceback"], got["hang"], got["seconds"], bound, got["cpu_seconds"])


# ---- one test's world: database, storage, environment ----------------------------------------


@dataclass
class Snapshot:
    counts: dict[str, int]
    head: tuple[int, str] | None
    files: frozenset[str]


@dataclass
class World:
    """A copy of the demo database and storage folder for one test, and the server to drive it."""

    server: Server
    root: Path
    db: Path
    storage: Path
    codes: dict[str, str]
    extra_env: dict[str, str] = field(default_factory=dict)
    flow_server: Server | None = None  # Prefect configures logging for the process it runs in

    @property
    def env(self) -> dict[str, str]:
        return {"SAFELOOP_DATABASE_URL": f"sqlite:///{self.db}",
                "SAFELOOP_STORAGE_DIR": str(self.storage), "SAFELOOP_NOTIFY_ROUTING": "",
                **self.extra_env}

    def snapshot(self) -> Snapshot:
        return Snapshot(*_db_state(self.db), _files(self.storage))

    def run(self, argv: list[str], env: dict[str, str] | None = None,
            bound: float = BOUND_S) -> Answer:
        server = self.flow_server if self.flow_server and "flows" in argv[:3] else self.server
        return server.run(argv, {**self.env, **(env or {})}, self.root, bound)


def _db_state(db: Path) -> tuple[dict[str, int], tuple[int, str] | None]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
        counts = {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
        head = conn.execute("SELECT seq, hash FROM audit_head").fetchone() if "audit_head" in names \
            else None
    finally:
        conn.close()
    return counts, (tuple(head) if head else None)  # type: ignore[return-value]


def _files(storage: Path) -> frozenset[str]:
    if not storage.is_dir():
        return frozenset()
    return frozenset(str(p.relative_to(storage)) for p in storage.rglob("*"))


# ---- the invariants ----------------------------------------------------------------------------


def problems(answer: Answer, before: Snapshot, after: Snapshot) -> list[str]:
    """Every broken invariant of one invocation, as short phrases (empty when it behaved)."""
    found: list[str] = []
    if answer.hang == "cpu":
        found.append(f"hang: busy past the bound of {answer.bound:g} s of CPU")
    elif answer.hang:
        found.append(f"hang: blocked past the bound of {answer.bound * WALL_FACTOR:g} s "
                     f"(wall clock){'; the server had to be killed' if answer.hang == 'killed' else ''}")
    elif answer.exception:
        found.append(f"crash: uncaught {answer.exception}")
    if answer.exit not in (0, 1, 2) and not answer.hang:
        found.append(f"exit code {answer.exit}")
    if "Traceback" in answer.text:
        found.append("traceback text in output")
    argv_text = " ".join(answer.argv)
    named = {m for m in EXCEPTION_NAME.findall(answer.text) if m not in argv_text}
    if named:
        found.append(f"exception name in output: {', '.join(sorted(named))}")
    if not answer.hang and (answer.cpu_seconds > answer.bound
                            or answer.seconds > answer.bound * WALL_FACTOR):
        found.append(f"took {answer.seconds:g} s ({answer.cpu_seconds:g} s CPU; bound "
                     f"{answer.bound:g} s CPU)")
    refused = answer.exit != 0
    if refused and not (answer.hang or answer.exception) and not CJK.search(answer.text):
        found.append("refusal message is not zh-CN")  # e.g. Click's usage errors, in English
    if refused:
        changed = {t: (before.counts.get(t), n) for t, n in after.counts.items()
                   if before.counts.get(t) != n}
        if changed:
            found.append("rows changed after refusal: " + ", ".join(
                f"{t} {a}->{b}" for t, (a, b) in sorted(changed.items())))
        if before.head != after.head:
            found.append(f"audit head moved after refusal: {before.head} -> {after.head}")
        new = sorted(after.files - before.files)
        if new:
            found.append(f"{len(new)} new file(s) in storage after refusal: {new[:3]}")
    return found


def short(value: str, limit: int = 80) -> str:
    """``value`` cut to ``limit`` characters, unprintable ones escaped (CJK stays readable)."""
    shown = value if len(value) <= limit else f"{value[:limit]}…(+{len(value) - limit} chars)"
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace")
                   .decode("ascii") for c in shown)


def _tail(answer: Answer) -> str:
    """The exception and the product's innermost frame for a crash, else the output's end."""
    if answer.traceback:
        lines = answer.traceback.strip().splitlines()
        frames = [n for n, line in enumerate(lines) if line.lstrip().startswith('File "')
                  and str(ROOT) in line and "/.venv/" not in line]
        where = (f"{lines[frames[-1]].strip()}: {lines[frames[-1] + 1].strip()} | "
                 if frames and frames[-1] + 1 < len(lines) else "")
        return short(where + lines[-1], 500)
    text = answer.stderr or answer.stdout
    lines = [line.strip(" │╭╮╰╯─") for line in text.splitlines()]
    return short(" | ".join(line for line in lines if line)[-500:], 500)


def describe(answer: Answer, found: list[str]) -> str:
    argv = " ".join(repr(a) if " " in a or not a else a for a in (short(a, 40) for a in answer.argv))
    return (f"- safeloop {argv}\n    exit={answer.exit} {answer.seconds:g}s: {'; '.join(found)}\n"
            f"    {'traceback' if answer.traceback else 'output'}: {_tail(answer)}")


# ---- the demo state ----------------------------------------------------------------------------

ANNUAL_PLAN_YAML = ("jurisdiction: xz-edz\nyear: 2026\ndepartment: edz-yjj\nentries:\n"
                    "  - {enterprise: jinhua, frequency: 4}\n")
PLAN_YAML = "".join(f"{k}: {k}：已落实\n" for k in (
    "objectives", "methods", "funds_and_materials", "organisation", "time_limit",
    "safety_and_contingency"))


def build_template(server: Server, root: Path) -> tuple[Path, Path, dict[str, str]]:
    """The demo org, checklists, a started inspection task, hazards in five states, a proposed
    listing, the demo risk register (one approved), a suspension order and an annual plan."""
    root.mkdir(parents=True, exist_ok=True)
    db, storage = root / "template.db", root / "store"
    world = World(server, root, db, storage, {})
    photo = root / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 a photo")
    annual = root / "annual.yaml"
    annual.write_text(ANNUAL_PLAN_YAML, encoding="utf-8")

    def ok(*argv: str) -> Answer:
        answer = world.run(list(argv), bound=60.0)
        assert answer.exit == 0 and not answer.exception, describe(answer, ["setup step failed"])
        return answer

    def report(unit: str, actor: str, grade: str = "general") -> str:
        out = ok("hazard", "report", "--as", actor, "--unit", unit, "--title", "压力表失效",
                 "--category", "thing", "--grade", grade, "--json")
        return str(json.loads(out.stdout)["code"])

    def assign(code: str, owner: str) -> None:
        ok("hazard", "fire", code, "assign", "--as", "li.anquan", "--owner", owner,
           "--deadline", "2099-12-31")

    ok("init")
    ok("org", "load", str(DEMO_ORG))
    ok("checklist", "load", "--shipped")
    ok("plan", "add", "p-team-a", "--unit", "jinhua-team-a", "--assignee", "sun.banzhang",
       "--cadence", "yearly", "--from", "2020-01-01")
    _materialize(f"sqlite:///{db}")
    task = json.loads(ok("inspect", "list", "--json").stdout)["items"][0]["code"]
    ok("inspect", "start", task, "--as", "sun.banzhang")
    codes = {"task": task, "reported": report("jinhua-team-a", "sun.banzhang")}
    codes["rectifying"] = report("jinhua-team-a", "sun.banzhang")
    assign(codes["rectifying"], "sun.banzhang")
    codes["planning"] = report("jinhua-team-tank", "wu.chuyun", "major")
    assign(codes["planning"], "wu.chuyun")
    codes["pending"] = report("jinhua-team-a", "sun.banzhang")
    assign(codes["pending"], "sun.banzhang")
    ok("hazard", "fire", codes["pending"], "submit", "--as", "sun.banzhang", "--measures", "已更换",
       "--evidence", str(photo))
    made = ok("listing", "propose", codes["planning"], "--as", "qian.jianguan", "--department",
              "edz-yjj", "--json")
    codes["listing"] = json.loads(made.stdout)["code"]
    ok("risk", "load", str(DEMO_RISKS), "--as", "li.anquan")
    ok("risk", "approve", "FX-000001", "--as", "wang.zhuren")
    codes["risk_evaluated"], codes["risk_approved"] = "FX-000002", "FX-000001"
    made = ok("order", "create", "--as", "qian.jianguan", "--unit", "xinfeng-plant", "--reason",
              "除尘系统失效", "--json")
    codes["order"] = json.loads(made.stdout)["code"]
    made = ok("plan", "annual", "draft", str(annual), "--as", "qian.jianguan", "--json")
    codes["annual"] = json.loads(made.stdout)["code"]
    outbox = json.loads(ok("outbox", "list", "--json").stdout)["items"]
    codes["outbox"] = str(outbox[0]["id"])
    duties = json.loads(ok("duty", "list", "--json", "--kind", "risk_commitment").stdout)["items"]
    codes["duty"] = duties[0]["code"]
    _checkpoint_wal(db)
    return db, storage, codes


def _materialize(url: str) -> None:
    """This period's inspection tasks and duties, without a Prefect run (the flow is fuzzed on its own)."""
    from sqlmodel import Session

    from models.db import make_engine
    from states.jobs.duties import materialize_duties
    from states.jobs.materialize import materialize

    engine = make_engine(url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            materialize(session)
            materialize_duties(session)
    finally:
        engine.dispose()


def _checkpoint_wal(db: Path) -> None:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def new_world(server: Server, template: tuple[Path, Path, dict[str, str]], root: Path,
              flow_server: Server | None = None) -> World:
    db, storage, codes = template
    root.mkdir(parents=True, exist_ok=True)
    target = root / "safeloop.db"
    shutil.copyfile(db, target)
    store = root / "store"
    if storage.exists():
        shutil.copytree(storage, store)
    else:
        store.mkdir()
    return World(server, root, target, store, dict(codes), flow_server=flow_server)
