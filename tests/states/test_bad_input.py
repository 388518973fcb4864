"""Bad input is refused with the right error class and a zh-CN message, and writes nothing.

Every engine case runs against one shared database per backend: a refusal must leave every table's
row count (and the hazard's version) exactly as it was, so sharing the database is itself a check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from core.errors import GuardFailed, InvalidInput, NotFound, PermissionDenied, SafeloopError
from safeloop import orgfile
from states import engine
from states.workflows.hazard import HAZARD
from tests.helpers import EVIDENCE, NOW, fire, is_zh, report, row_counts, walk_to

LATER = NOW + timedelta(days=7)


@dataclass(frozen=True)
class Case:
    state: str  # the hazard the call targets is walked to this state first ("" = none needed)
    call: Callable[[Session, int], Any]
    error: type[SafeloopError]
    says: tuple[str, ...]  # fragments the message must contain (besides being zh-CN)


def _fire(event: str, actor: str, data: dict[str, Any] | None = None, comment: str | None = None,
          **kw: Any) -> Callable[[Session, int], Any]:
    return lambda s, hid: fire(s, hid, event, actor, data=data or {}, comment=comment, **kw)


def _report(**data: Any) -> Callable[[Session, int], Any]:
    base = {"unit": "jinhua-team-a", "title": "压力表失效", "category": "thing", "grade": "general"}
    return lambda s, _hid: engine.create(s, HAZARD, actor="sun.banzhang", data={**base, **data},
                                         as_of=NOW)


ASSIGN = {"owner": "sun.banzhang", "deadline": LATER}
CASES: dict[str, Case] = {
    # ---- things that do not exist
    "unknown hazard id": Case(
        "", lambda s, _: fire(s, 987654, "assign", "li.anquan", data=ASSIGN),
        NotFound, ("987654", "不存在")),
    "unknown hazard code": Case(
        "", lambda s, _: fire(s, "YH-987654", "assign", "li.anquan", data=ASSIGN),
        NotFound, ("YH-987654", "不存在")),
    "unknown actor": Case("reported", _fire("assign", "nobody", ASSIGN), NotFound,
                          ("nobody", "不存在")),
    "unknown actor reports": Case(
        "", lambda s, _: engine.create(s, HAZARD, actor="nobody", as_of=NOW, data={
            "unit": "jinhua-team-a", "title": "x", "category": "thing", "grade": "general"}),
        NotFound, ("nobody",)),
    "unknown owner": Case("reported", _fire("assign", "li.anquan", {**ASSIGN, "owner": "ghost"}),
                          NotFound, ("ghost", "不存在")),
    "unknown unit": Case("", _report(unit="nowhere"), NotFound, ("nowhere", "不存在")),
    "unknown event": Case("reported", _fire("teleport", "li.anquan"), InvalidInput,
                          ("未知操作", "teleport")),
    "allowed_events of unknown hazard": Case(
        "", lambda s, _: engine.allowed_events(s, HAZARD, "YH-987654", "li.anquan"),
        NotFound, ("YH-987654",)),
    "unknown role asked for": Case("reported", _fire("assign", "li.anquan", ASSIGN, role="wizard"),
                                   PermissionDenied, ("分派整改",)),
    # ---- a reason is required
    "reject without reason": Case("pending_acceptance", _fire("reject", "li.anquan"),
                                  InvalidInput, ("原因",)),
    "cancel without reason": Case("reported", _fire("cancel", "li.anquan"), InvalidInput,
                                  ("原因",)),
    "cancel with blank reason": Case("reported", _fire("cancel", "li.anquan", comment="   "),
                                     InvalidInput, ("原因",)),
    "extend without reason": Case(
        "rectifying", _fire("extend_deadline", "wang.zhuren", {"deadline": LATER + timedelta(1)}),
        InvalidInput, ("原因",)),
    "regrade without reason": Case("rectifying", _fire("regrade", "li.anquan", {"grade": "major"}),
                                   InvalidInput, ("原因",)),
    # ---- deadlines
    "assign deadline in the past": Case(
        "reported", _fire("assign", "li.anquan", {**ASSIGN, "deadline": NOW - timedelta(days=1)}),
        GuardFailed, ("不在未来",)),
    "assign deadline is now": Case("reported", _fire("assign", "li.anquan", {**ASSIGN,
                                                                             "deadline": NOW}),
                                   GuardFailed, ("不在未来",)),
    "extend into the past": Case(
        "rectifying", _fire("extend_deadline", "wang.zhuren",
                            {"deadline": NOW - timedelta(hours=1)}, comment="等备件"),
        GuardFailed, ("不在未来",)),
    "extend to before the current deadline": Case(
        "rectifying", _fire("extend_deadline", "wang.zhuren", {"deadline": LATER - timedelta(1)},
                            comment="等备件"),
        GuardFailed, ("晚于原期限",)),
    # ---- malformed data
    "unknown param": Case("reported", _fire("assign", "li.anquan", {**ASSIGN, "colour": "red"}),
                          InvalidInput, ("colour",)),
    "param on an event without input": Case(
        "pending_acceptance", _fire("accept", "wang.zhuren", {"note": "好"}), InvalidInput,
        ("note",)),
    "deadline not a date": Case("reported", _fire("assign", "li.anquan",
                                                  {**ASSIGN, "deadline": "下周"}),
                                InvalidInput, ("deadline",)),
    "missing deadline": Case("reported", _fire("assign", "li.anquan", {"owner": "sun.banzhang"}),
                             InvalidInput, ("deadline",)),
    "negative funds": Case("reported", _fire("assign", "li.anquan", {**ASSIGN, "funds": -1}),
                           InvalidInput, ("funds",)),
    "level not a number": Case("rectifying", _fire("escalate", "system", {"level": "high"}),
                               InvalidInput, ("level",)),
    "level out of range": Case("rectifying", _fire("escalate", "system", {"level": 7}),
                               InvalidInput, ("level",)),
    "unknown grade": Case("rectifying", _fire("regrade", "li.anquan", {"grade": "huge"},
                                              comment="复核"),
                          InvalidInput, ("grade",)),
    "bad evidence hash": Case(
        "reported", _fire("fix_on_spot", "sun.banzhang",
                          {"evidence": [{**EVIDENCE[0], "sha256": "not-a-hash"}]}),
        InvalidInput, ("evidence.0.sha256",)),
    "evidence not a list": Case("reported", _fire("fix_on_spot", "sun.banzhang",
                                                  {"evidence": "photo.jpg"}),
                                InvalidInput, ("evidence",)),
    "report with unknown category": Case("", _report(category="weather"), InvalidInput,
                                         ("category",)),
    "report without title": Case("", _report(title=""), InvalidInput, ("title",)),
    "report with unknown field": Case("", _report(colour="red"), InvalidInput, ("colour",)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_refused_without_writing(shared: tuple[Session, dict[str, str]], name: str) -> None:
    """The call raises the named error class, says why in Chinese, and changes no row."""
    session, _ = shared
    case = CASES[name]
    hid = walk_to(session, case.state) if case.state else 0
    version = engine.row_of(session, HAZARD, hid)["version"] if hid else None
    before = row_counts(session)
    with pytest.raises(SafeloopError) as info:
        case.call(session, hid)
    exc = info.value
    assert type(exc) is case.error, f"{type(exc).__name__}: {exc.message}"
    assert is_zh(exc.message), exc.message
    for fragment in case.says:
        assert fragment in exc.message, exc.message
    assert row_counts(session) == before
    if hid:
        assert engine.row_of(session, HAZARD, hid)["version"] == version


def test_refusal_keeps_the_session_usable(shared: tuple[Session, dict[str, str]]) -> None:
    """After a refusal the same session fires the corrected event at once (nothing half-open)."""
    session, _ = shared
    hid = report(session).entity_id
    with pytest.raises(InvalidInput):
        fire(session, hid, "cancel", "li.anquan")
    assert fire(session, hid, "cancel", "li.anquan", comment="误报").to_state == "cancelled"


# ---- the organisation file ------------------------------------------------------------------

GOOD_HEAD = """\
jurisdictions:
  - id: j1
    name: 示例区
