"""Bad input never crashes, hangs or half-writes (issue 11): every ``safeloop`` command driven
with hostile strings, dates, numbers, files, output paths and settings.

Every invocation must exit 0, 1 or 2, print no traceback or Python exception name, answer within
its bound, and — when refused — say why in zh-CN and leave every table's row count, the audit head
and the storage folder as they were. After a command stored hostile text, the reads that show it
(list, show, audit verify) must still exit 0.

Commands run in one long-lived child process (``fuzz_runner``: the real typer app, a time bound
per request, a capped address space) against a copy of a demo database per test; a few attacks
that only a real process shows (invalid UTF-8 argv bytes, a FIFO, a 100 KB id) also run as
``safeloop`` subprocesses. One test id per (command family, input category) runs the explicit
attacks of the issue; one Hypothesis test per family adds generated values (derandomized, so every
run is the same run). ``serve`` is not driven: it runs until stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.reliability import fuzz_inputs as hostile
from tests.reliability.fuzz_support import (
    BOUND_S,
    DEMO_ORG,
    DEMO_RISKS,
    FLOW_BOUND_S,
    PLAN_YAML,
    ROOT,
    WALL_FACTOR,
    Answer,
    Server,
    World,
    build_template,
    describe,
    new_world,
    problems,
    short,
)

pytestmark = pytest.mark.slow  # ~1,500 invocations: minutes on this 2-core machine

Built = list[str] | tuple[list[str], dict[str, str]]
Builder = Callable[[World, str], Built]
# The first slot of a family gets every attack of its category; the others these (the 100 KB
# values, which cost seconds each where they hang, go to the first slot only).
CORE_TEXT = ("markup-close", "nul", "control-chars", "blank")
CORE_DATE = ("year-1", "year-9999", "feb-30", "empty")
CORE_NUMBER = ("1e400", "nan", "20-digits", "empty")


@dataclass(frozen=True)
class Family:
    """One command (or a few sharing their arguments) and where hostile values go into it."""

    name: str
    slots: dict[str, list[Builder]]
    reads: Callable[[World, list[str]], list[list[str]]] | None = None  # after a stored write
    bound: float = BOUND_S
    valid_file: str = ""  # a correct file of the command's format, for GBK/BOM/duplicate variants
    output_suffix: str = ".csv"
    extra_files: Callable[[World], dict[str, str]] | None = None
    outputs: tuple[str, ...] = hostile.OUTPUT_NAMES


# ---- what to read back after hostile text was stored ------------------------------------------


def hazard_reads(world: World, codes: list[str]) -> list[list[str]]:
    shows = [["hazard", "show", c] for c in codes[-6:]] + [["audit", "show", c] for c in codes[-3:]]
    return [["hazard", "list"], ["hazard", "list", "--json"], *shows, ["audit", "verify"]]


def reads_of(*groups: list[str], show: str = "") -> Callable[[World, list[str]], list[list[str]]]:
    def reads(world: World, codes: list[str]) -> list[list[str]]:
        shown = [[*show.split(), c] for c in codes[-4:]] if show else []
        return [*groups, *shown, ["audit", "verify"]]

    return reads


# ---- valid files the hostile file variants are made from --------------------------------------

CALENDAR_YAML = ("covered_years: [2027]\nholidays:\n  - {date: 2027-01-01, name: 元旦}\n"
                 "  - {date: 2027-02-06, until: 2027-02-12, name: 春节}\n")
CHECKLIST_YAML = ("key: fuzz-team\nversion: 1\nname: 模糊测试检查表\ntier: team\nsource: 测试\nitems:\n"
                  "  - {code: F01, text: 检查内容：压力表, basis: 依据, category: thing, "
                  "grade_if_failed: general}\n")
DUTY_YAML = ("kinds:\n  talk:\n    name: 每周安全讲评\n    applies_to: {scope: enterprise}\n"
             "    cadence: weekly\n    role: principal\n")
RESULTS_YAML = "- {item: T01, outcome: pass, note: 已检查：合格}\n"
ROUTING_YAML = 'version: 1\nroles:\n  auditor:\n    - "json://127.0.0.1:9/hook"\n'
ANNUAL_YAML = ("jurisdiction: xz-edz\nyear: 2026\ndepartment: edz-yjj\nentries:\n"
               "  - {enterprise: xinfeng, frequency: 2}\n")


def orphan_photo(world: World) -> dict[str, str]:
    """A valid evidence file given to a command that is refused for another reason: the refusal
    must not leave the copied file behind in storage."""
    path = world.root / "orphan-photo.jpg"
    path.write_bytes(b"\xff\xd8 orphan " + world.root.name.encode())
    return {"orphan-evidence": str(path)}


def deep_unit_tree(world: World) -> dict[str, str]:
    """An org file whose one enterprise has units nested 400 levels deep (JSON is YAML)."""
    node: dict[str, Any] = {"id": "deep-399", "name": "深399", "tier": "team"}
    for i in range(398, -1, -1):
        node = {"id": f"deep-{i}", "name": f"深{i}", "tier": "team", "units": [node]}
    org = {"jurisdictions": [{"id": "xz", "name": "忻州市"},
                             {"id": "xz-edz", "name": "忻州经济开发区", "parent": "xz"}],
           "enterprises": [{"id": "deep", "name": "深层企业", "industry": "化工",
                            "jurisdiction": "xz-edz", "units": [node]}]}
    path = world.root / "unit-tree-400.yaml"
    path.write_text(json.dumps(org, ensure_ascii=False), encoding="utf-8")
    return {"unit-tree-400": str(path)}


def orphan_results(world: World) -> dict[str, str]:
    photo = world.root / "results-photo.jpg"
    photo.write_bytes(b"\xff\xd8 results " + world.root.name.encode())
    path = world.root / "orphan-results.yaml"
    path.write_text("- {item: T01, outcome: pass, evidence: [results-photo.jpg]}\n"
                    "- {item: T02, outcome: maybe}\n", encoding="utf-8")
    return {"orphan-evidence": str(path)}


# ---- the command families ----------------------------------------------------------------------


def hz_report(*extra: str) -> list[str]:
    return ["hazard", "report", "--as", "sun.banzhang", "--unit", "jinhua-team-a", "--title",
            "压力表失效", "--category", "thing", "--json", *extra]


def with_value(argv: list[str], option: str, value: str) -> list[str]:
    """``argv`` with ``option``'s value replaced (or the option added)."""
    if option in argv:
        i = argv.index(option)
        return [*argv[: i + 1], value, *argv[i + 2:]]
    return [*argv, option, value]


