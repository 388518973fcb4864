"""Routing files, templates and people's own channels are checked at load: every mistake is
refused with the file, line and key named, and secrets only ever come from the environment."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import Session

from core.errors import InvalidInput
from models import Person
from notifications import routing, templates
from notifications.recipients import Directory, resolve
from safeloop import orgfile
from tests.helpers import CJK

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "notifications" / "routing.example.yaml"
SECRETS = {name: "x1" for name in (
    "SMTP_PASSWORD", "WECOM_KEY_TEAM_A", "DINGTALK_TOKEN_PLANT1", "FEISHU_TOKEN_GROUP",
    "WECOM_KEY_PLANT1", "LARK_TOKEN_XINFENG", "WECOM_KEY_OPS")}


def parse(text: str, env: dict[str, str] | None = None) -> routing.Routing:
    return routing.parse(text, "routing.yaml", known_templates=templates.load().names(),
                         env=env if env is not None else SECRETS)


def refused(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(InvalidInput) as info:
        parse(text, env)
    assert CJK.search(info.value.message)
    return info.value.message


def test_the_shipped_example_is_valid_and_is_the_readme_example() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    parsed = parse(text)
    assert parsed.rules["hazard.remind_due"].digest
    assert parsed.rules["hazard.escalate"].levels[3].also == ("role:principal@unit",)
    assert not parsed.rules["inspection.review"].enabled
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split("\nversion: 1\n", 1)[1]
    assert body.strip() in readme, "README's routing example differs from the shipped file"


@pytest.mark.parametrize(("text", "named"), [
    ("peeple: {}\n", "第 1 行 peeple"),
    ("people:\n  sun.banzhang: ['wechat-bot://abc']\n", "第 2 行 people.sun.banzhang.0.url"),
    ("people:\n  sun.banzhang: ['not a url']\n", "people.sun.banzhang.0.url"),
    ("roles:\n  boss: ['json://127.0.0.1:9/x']\n", "roles.boss"),
    ("units:\n  jinhua-team-a:\n    - {url: 'json://127.0.0.1:9/x', roles: [boss]}\n",
     "units.jinhua-team-a.0.roles.0"),
    ("rules:\n  hazard.asign: {digest: true}\n", "第 2 行 rules.hazard.asign"),
    ("rules:\n  hazard.assign: {also: ['owner']}\n", "rules.hazard.assign.also"),
    ("rules:\n  hazard.escalate:\n    levels: {4: {also: ['role:auditor']}}\n",
     "rules.hazard.escalate.levels.4"),
    ("email: 'mailto://safeloop@smtp.example.com'\n", "第 1 行 email"),
    ("people:\n  sun.banzhang:\n    - {url: 'json://127.0.0.1:9/x', format: html}\n",
     "people.sun.banzhang.0.format"),
    ("people: [1, 2]\n", "people"),
])
def test_routing_errors_name_the_key(text: str, named: str) -> None:
    assert named in refused(text)


def test_yaml_syntax_error_names_the_line() -> None:
    assert "第 2 行" in refused("people:\n  - : [\n")


def test_secrets_come_from_the_environment() -> None:
    text = "people:\n  sun.banzhang: ['wecombot://${WECOM_KEY_SUN}']\n"
    message = refused(text, env={})
    assert "people.sun.banzhang.0.url" in message and "WECOM_KEY_SUN" in message
    parsed = parse(text, env={"WECOM_KEY_SUN": "abc123"})
    [channel] = parsed.people["sun.banzhang"]
    assert channel.url == "wecombot://${WECOM_KEY_SUN}"  # stored as written, not expanded
    assert routing.expand(channel.url, {"WECOM_KEY_SUN": "abc123"}) == "wecombot://abc123"
    with pytest.raises(InvalidInput, match="WECOM_KEY_SUN"):
        routing.expand(channel.url, {})


def test_routing_keys_must_exist_in_the_org(org: Session) -> None:
    parsed = parse("people:\n  nobody: ['json://127.0.0.1:9/x']\n"
                   "units:\n  no-unit: ['json://127.0.0.1:9/y']\n"
                   "rules:\n  hazard.assign: {also: ['person:ghost', 'role:principal@unit:nowhere']}\n")
    directory = Directory(org.connection())
    org.rollback()
    with pytest.raises(InvalidInput) as info:
        directory.check(parsed)
    message = info.value.message
    for named in ("people.nobody", "units.no-unit", "person:ghost", "nowhere"):
        assert named in message


def test_role_specs_resolve_through_units_and_jurisdictions(org: Session) -> None:
    directory = Directory(org.connection())
    org.rollback()
    team_a = directory.unit_by_key["jinhua-team-a"].id
    empty = routing.Routing()

    def who(spec: str) -> set[str]:
        return {p.key for p in resolve(spec, directory, empty).people}

    assert who(f"role:safety_officer@unit:{team_a}") == {"li.anquan"}  # granted on the plant
    assert who(f"role:unit_head@unit:{team_a}") == {"zhao.chejian"}  # on the workshop above
    assert who(f"role:principal@unit:{team_a}") == {"wang.zhuren"}  # on the group
    assert who(f"role:regulator@unit:{team_a}") == {"qian.jianguan"}  # via the jurisdiction
    xinfeng = directory.unit_by_key["xinfeng-team-weld"].id
    assert who(f"role:principal@unit:{xinfeng}") == {"zheng.changzhang"}
    assert who("role:auditor") == {"he.shenji"}
    sun = directory.by_key["sun.banzhang"].id
    assert who(f"person:{sun}") == {"sun.banzhang"}
    assert who("person:999999") == set() and who("bogus") == set()


# ---- templates -------------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "my_templates.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("text", "named"), [
    ("hazard.assign:\n  title: x\n  body: '{% if code %}unclosed'\n", "第 3 行 hazard.assign.body"),
    ("hazard.assign:\n  title: '{{ cod }}'\n  body: b\n", "hazard.assign"),
    ("hazard.assign:\n  title: x\n", "hazard.assign.body"),
    ("hazard.assign:\n  title: x\n  body: b\n  extra: 1\n", "hazard.assign.extra"),
    ("Hazard Assign:\n  title: x\n  body: b\n", "Hazard Assign"),
    ("hazard.assign:\n  title: x\n  body: '{{ title * 40 }}'\n", "2048"),
])
def test_template_errors_name_the_key(tmp_path: Path, text: str, named: str) -> None:
    with pytest.raises(InvalidInput) as info:
        templates.load(write(tmp_path, text))
    assert named in info.value.message, info.value.message


def test_undefined_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="'cod' is undefined"):
        templates.load(write(tmp_path, "hazard.assign:\n  title: '{{ cod }}'\n  body: b\n"))


def test_override_replaces_a_shipped_template(tmp_path: Path) -> None:
    tset = templates.load(write(tmp_path, "hazard.assign:\n  title: '新任务 {{ code }}'\n"
                                          "  body: '请处理 **{{ code }}**'\n"))
    rendered = tset.render("hazard.assign", templates.base_context(code="YH-000009"))
    assert rendered.title == "新任务 YH-000009" and rendered.body == "请处理 **YH-000009**"
    assert tset.render("hazard.reject", templates.base_context(code="YH-1")).title.startswith(
        "【验收不通过】")
    assert tset.render("no.such", templates.base_context(code="YH-1")).title  # the fallback


def test_every_shipped_template_fits_a_wecom_message() -> None:
    tset = templates.load()
    for name in tset.names():
        for context in templates.sample_contexts():
            rendered = tset.render(name, context)
            text = f"{rendered.title}\n{templates.plain(rendered.body)}"
            assert re.search(r"[\u4e00-\u9fff]", text), name
            if name not in templates.LISTS:
                assert len(text.encode()) <= 2048, name


def test_plain_strips_markdown() -> None:
    assert templates.plain("# 标题\n**YH-1** `safeloop x` [链接](http://h/x)") == \
        "标题\nYH-1 safeloop x 链接 http://h/x"


# ---- people's own channels in the org file -----------------------------------------------------


def test_org_file_channels_are_checked_and_stored(org: Session, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("jurisdictions: [{id: xz, name: 忻州市}]\npeople:\n"
                   "  - {id: sun.banzhang, name: 孙班长, channels: ['json://127.0.0.1:9/a', "
                   "'nope://x']}\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        orgfile.load(org, bad)
    assert "people.0.channels.1" in info.value.message and "nope://" in info.value.message
    good = tmp_path / "good.yaml"
    good.write_text("jurisdictions: [{id: xz, name: 忻州市}]\npeople:\n"
                    "  - {id: he.shenji, name: 何审计, channels: ['wecombot://${AUDIT_KEY}'],"
                    " roles: [{role: auditor, jurisdiction: xz}]}\n", encoding="utf-8")
    first = orgfile.load(org, good)
    assert first.updated.get("person") == 1
    again = orgfile.load(org, good)
    assert again.updated == {} and again.created == {}  # reloading changes nothing
    stored = org.connection().execute(
        select(Person.channels).where(Person.key == "he.shenji")).scalar()  # type: ignore[call-overload]
    org.rollback()
    assert stored == '["wecombot://${AUDIT_KEY}"]'