enterprises:
  - id: e1
    name: 示例企业
    industry: 化工
    jurisdiction: j1
    units:
      - id: u1
        name: 一厂
        tier: plant
"""
ORG_FILES: dict[str, tuple[str, int, str, tuple[str, ...]]] = {
    # name: (text, line the message must name, key it must name or "", other fragments)
    "yaml syntax error": (GOOD_HEAD + "people:\n  - {id: p1, name: 张三\n  - id: p2\n", 15, "",
                          ("不是合法的 YAML",)),
    "bad indentation": ("jurisdictions:\n  - id: j1\n    name: 示例区\n   parent: x\n", 4, "",
                        ("不是合法的 YAML",)),
    "unknown tier": (GOOD_HEAD.replace("tier: plant", "tier: factory"), 12,
                     "enterprises.0.units.0.tier", ()),
    "role in undefined unit": (GOOD_HEAD + "people:\n  - id: p1\n    name: 张三\n    roles:\n"
                               "      - {role: inspector, unit: u1}\n"
                               "      - {role: rectifier, unit: u9}\n", 18,
                               "people.0.roles.1.unit", ("u9", "未定义")),
    "undefined parent jurisdiction": ("jurisdictions:\n  - id: j1\n    name: 示例区\n"
                                      "    parent: j0\n", 4, "jurisdictions.0.parent",
                                      ("j0", "未定义")),
    "unknown role": (GOOD_HEAD + "people:\n  - id: p1\n    name: 张三\n    roles:\n"
                     "      - {role: boss, unit: u1}\n", 17, "people.0.roles.0.role", ()),
    "unknown key": (GOOD_HEAD.replace("    industry: 化工\n", "    industry: 化工\n    size: 3\n"),
                    8, "enterprises.0.size", ()),
    "top level not a mapping": ("- id: j1\n", 0, "", ("映射",)),
}


@pytest.mark.parametrize("name", list(ORG_FILES))
def test_bad_org_file(shared: tuple[Session, dict[str, str]], tmp_path: Path, name: str) -> None:
    """A bad org file names its line and key in Chinese and writes nothing (not even its valid
    jurisdiction, enterprise and unit that come before the bad part)."""
    session, _ = shared
    text, line, key, fragments = ORG_FILES[name]
    path = tmp_path / "org.yaml"
    path.write_text(text, encoding="utf-8")
    before = row_counts(session)
    with pytest.raises(InvalidInput) as info:
        orgfile.load(session, path)
    message = info.value.message
    assert type(info.value) is InvalidInput and is_zh(message), message
    assert "org.yaml" in message, message
    if line:
        assert f"第 {line} 行" in message, message
    if key:
        assert key in message, message
    for fragment in fragments:
        assert fragment in message, message
    assert row_counts(session) == before


def test_bad_org_file_over_loaded_org(shared: tuple[Session, dict[str, str]],
                                      tmp_path: Path) -> None:
    """Valid parts before the bad role are not written either: the whole file is one transaction."""
    session, _ = shared
    text = ("jurisdictions:\n  - {id: xz, name: 忻州市}\n"
            "people:\n  - {id: new.person, name: 新人, roles: [{role: inspector, unit: jinhua-team-a}]}\n"
            "  - {id: bad.person, name: 错人, roles: [{role: inspector, unit: no-such-unit}]}\n")
    path = tmp_path / "more.yaml"
    path.write_text(text, encoding="utf-8")
    before = row_counts(session)
    with pytest.raises(InvalidInput, match="第 5 行 people.1.roles.0.unit"):
        orgfile.load(session, path)
    assert row_counts(session) == before
    with pytest.raises(NotFound):
        fire(session, report(session).entity_id, "fix_on_spot", "new.person",
             data={"evidence": EVIDENCE})