FAMILIES: list[Family] = [
    Family("org-load", {
        "file": [lambda w, f: ["org", "load", f]],
        "text": [lambda w, v: ["org", "load", str(DEMO_ORG), "--as", v]],
    }, reads=reads_of(["hazard", "list"]), valid_file=DEMO_ORG.read_text("utf-8"),
        extra_files=deep_unit_tree),
    Family("init", {"settings": []}),
    Family("hazard-report", {
        "text": [lambda w, v: with_value(hz_report(), "--title", v),
                 lambda w, v: hz_report("--description", v),
                 lambda w, v: hz_report("--location", v),
                 lambda w, v: with_value(hz_report(), "--as", v),
                 lambda w, v: with_value(hz_report(), "--unit", v),
                 lambda w, v: with_value(hz_report(), "--category", v)],
        "bad_utf8": [lambda w, v: with_value(hz_report(), "--title", v),
                     lambda w, v: hz_report("--location", v)],
        "date": [lambda w, v: hz_report("--found-at", v), lambda w, v: hz_report("--as-of", v)],
        "file": [lambda w, f: hz_report("--evidence", f)],
    }, reads=hazard_reads),
    Family("hazard-fire", {
        "text": [lambda w, v: ["hazard", "fire", w.codes["reported"], "cancel", "--as", "li.anquan",
                               "--reason", v],
                 lambda w, v: ["hazard", "fire", w.codes["rectifying"], "submit", "--as",
                               "sun.banzhang", "--measures", v],
                 lambda w, v: ["hazard", "fire", w.codes["reported"], "assign", "--as", "li.anquan",
                               "--owner", v, "--deadline", "2099-12-31"],
                 lambda w, v: ["hazard", "fire", v, "assign", "--as", "li.anquan"],
                 lambda w, v: ["hazard", "fire", w.codes["reported"], v, "--as", "li.anquan"],
                 lambda w, v: ["hazard", "fire", w.codes["planning"], "draft_plan", "--as",
                               "wang.zhuren", "--plan-part", f"{v}=内容"],
                 lambda w, v: ["hazard", "fire", w.codes["planning"], "draft_plan", "--as",
                               "wang.zhuren", "--plan-part", f"objectives={v}"]],
        "bad_utf8": [lambda w, v: ["hazard", "fire", w.codes["rectifying"], "submit", "--as",
                                   "sun.banzhang", "--measures", v]],
        "date": [lambda w, v: ["hazard", "fire", w.codes["reported"], "assign", "--as", "li.anquan",
                               "--owner", "sun.banzhang", "--deadline", v],
                 lambda w, v: ["hazard", "fire", w.codes["rectifying"], "extend_deadline", "--as",
                               "wang.zhuren", "--reason", "等待备件", "--deadline", v],
                 lambda w, v: ["hazard", "fire", w.codes["pending"], "reject", "--as", "li.anquan",
                               "--reason", "不合格", "--as-of", v]],
        "number": [lambda w, v: ["hazard", "fire", w.codes["rectifying"], "submit", "--as",
                                 "sun.banzhang", "--measures", "已更换", "--funds", v],
                   lambda w, v: ["hazard", "fire", w.codes["rectifying"], "escalate", "--as",
                                 "wang.zhuren", "--level", v],
                   lambda w, v: ["hazard", "fire", w.codes["reported"], "cancel", "--as",
                                 "li.anquan", "--reason", "误报", "--expected-version", v]],
        "file": [lambda w, f: ["hazard", "fire", w.codes["planning"], "approve_plan", "--as",
                               "wang.zhuren", "--plan", f],
                 lambda w, f: ["hazard", "fire", w.codes["pending"], "accept", "--as",
                               "sun.banzhang", "--evidence", f]],
    }, reads=hazard_reads, valid_file=PLAN_YAML, extra_files=orphan_photo),
    Family("hazard-read", {
        "text": [lambda w, v: ["hazard", "events", v, "--as", "li.anquan"],
                 lambda w, v: ["hazard", "events", w.codes["reported"], "--as", v],
                 lambda w, v: ["hazard", "list", "--state", v],
                 lambda w, v: ["hazard", "list", "--unit", v],
                 lambda w, v: ["hazard", "show", v],
                 lambda w, v: ["hazard", "show", v, "--json"]],
        "bad_utf8": [lambda w, v: ["hazard", "show", v]],
        "number": [lambda w, v: ["hazard", "list", "--limit", v]],
    }),
    Family("audit", {
        "text": [lambda w, v: ["audit", "show", v],
                 lambda w, v: ["audit", "export", "--format", v]],
        "output": [lambda w, f: ["audit", "export", "--format", "csv", "-o", f],
                   lambda w, f: ["audit", "export", "-o", f]],
    }),
    Family("inspect-fire", {
        "text": [lambda w, v: ["inspect", "start", v, "--as", "sun.banzhang"],
                 lambda w, v: ["inspect", "review", w.codes["task"], "--as", v],
                 lambda w, v: ["inspect", "return", w.codes["task"], "--as", "zhao.chejian",
                               "--reason", v],
                 lambda w, v: ["inspect", "cancel", w.codes["task"], "--as", "li.anquan",
                               "--reason", v],
                 lambda w, v: ["inspect", "fire", w.codes["task"], "submit", "--as", "sun.banzhang",
                               "--set", v],
                 lambda w, v: ["inspect", "events", v, "--as", "sun.banzhang"]],
        "date": [lambda w, v: ["inspect", "review", w.codes["task"], "--as", "zhao.chejian",
                               "--as-of", v]],
    }, reads=reads_of(["inspect", "list"], show="inspect show")),
    Family("inspect-submit", {
        "file": [lambda w, f: ["inspect", "submit", w.codes["task"], "--as", "sun.banzhang",
                               "--results", f]],
        "text": [lambda w, v: ["inspect", "submit", v, "--as", "sun.banzhang", "--results",
                               str(w.root / "results.yaml")]],
        "date": [lambda w, v: ["inspect", "submit", w.codes["task"], "--as", "sun.banzhang",
                               "--results", str(w.root / "results.yaml"), "--as-of", v]],
    }, reads=lambda w, c: [["inspect", "show", w.codes["task"]], ["hazard", "list"],
                           ["audit", "verify"]],
        valid_file=RESULTS_YAML, extra_files=orphan_results),
    Family("inspect-read", {
        "text": [lambda w, v: ["inspect", "list", "--state", v],
                 lambda w, v: ["inspect", "list", "--period", v],
                 lambda w, v: ["inspect", "list", "--unit", v],
                 lambda w, v: ["inspect", "show", v]],
        "number": [lambda w, v: ["inspect", "list", "--limit", v]],
    }),
    Family("checklist", {
        "file": [lambda w, f: ["checklist", "load", f]],
    }, reads=reads_of(["checklist", "list"]), valid_file=CHECKLIST_YAML),
    Family("calendar", {
        "file": [lambda w, f: ["calendar", "load", f]],
        "date": [lambda w, v: ["calendar", "status", "--on", v]],
    }, reads=reads_of(["calendar", "status", "--json"]), valid_file=CALENDAR_YAML),
    Family("plan-add", {
        "text": [lambda w, v: ["plan", "add", v, "--unit", "jinhua-team-b"],
                 lambda w, v: ["plan", "add", "p-fuzz", "--unit", v],
                 lambda w, v: ["plan", "add", "p-fuzz", "--unit", "jinhua-team-b", "--name", v],
                 lambda w, v: ["plan", "add", "p-fuzz", "--unit", "jinhua-team-b", "--cadence", v],
                 lambda w, v: ["plan", "add", "p-fuzz", "--unit", "jinhua-team-b", "--template", v],
                 lambda w, v: ["plan", "add", "p-fuzz", "--unit", "jinhua-team-b",
                               "--calendar-mode", v],
                 lambda w, v: ["plan", "add", "p-fuzz", "--unit", "jinhua-team-b", "--assignee", v]],
        "date": [lambda w, v: ["plan", "add", "p-fuzz", "--unit", "jinhua-team-b", "--from", v],
                 lambda w, v: ["plan", "add", "p-fuzz", "--unit", "jinhua-team-b", "--until", v]],
    }, reads=reads_of(["plan", "list"], ["plan", "list", "--json"])),
    Family("plan-annual", {
        "file": [lambda w, f: ["plan", "annual", "draft", f, "--as", "qian.jianguan"]],
        "text": [lambda w, v: ["plan", "annual", "fire", v, "file", "--as", "qian.jianguan"],
                 lambda w, v: ["plan", "annual", "fire", w.codes["annual"], v, "--as",
                               "qian.jianguan"],
                 lambda w, v: ["plan", "annual", "show", v],
                 lambda w, v: ["plan", "annual", "events", v, "--as", "qian.jianguan"]],
        "date": [lambda w, v: ["plan", "annual", "fire", w.codes["annual"], "file", "--as",
                               "qian.jianguan", "--as-of", v]],
    }, reads=reads_of(show="plan annual show"), valid_file=ANNUAL_YAML),
    Family("flows", {
        "text": [lambda w, v: ["flows", "run", v]],
        "date": [lambda w, v: ["flows", "run", "sweep-deadlines", "--as-of", v]],
    }, bound=FLOW_BOUND_S),
    Family("listing", {
        "text": [lambda w, v: ["listing", "propose", v, "--as", "qian.jianguan"],
                 lambda w, v: ["listing", "propose", w.codes["rectifying"], "--as", "qian.jianguan",
                               "--department", v],
                 lambda w, v: ["listing", "fire", w.codes["listing"], "list", "--as",
                               "qian.jianguan", "--set", v],
                 lambda w, v: ["listing", "fire", w.codes["listing"], "list", "--as",
                               "qian.jianguan", "--set", "deadline=2027-06-30", "--set",
                               f"note={v}", "--reason", v],
                 lambda w, v: ["listing", "fire", w.codes["listing"], v, "--as", "qian.jianguan"],
                 lambda w, v: ["listing", "list", "--state", v],
                 lambda w, v: ["listing", "list", "--enterprise", v],
                 lambda w, v: ["listing", "show", v],
                 lambda w, v: ["listing", "events", v, "--as", "qian.jianguan"]],
        "date": [lambda w, v: ["listing", "fire", w.codes["listing"], "list", "--as",
                               "qian.jianguan", "--set", f"deadline={v}"],
                 lambda w, v: ["listing", "fire", w.codes["listing"], "reject", "--as",
                               "qian.jianguan", "--reason", "材料不全", "--as-of", v]],
        "number": [lambda w, v: ["listing", "fire", w.codes["listing"], "escalate", "--as",
                                 "qian.jianguan", "--set", f"level={v}"]],
    }, reads=reads_of(["listing", "list"], show="listing show")),
    Family("order", {
        "text": [lambda w, v: ["order", "create", "--as", "qian.jianguan", "--unit",
                               "xinfeng-plant", "--reason", v],
                 lambda w, v: ["order", "create", "--as", "qian.jianguan", "--unit", v,
                               "--reason", "除尘系统失效"],
                 lambda w, v: ["order", "create", "--as", "qian.jianguan", "--unit",
                               "xinfeng-plant", "--reason", "除尘系统失效", "--scope", v],
                 lambda w, v: ["order", "fire", w.codes["order"], v, "--as", "zheng.changzhang"],
                 lambda w, v: ["order", "fire", w.codes["order"], "start_rectification", "--as",
                               "zheng.changzhang", "--reason", v],
                 lambda w, v: ["order", "list", "--state", v],
                 lambda w, v: ["order", "list", "--enterprise", v],
                 lambda w, v: ["order", "events", v, "--as", "qian.jianguan"]],
        "date": [lambda w, v: ["order", "create", "--as", "qian.jianguan", "--unit",
                               "xinfeng-plant", "--reason", "除尘系统失效", "--as-of", v]],
        "file": [lambda w, f: ["order", "fire", w.codes["order"], "request_resumption", "--as",
                               "zheng.changzhang", "--evidence", f]],
    }, reads=reads_of(["order", "list"], ["order", "list", "--json"]), extra_files=orphan_photo),
    Family("stat-report", {
        "text": [lambda w, v: ["stat-report", "list", "--state", v],
                 lambda w, v: ["stat-report", "submit", v, "--as", "wang.zhuren"],
                 lambda w, v: ["stat-report", "submit", "jinhua/2026-Q3", "--as", "wang.zhuren",
                               "--summary", v],
                 lambda w, v: ["stat-report", "fire", "jinhua/2026-Q3", "submit", "--as",
                               "wang.zhuren", "--set", f"summary={v}"],
                 lambda w, v: ["stat-report", "events", v, "--as", "wang.zhuren"]],
        "file": [lambda w, f: ["stat-report", "submit", "jinhua/2026-Q3", "--as", "wang.zhuren",
                               "--evidence", f]],
    }, extra_files=orphan_photo),
    Family("duty", {
        "text": [lambda w, v: ["duty", "list", "--state", v],
                 lambda w, v: ["duty", "list", "--kind", v, "--json"],
                 lambda w, v: ["duty", "list", "--enterprise", v],
                 lambda w, v: ["duty", "list", "--period", v],
                 lambda w, v: ["duty", "show", v],
                 lambda w, v: ["duty", "fire", w.codes["duty"], v, "--as", "wang.zhuren"],
                 lambda w, v: ["duty", "fire", w.codes["duty"], "complete", "--as", v],
                 lambda w, v: ["duty", "fire", w.codes["duty"], "complete", "--as",
                               "wang.zhuren", "--set", f"summary={v}"],
                 lambda w, v: ["duty", "events", v, "--as", "wang.zhuren"]],
        "number": [lambda w, v: ["duty", "list", "--limit", v]],
        "date": [lambda w, v: ["duty", "fire", w.codes["duty"], "complete", "--as", "wang.zhuren",
                               "--as-of", v]],
        "file": [lambda w, f: ["duty", "fire", w.codes["duty"], "complete", "--as", "wang.zhuren",
                               "--evidence", f],
                 lambda w, f: (["duty", "kinds", "--json"], {"SAFELOOP_DUTY_RULES": f})],
    }, reads=reads_of(["duty", "list", "--json"], show="duty show"), valid_file=DUTY_YAML,
        extra_files=orphan_photo),
    Family("report", {
        "text": [lambda w, v: ["report", "stats", "--period", v, "-o", str(w.root / "s.csv")],
                 lambda w, v: ["report", "stats", "--period", "2026-Q3", "--jurisdiction", v, "-o",
                               str(w.root / "s.xlsx")],
                 lambda w, v: ["report", "bulletin", "--period", v, "-o", str(w.root / "b.md")],
                 lambda w, v: ["report", "bulletin", "--period", "2026-11", "--issuer", v,
                               "--format", "html", "-o", str(w.root / "b.html")],
                 lambda w, v: ["report", "bulletin", "--period", "2026-11", "--format", v, "-o",
                               str(w.root / "b.md")]],
        "date": [lambda w, v: ["report", "bulletin", "--period", "2026-11", "--issued-on", v, "-o",
                               str(w.root / "b.md")],
                 lambda w, v: ["report", "stats", "--period", "2026-Q3", "--as-of", v, "-o",
                               str(w.root / "s.csv")]],
        "output": [lambda w, f: ["report", "stats", "--period", "2026-Q3", "--format", "csv",
                                 "-o", f],
                   lambda w, f: ["report", "bulletin", "--period", "2026-11", "-o", f]],
    }),
    Family("risk-register", {
        "text": [lambda w, v: ["risk", "area", "jinhua", v, "--polygon", "0,0 10,0 10,10",
                               "--as", "li.anquan"],
                 lambda w, v: ["risk", "area", "jinhua", "模糊区", "--polygon", v, "--as",
                               "li.anquan"],
                 lambda w, v: ["risk", "add", "--as", "li.anquan", "--unit", "jinhua-team-a",
                               "--name", v, "--kind", "facility", "--hazard-factor", "高温",
                               "--accident", "火灾", "--measure", "engineering:联锁"],
                 lambda w, v: ["risk", "add", "--as", "li.anquan", "--unit", "jinhua-team-a",
                               "--name", "模糊点", "--kind", "facility", "--hazard-factor", v,
                               "--accident", v, "--measure", f"engineering:{v}"],
                 lambda w, v: ["risk", "add", "--as", "li.anquan", "--unit", "jinhua-team-a",
                               "--name", "模糊点2", "--kind", v, "--hazard-factor", "高温",
                               "--accident", "火灾", "--measure", v]],
        "number": [lambda w, v: ["risk", "area", "jinhua", "模糊区", "--polygon",
                                 f"0,0 {v},0 {v},{v}", "--as", "li.anquan"]],
        "file": [lambda w, f: ["risk", "load", f, "--as", "li.anquan"]],
        "date": [lambda w, v: ["risk", "area", "jinhua", "模糊区", "--polygon", "0,0 10,0 10,10",
                               "--as", "li.anquan", "--as-of", v]],
    }, reads=reads_of(["risk", "list"], ["risk", "map", "jinhua", "--out", "map.svg"],
                      show="risk show"), valid_file=DEMO_RISKS.read_text("utf-8")),
    Family("risk-grade", {
        "text": [lambda w, v: ["risk", "evaluate", w.codes["risk_evaluated"], "--as", "li.anquan",
                               "--method", v, "-f", "L=3", "-f", "E=6", "-f", "C=15"],
                 lambda w, v: ["risk", "evaluate", w.codes["risk_evaluated"], "--as", "li.anquan",
                               "--method", "lec", "-f", "L=3", "-f", "E=6", "-f", "C=15",
                               "--note", v],
                 lambda w, v: ["risk", "approve", v, "--as", "wang.zhuren"],
                 lambda w, v: ["risk", "fire", w.codes["risk_approved"], "report_change", "--as",
                               "li.anquan", "--set", "trigger=accident", "--reason", v],
                 lambda w, v: ["risk", "fire", w.codes["risk_approved"], v, "--as", "li.anquan"],
                 lambda w, v: ["risk", "fire", w.codes["risk_approved"], "revise", "--as",
                               "li.anquan", "--set", v],
                 lambda w, v: ["risk", "events", v, "--as", "li.anquan"],
                 lambda w, v: ["risk", "derive", "--as", v]],
        "number": [lambda w, v: ["risk", "evaluate", w.codes["risk_evaluated"], "--as", "li.anquan",
                                 "--method", "lec", "-f", f"L={v}", "-f", "E=6", "-f", "C=15"],
                   lambda w, v: ["risk", "evaluate", w.codes["risk_evaluated"], "--as", "li.anquan",
                                 "--method", "ls", "-f", f"L={v}", "-f", f"S={v}"]],
        "date": [lambda w, v: ["risk", "derive", "--as-of", v],
                 lambda w, v: ["risk", "approve", w.codes["risk_evaluated"], "--as", "wang.zhuren",
                               "--as-of", v]],
    }, reads=reads_of(["risk", "list"], show="risk show")),
    Family("risk-outputs", {
        "text": [lambda w, v: ["risk", "list", "--enterprise", v],
                 lambda w, v: ["risk", "list", "--grade", v],
                 lambda w, v: ["risk", "show", v],
                 lambda w, v: ["risk", "export", v, "--out", str(w.root / "r.xlsx")],
                 lambda w, v: ["risk", "export", "jinhua", "--format", v, "--out",
                               str(w.root / "r.csv")],
                 lambda w, v: ["risk", "card", "jinhua", "--code", v, "--out",
                               str(w.root / "c.html")]],
        "date": [lambda w, v: ["risk", "map", "jinhua", "--as-of", v, "--out",
                               str(w.root / "m.svg")]],
        "output": [lambda w, f: ["risk", "export", "jinhua", "--format", "csv", "--out", f],
                   lambda w, f: ["risk", "map", "jinhua", "--out", f],
                   lambda w, f: ["risk", "card", "jinhua", "--out", f]],
    }),
    Family("user", {
        "text": [lambda w, v: ["user", "set-password", v, "--generate"],
                 lambda w, v: ["user", "set-password", "li.anquan", "--generate", "--as", v],
                 lambda w, v: ["user", "disable", v],
                 lambda w, v: ["user", "enable", v],
                 lambda w, v: ["user", "token", "create", "sun.banzhang", "--name", v, "--json"],
                 lambda w, v: ["user", "token", "list", v]],
        "bad_utf8": [lambda w, v: ["user", "token", "create", "sun.banzhang", "--name", v]],
        "date": [lambda w, v: ["user", "token", "create", "sun.banzhang", "--name", "到期",
                               "--expires", v]],
        "number": [lambda w, v: ["user", "token", "revoke", v]],
    }, reads=reads_of(["user", "list"], ["user", "list", "--json"], ["user", "token", "list"],
                      ["user", "token", "list", "--json"])),
    Family("notify", {
        "text": [lambda w, v: ["notify", "test", "json://127.0.0.1:9/hook", "--title", v,
                               "--body", v],
                 lambda w, v: ["notify", "test", v]],
        "file": [lambda w, f: (["notify", "check"], {"SAFELOOP_NOTIFY_ROUTING": f}),
                 lambda w, f: (["notify", "check"], {"SAFELOOP_NOTIFY_TEMPLATES": f})],
    }, valid_file=ROUTING_YAML),
    Family("outbox", {
        "text": [lambda w, v: ["outbox", "list", "--status", v],
                 lambda w, v: ["outbox", "list", "--template", v],
                 lambda w, v: ["outbox", "retry", "--status", v]],
        "number": [lambda w, v: ["outbox", "show", v],
                   lambda w, v: ["outbox", "retry", v],
                   lambda w, v: ["outbox", "list", "--limit", v]],
    }),
    Family("diagram-demo", {
        "text": [lambda w, v: ["diagram", v]],
        "number": [lambda w, v: ["demo", "--days", v, "--path", str(w.root / "missing" / "d.db")]],
        "output": [lambda w, f: ["demo", "--days", "0", "--path", f]],
    }, outputs=("nonexistent-dir", "a-directory")),  # never /dev/full: demo deletes its --path
]
BY_NAME = {f.name: f for f in FAMILIES}

