"""``safeloop user`` and the token-required CLI, driven as a user would, on a real database."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from core.settings import get_settings
from models.db import make_engine, utcnow
from models.tables import ACCOUNT, API_TOKEN, AUDIT_ENTRY, HAZARD
from safeloop.cli.main import app
from states import audit
from tests.conftest import DEMO_ORG

runner = CliRunner()
PASSWORD = "correct-horse-7"
REPORT = ("hazard", "report", "--unit", "jinhua-team-a", "--title", "压力表失效", "--category", "thing")


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "store"))
    monkeypatch.delenv("SAFELOOP_TOKEN", raising=False)
    monkeypatch.delenv("SAFELOOP_CLI_REQUIRES_TOKEN", raising=False)
    get_settings.cache_clear()

    def invoke(*args: str, input: str | None = None, env: dict[str, str] | None = None):
        for name, value in (env or {}).items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        try:
            return runner.invoke(app, ["--db", db_url, *args], input=input)
        finally:
            for name in env or {}:
                monkeypatch.delenv(name, raising=False)
            get_settings.cache_clear()

    assert invoke("org", "load", str(DEMO_ORG)).exit_code == 0
    invoke.url = db_url  # type: ignore[attr-defined]
    yield invoke
    get_settings.cache_clear()


def _db(cli):
    return make_engine(cli.url)


def _audit(cli) -> list[dict]:
    engine = _db(cli)
    try:
        with engine.connect() as conn:
            assert audit.verify(conn).ok
            return [dict(r) for r in conn.execute(select(AUDIT_ENTRY).order_by(AUDIT_ENTRY.c.seq)).mappings()]
    finally:
        engine.dispose()


def _token(cli, person: str = "sun.banzhang", *extra: str) -> dict:
    result = cli("user", "token", "create", person, "--name", "巡检 App", "--json", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _hazards(cli) -> int:
    engine = _db(cli)
    try:
        with engine.connect() as conn:
            return len(conn.execute(select(HAZARD.c.id)).all())
    finally:
        engine.dispose()


def test_set_password_prompt_stdin_generate(cli):
    assert cli("user", "set-password", "sun.banzhang", input=f"{PASSWORD}\n{PASSWORD}\n").exit_code == 0
    mismatch = cli("user", "set-password", "sun.banzhang", input=f"{PASSWORD}\nother-password\n")
    assert mismatch.exit_code == 2 and "两次输入的密码不一致" in mismatch.output
    assert PASSWORD not in mismatch.output
    assert cli("user", "set-password", "li.anquan", "--stdin", input=PASSWORD + "\n").exit_code == 0
    short = cli("user", "set-password", "li.anquan", "--stdin", input="short\n")
    assert short.exit_code == 2 and "至少 10" in short.output
    huge = cli("user", "set-password", "li.anquan", "--stdin", input="x" * 100_000 + "\n")
    assert huge.exit_code == 2 and "过长" in huge.output and "x" * 100 not in huge.output
    same = cli("user", "set-password", "li.anquan", "--stdin", input="li.anquan\n")
    assert same.exit_code == 2 and "本人编号" in same.output
    generated = cli("user", "set-password", "wang.zhuren", "--generate")
    assert generated.exit_code == 0 and "一次性密码" in generated.output
    unknown = cli("user", "set-password", "nobody", "--stdin", input=PASSWORD + "\n")
    assert unknown.exit_code == 2 and "未找到人员" in unknown.output
    listed = {r["person"]: r for r in json.loads(cli("user", "list", "--json").stdout)}
    assert listed["wang.zhuren"]["must_change"] and listed["wang.zhuren"]["status"] == "须修改密码"
    assert listed["li.anquan"]["has_password"] and not listed["chen.anyuan"]["has_password"]
    table = cli("user", "list").output
    assert "孙班长" in table and "须修改密码" in table and "未设密码" in table
    events = [(r["event"], r["channel"]) for r in _audit(cli) if r["entity_type"] == "account"]
    assert events == [("set_password", "cli")] * 3
    assert all(PASSWORD not in r["data"] for r in _audit(cli))


def test_disable_enable(cli):
    assert cli("user", "disable", "sun.banzhang").exit_code == 0
    assert "本已停用" in cli("user", "disable", "sun.banzhang").output
    listed = {r["person"]: r for r in json.loads(cli("user", "list", "--json").stdout)}
    assert listed["sun.banzhang"]["disabled"]
    assert cli("user", "enable", "sun.banzhang").exit_code == 0
    assert [r["event"] for r in _audit(cli) if r["entity_type"] == "account"] == ["disable", "enable"]


def test_token_create_list_revoke(cli):
    created = _token(cli, "sun.banzhang", "--expires", "30d")
    assert set(created) == {"token", "id"} and created["token"].startswith("sl_")
    plain = cli("user", "token", "create", "sun.banzhang", "--name", "[red]x[/red]",
                "--expires", "2099-01-31")
    assert plain.exit_code == 0 and "[red]x[/red]" in plain.output  # markup shown as text
    listing = cli("user", "token", "list", "sun.banzhang", "--json")
    rows = json.loads(listing.stdout)
    assert [r["status"] for r in rows] == ["active", "active"] and created["token"] not in listing.output
    assert rows[1]["expires_at"].startswith("2099-01-31T15:59:59")  # the local day's end, in UTC
    assert created["token"] not in cli("user", "token", "list").output
    bad = cli("user", "token", "create", "sun.banzhang", "--name", "x", "--expires", "yesterday")
    assert bad.exit_code == 2 and "--expires" in bad.output
    past = cli("user", "token", "create", "sun.banzhang", "--name", "x", "--expires", "2020-01-01")
    assert past.exit_code == 2 and "晚于现在" in past.output
    assert cli("user", "token", "revoke", str(created["id"])).exit_code == 0
    again = cli("user", "token", "revoke", str(created["id"]))
    assert again.exit_code == 2 and "已于" in again.output
    assert cli("user", "token", "revoke", "999").exit_code == 2
    trail = _audit(cli)
    assert [r["event"] for r in trail if r["entity_type"] == "account"] == [
        "token_create", "token_create", "token_revoke"]
    assert all(created["token"] not in r["data"] for r in trail)


def test_tokens_not_required_by_default_behaviour_unchanged(cli):
    missing = cli(*REPORT)
    assert missing.exit_code == 2 and "缺少必填选项 --as" in missing.output
    assert cli(*REPORT, "--as", "sun.banzhang").exit_code == 0
    row = _audit(cli)[-1]
    assert (row["channel"], row["credential"]) == ("cli", None)


def test_required_token_refuses_state_changes_without_one(cli):
    on = {"SAFELOOP_CLI_REQUIRES_TOKEN": "true"}
    refused = cli(*REPORT, "--as", "sun.banzhang", env=on)
    assert refused.exit_code == 2 and "需要个人令牌" in refused.output
    assert cli(*REPORT, env=on).exit_code == 2
    before = len(_audit(cli))
    load = cli("org", "load", str(DEMO_ORG), env=on)
    assert load.exit_code == 2 and "需要个人令牌" in load.output
    password = cli("user", "set-password", "sun.banzhang", "--stdin", input=PASSWORD + "\n", env=on)
    assert password.exit_code == 2
    assert len(_audit(cli)) == before and _hazards(cli) == 0  # nothing written
    assert cli("user", "list", env=on).exit_code == 0  # reading needs no token


def test_token_is_the_actor(cli):
    token = _token(cli)
    env = {"SAFELOOP_CLI_REQUIRES_TOKEN": "true", "SAFELOOP_TOKEN": token["token"]}
    result = cli(*REPORT, "--json", env=env)
    assert result.exit_code == 0, result.output
    assert cli(*REPORT, "--as", "sun.banzhang", env=env).exit_code == 0
    trail = _audit(cli)
    reports = [r for r in trail if r["event"] == "report"]
    assert [(r["actor"], r["channel"], r["credential"]) for r in reports] == [
        ("sun.banzhang", "cli", f"token:{token['id']}")] * 2
    uses = [r for r in trail if r["event"] == "token_use"]
    assert len(uses) == 1 and uses[0]["credential"] == f"token:{token['id']}"  # once a minute
    assert token["token"] not in json.dumps(trail, default=str)
    # org load with a token: the token's person is the actor
    load = cli("org", "load", str(DEMO_ORG), env=env)
    assert load.exit_code == 0 and _audit(cli)[-1]["actor"] == "sun.banzhang"
    # the token works without the requirement too, and its person only manages their own account
    own = cli("user", "set-password", "sun.banzhang", "--stdin", input=PASSWORD + "\n",
              env={"SAFELOOP_TOKEN": token["token"]})
    assert own.exit_code == 0, own.output
    other = cli("user", "set-password", "wang.zhuren", "--stdin", input=PASSWORD + "\n",
                env={"SAFELOOP_TOKEN": token["token"]})
    assert other.exit_code == 1 and "只能管理本人" in other.output


def test_attacks_on_the_token(cli):
    a = _token(cli, "sun.banzhang")
    on = {"SAFELOOP_CLI_REQUIRES_TOKEN": "true"}
    # a token of person A used with --as B
    as_b = cli(*REPORT, "--as", "wang.zhuren", env={**on, "SAFELOOP_TOKEN": a["token"]})
    assert as_b.exit_code == 2 and "不能以「wang.zhuren」的身份操作" in as_b.output
    # an injected newline, an unknown token, a huge one: one message, never echoed
    for bad in [a["token"] + "\nX", a["token"][:-2] + "\n", "sl_" + "A" * 43, "x" * 100_000]:
        result = cli(*REPORT, env={**on, "SAFELOOP_TOKEN": bad})
        assert result.exit_code == 2 and "未登录或凭据无效" in result.output, result.output
        assert a["token"][3:20] not in result.output
    # an expired token
    expiring = _token(cli, "sun.banzhang", "--expires", "1d")
    engine = _db(cli)
    with engine.begin() as conn:
        conn.execute(update(API_TOKEN).where(API_TOKEN.c.id == expiring["id"])
                     .values(expires_at=utcnow() - timedelta(seconds=1)))
    engine.dispose()
    expired = cli(*REPORT, env={**on, "SAFELOOP_TOKEN": expiring["token"]})
    assert expired.exit_code == 2 and "未登录或凭据无效" in expired.output
    # a revoked token, and a disabled person's token
    assert cli("user", "token", "revoke", str(a["id"])).exit_code == 0
    assert cli(*REPORT, env={**on, "SAFELOOP_TOKEN": a["token"]}).exit_code == 2
    b = _token(cli, "li.anquan")
    assert cli("user", "disable", "li.anquan").exit_code == 0
    disabled = cli("user", "list", "--json", env={"SAFELOOP_TOKEN": b["token"]})
    assert disabled.exit_code == 2 and "未登录或凭据无效" in disabled.output
    assert _hazards(cli) == 0
    engine = _db(cli)
    with engine.connect() as conn:
        assert conn.execute(select(ACCOUNT.c.disabled).where(ACCOUNT.c.person_id.is_not(None))).all()
    engine.dispose()


def test_a_token_reads_as_its_person(cli):
    assert cli(*REPORT, "--as", "sun.banzhang").exit_code == 0
    code = json.loads(cli("hazard", "list", "--json").stdout)["items"][0]["code"]
    feng, li = _token(cli, "feng.hanjie"), _token(cli, "li.anquan")
    as_feng, as_li = {"SAFELOOP_TOKEN": feng["token"]}, {"SAFELOOP_TOKEN": li["token"]}
    # the operator (no token, no --as) sees the hazard; another enterprise's token does not,
    # --as given or left off, and never reads as the operator
    assert json.loads(cli("hazard", "list", "--json").stdout)["total"] == 1
    for extra in ((), ("--as", "feng.hanjie")):
        listed = cli("hazard", "list", "--json", *extra, env=as_feng)
        assert listed.exit_code == 0, listed.output
        assert json.loads(listed.stdout) == {"total": 0, "items": []}
    hidden = cli("hazard", "show", code, env=as_feng)
    assert hidden.exit_code == 2 and f"隐患「{code}」不存在" in hidden.output
    shown = cli("hazard", "show", code, "--json", env=as_li)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["code"] == code
    assert json.loads(cli("hazard", "list", "--json", env=as_li).stdout)["total"] == 1
    # a --as naming someone else is refused like a write's, before anything is read
    for args in (("hazard", "list", "--as", "wang.zhuren"), ("hazard", "show", code, "--as", "li.anquan"),
                 ("audit", "export", "--as", "he.shenji")):
        refused = cli(*args, env=as_feng)
        assert refused.exit_code == 2, (args, refused.output)
        assert "令牌属于「feng.hanjie」" in refused.output and "身份查看" in refused.output
    # a bad token is refused for reading too (never a silent fall-back to the operator)
    bad = cli("hazard", "list", "--json", env={"SAFELOOP_TOKEN": "sl_" + "A" * 43})
    assert bad.exit_code == 2 and "未登录或凭据无效" in bad.output and not bad.stdout.startswith("{")