# Settings and --db attacks, each with a read and a write command.
SETTINGS_ENV: dict[str, dict[str, str]] = {
    "risk-bands-bad-json": {"SAFELOOP_RISK_BANDS": "{x"},
    "risk-bands-wrong-shape": {"SAFELOOP_RISK_BANDS": '{"lec": {"major": "很多"}}'},
    "timezone-unknown": {"SAFELOOP_TIMEZONE": "Mars/Olympus_Mons"},
    "escalation-days-text": {"SAFELOOP_ESCALATION_DAYS": "x"},
    "due-soon-1e400": {"SAFELOOP_DUE_SOON_HOURS": "1e400"},
    "busy-timeout-nan": {"SAFELOOP_SQLITE_BUSY_TIMEOUT_S": "nan"},
    "listing-rules-list": {"SAFELOOP_LISTING_RULES": "[1, 2]"},
}
SETTINGS_DB = ("garbage", "mysql://u@127.0.0.1:1/x", "postgresql://u@127.0.0.1:1/x",
               "sqlite:////nonexistent/dir/x.db", "", "sqlite:///:memory:", "sqlite:///{dir}")
SETTINGS_COMMANDS = (["hazard", "list"], ["audit", "verify"], ["risk", "bands"],
                     hz_report("--evidence", "{photo}"))


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("fuzz-server"))
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def flow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``flows`` commands in their own server: a Prefect run leaves log handlers on the
    process's streams that a fresh ``safeloop`` process would not have."""
    srv = Server(tmp_path_factory.mktemp("fuzz-flow-server"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def template(server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    return build_template(server, tmp_path_factory.mktemp("fuzz-template"))


def make_world(server: Server, template: tuple[Path, Path, dict[str, str]], root: Path,
               flow_server: Server | None = None) -> World:
    world = new_world(server, template, root, flow_server)
    (world.root / "results.yaml").write_text(RESULTS_YAML, encoding="utf-8")
    return world


# ---- running and checking ---------------------------------------------------------------------


@dataclass
class Log:
    """What one test saw: broken invariants (readable) and the codes hostile writes created."""

    failures: list[str] = field(default_factory=list)
    stored: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)  # argv of the hostile invocations that exited 0
    runs: int = 0


def attempt(world: World, built: Built, bound: float, log: Log, label: str = "") -> Answer:
    argv, env = built if isinstance(built, tuple) else (built, {})
    before = world.snapshot()
    answer = world.run(argv, env, bound)
    after = world.snapshot()
    log.runs += 1
    found = problems(answer, before, after)
    if found:
        log.failures.append((f"[{label}] " if label else "") + describe(answer, found))
    if answer.exit == 0:
        log.stored.append(_code_of(answer, argv))
        log.writes.append(" ".join(short(a, 40) for a in argv))
    return answer


def _code_of(answer: Answer, argv: list[str]) -> str:
    try:
        payload = json.loads(answer.stdout)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and isinstance(payload.get("code"), str):
        return payload["code"]
    return next((a for a in argv if a[:3] in ("YH-", "GP-", "FX-", "TC-", "JH-")), "")


def read_back(world: World, family: Family, log: Log) -> None:
    """After hostile writes succeeded, the reads that show what they stored must exit 0."""
    codes = list(dict.fromkeys(c for c in log.stored if c))
    if family.reads is None or not log.stored:
        return
    for argv in family.reads(world, codes):
        before = world.snapshot()
        answer = world.run(argv)
        found = problems(answer, before, world.snapshot())
        if answer.exit != 0:
            found.append(f"read after a stored hostile write exited {answer.exit}")
        if found:
            after = "".join(f"\n    after: safeloop {w}" for w in log.writes[-3:])
            log.failures.append("[read-back] " + describe(answer, found) + after)


def values_for(family: Family, category: str, world: World, slot: int) -> dict[str, str]:
    if category == "text":
        values = {**hostile.TEXT, "slash": "a/b/../c"}
        return values if slot == 0 else {k: values[k] for k in CORE_TEXT}
    if category == "bad_utf8":
        return hostile.BAD_UTF8
    if category == "date":
        return hostile.DATE if slot == 0 else {k: hostile.DATE[k] for k in CORE_DATE}
    if category == "number":
        return hostile.NUMBER if slot == 0 else {k: hostile.NUMBER[k] for k in CORE_NUMBER}
    files = hostile.HostileFiles(world.root)
    if category == "file":
        found = files.inputs(family.valid_file or "key: value\n")
        if family.extra_files:
            found.update(family.extra_files(world))
        return found
    if category == "output":
        outs = files.outputs(family.output_suffix)
        return {k: v for k, v in outs.items() if k in family.outputs}
    raise AssertionError(category)


def check(log: Log, name: str) -> None:
    """Fail with every broken invariant listed (argv, what broke, the output's tail)."""
    if log.failures:
        pytest.fail(f"{name}: {len(log.failures)} of {log.runs} hostile invocations broke an "
                    "invariant\n" + "\n".join(log.failures), pytrace=False)


EXPLICIT = [(f.name, c) for f in FAMILIES for c in f.slots if c != "settings"]


@pytest.mark.parametrize(("family_name", "category"), EXPLICIT,
                         ids=[f"{n}-{c}" for n, c in EXPLICIT])
def test_explicit_attacks(family_name: str, category: str, server: Server, flow_server: Server,
                          template: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    """Every listed attack of the category against every slot of the command family."""
    family = BY_NAME[family_name]
    world = make_world(server, template, tmp_path / "world", flow_server)
    log = Log()
    for slot, builder in enumerate(family.slots[category]):
        for label, value in values_for(family, category, world, slot).items():
            attempt(world, builder(world, value), family.bound, log, f"{category}:{label}")
    read_back(world, family, log)
    assert log.runs > 0
    check(log, f"{family_name} × {category}")


@pytest.mark.parametrize("label", [*SETTINGS_ENV, *(f"db:{d}" for d in SETTINGS_DB)])
def test_settings_attacks(label: str, server: Server,
                          template: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    """Broken settings and database URLs: a read and a write command each, plus ``init``."""
    world = make_world(server, template, tmp_path / "world")
    photo = world.root / "settings-photo.jpg"
    photo.write_bytes(b"\xff\xd8 settings")
    log = Log()
    commands = [[a.replace("{photo}", str(photo)) for a in argv] for argv in SETTINGS_COMMANDS]
    if label.startswith("db:"):
        url = label[3:].replace("{dir}", str(world.root))
        for argv in [["init"], *commands]:
            attempt(world, ["--db", url, *argv], BOUND_S, log, label)
    else:
        for argv in commands:
            attempt(world, (argv, SETTINGS_ENV[label]), BOUND_S, log, label)
    check(log, f"settings × {label}")


def test_storage_dir_is_a_file(server: Server, template: tuple[Path, Path, dict[str, str]],
                               tmp_path: Path) -> None:
    """SAFELOOP_STORAGE_DIR naming a file: evidence cannot be stored, and nothing is written."""
    world = make_world(server, template, tmp_path / "world")
    not_a_dir = world.root / "storage-is-a-file"
    not_a_dir.write_text("x", encoding="utf-8")
    photo = world.root / "p.jpg"
    photo.write_bytes(b"\xff\xd8 p")
    log = Log()
    env = {"SAFELOOP_STORAGE_DIR": str(not_a_dir)}
    attempt(world, (hz_report("--evidence", str(photo)), env), BOUND_S, log, "storage-file")
    attempt(world, (["audit", "verify"], env), BOUND_S, log, "storage-file")
    check(log, "settings × storage-dir-is-a-file")


# ---- generated values ---------------------------------------------------------------------------

STRATEGIES = {"text": hostile.HOSTILE_TEXT, "date": hostile.HOSTILE_DATE,
              "number": hostile.HOSTILE_NUMBER}
GENERATED = [f.name for f in FAMILIES if any(c in STRATEGIES for c in f.slots)
             and f.name != "flows"]  # flows: a real Prefect run per example is too slow


@pytest.mark.parametrize("family_name", GENERATED)
@settings(max_examples=4, derandomize=True, database=None, deadline=None,
          phases=[Phase.explicit, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_generated_values(family_name: str, data: st.DataObject, server: Server,
                          template: tuple[Path, Path, dict[str, str]],
                          tmp_path_factory: pytest.TempPathFactory) -> None:
    """Hypothesis picks a slot of the family and a hostile value for it (no shrinking: one
    invocation costs ~0.2 s, and the failure report names the argv and the output)."""
    family = BY_NAME[family_name]
    category = data.draw(st.sampled_from(sorted(c for c in family.slots if c in STRATEGIES)))
    builder = data.draw(st.sampled_from(family.slots[category]))
    value = data.draw(STRATEGIES[category], label=category)
    world = make_world(server, template, tmp_path_factory.mktemp(f"gen-{family_name}"))
    log = Log()
    attempt(world, builder(world, value), family.bound, log, f"generated {category}")
    read_back(world, family, log)
    check(log, f"{family_name} × generated")


# ---- attacks only a real process shows ----------------------------------------------------------

SAFELOOP = [sys.executable, "-c", "import sys; sys.argv[0] = 'safeloop'; "
            "from safeloop.cli.main import run; run()"]
REAL_BOUND_S = 20.0  # interpreter start (~2-4 s here, more under load) plus the command


def real_cases(world: World) -> dict[str, list[str | bytes]]:
    fifo = world.root / "real.fifo"
    os.mkfifo(fifo)
    return {
        "invalid-utf8-title": [*hz_report()[:6], b"--title", b"\xff\xfe\xc0\xaf", b"--category",
                               b"thing"],
        "gbk-title": [*hz_report()[:6], b"--title", "压力表失效".encode("gbk"), b"--category",
                      b"thing"],
        "fifo-plan": ["hazard", "fire", world.codes["planning"], "approve_plan", "--as",
                      "wang.zhuren", "--plan", str(fifo)],
        "fifo-org": ["org", "load", str(fifo)],
        "100k-id": ["hazard", "fire", "YH-" + "9" * 100_000, "assign", "--as", "li.anquan"],
        "100k-show": ["hazard", "show", "YH-" + "0" * 100_000],
    }


@pytest.mark.parametrize("case", ["invalid-utf8-title", "gbk-title", "fifo-plan", "fifo-org",
                                  "100k-id", "100k-show"])
def test_real_process(case: str, server: Server, template: tuple[Path, Path, dict[str, str]],
                      tmp_path: Path) -> None:
    """The same invariants through ``safeloop`` as a user's shell runs it, with a timeout."""
    world = make_world(server, template, tmp_path / "world")
    argv = real_cases(world)[case]
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SAFELOOP_")}, **world.env,
           "PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "200"}
    before = world.snapshot()
    try:
        done = subprocess.run([*SAFELOOP, *argv], cwd=ROOT, env=env, capture_output=True,
                              timeout=REAL_BOUND_S, stdin=subprocess.DEVNULL)
        answer = Answer([os.fsdecode(a) for a in argv], done.returncode,
                        done.stdout.decode("utf-8", "replace"), done.stderr.decode("utf-8", "replace"),
                        None, "", "", 0.0, REAL_BOUND_S / WALL_FACTOR)
    except subprocess.TimeoutExpired as exc:
        answer = Answer([os.fsdecode(a) for a in argv], None, short(str(exc.stdout or b"")), short(
            str(exc.stderr or b"")), None, "", "wall", REAL_BOUND_S, REAL_BOUND_S / WALL_FACTOR)
    found = problems(answer, before, world.snapshot())
    if found:
        pytest.fail(f"real process × {case}:\n" + describe(answer, found), pytrace=False)


def test_every_command_is_driven() -> None:
    """The table names every leaf command of the CLI (but ``serve`` and ``web``, which run until
    stopped; the API's input is tested in tests/api), so a new one is fuzzed."""
    from typer.main import get_command

    from safeloop.cli.main import app

    def leaves(cmd: Any, prefix: str) -> Iterator[str]:
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield prefix.strip()
            return
        for name, sub in subs.items():
            yield from leaves(sub, f"{prefix} {name}")

    # long-running servers: safeloop server is driven by tests/flows/test_local_server.py
    every = set(leaves(get_command(app), "")) - {"serve", "web", "server"}
    argvs: list[list[str]] = []
    for family in FAMILIES:
        for builders in family.slots.values():
            for builder in builders:
                built = builder(_Dummy(), "x")  # type: ignore[arg-type]
                argvs.append(built[0] if isinstance(built, tuple) else built)
    argvs += [*SETTINGS_COMMANDS, ["init"], ["audit", "replay"], ["flows", "list"],
              ["checklist", "list"], ["plan", "list"], ["user", "list"]]
    driven = {" ".join(a[:n]) for a in argvs for n in (1, 2, 3)}
    missing = sorted(c for c in every if c not in driven
                     and not c.startswith("diagram "))  # diagram NAME: driven as `diagram v`
    assert not missing, f"commands no fuzz family drives: {missing}"


class _Dummy:
    root = Path("/nonexistent")
    codes: dict[str, str] = {k: "X" for k in ("reported", "rectifying", "planning", "pending",
                                              "task", "listing", "risk_evaluated", "risk_approved",
                                              "order", "annual", "outbox", "duty")}
