"""``safeloop notify test|check`` and ``safeloop outbox list|show|retry`` on a real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from typer.testing import CliRunner

from core.settings import get_settings
from safeloop.cli.main import app
from tests.helpers import NOW, assign, report
from tests.notifications.conftest import Sink, dispatcher, outbox, people_routing

runner = CliRunner()


@pytest.fixture
def routed(tmp_path: Path, sink: Sink, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "routing.yaml"
    path.write_text(people_routing(sink, "sun.banzhang", "li.anquan", "he.shenji"),
                    encoding="utf-8")
    monkeypatch.setenv("SAFELOOP_NOTIFY_ROUTING", str(path))
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


def cli(db_url: str, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["--db", db_url, *args])
    return result.exit_code, result.output


def test_notify_test_sends_or_explains(sink: Sink, db_url: str) -> None:
    code, out = cli(db_url, "notify", "test", sink.url("probe"))
    assert code == 0 and "已发送" in out
    [request] = sink.at("probe")
    assert request.body["title"] == "【safeloop 测试消息】"
    sink.behaviour = lambda path, body, n: 500
    code, out = cli(db_url, "notify", "test", sink.url("probe"))
    assert code == 1 and "发送失败" in out and "500" in out
    code, out = cli(db_url, "notify", "test", "nope://x")
    assert code == 2 and "不支持" in out


def test_notify_test_expands_secrets(sink: Sink, db_url: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_PROBE_PATH", "secret-path")
    code, out = cli(db_url, "notify", "test", sink.url("${TEST_PROBE_PATH}"), "--body", "你好")
    assert code == 0 and "secret-path" not in out
    assert sink.at("secret-path")[0].body["message"] == "你好"
    monkeypatch.delenv("TEST_PROBE_PATH")
    code, out = cli(db_url, "notify", "test", sink.url("${TEST_PROBE_PATH}"))
    assert code == 2 and "TEST_PROBE_PATH" in out


def test_notify_check(org: Session, db_url: str, routed: Path) -> None:
    code, out = cli(db_url, "notify", "check", "--json")
    assert code == 0, out
    assert json.loads(out)["people"] == 3
    routed.write_text("people:\n  ghost: ['json://127.0.0.1:9/x']\n", encoding="utf-8")
    code, out = cli(db_url, "notify", "check")
    assert code == 2 and "people.ghost" in out


def test_outbox_list_show_retry(org: Session, engine: Engine, db_url: str, sink: Sink,
                                routed: Path) -> None:
    hid = report(org).entity_id
    assign(org, hid)
    code, out = cli(db_url, "outbox", "list", "--json")
    assert code == 0, out
    listed = json.loads(out)
    assert listed["counts"] == {"pending": 2}
    assert [i["template"] for i in listed["items"]] == ["hazard.assign", "hazard.report"]
    code, out = cli(db_url, "outbox", "list")
    assert code == 0 and "待发送 2" in out

    sink.behaviour = lambda path, body, n: 500 if path == "sun.banzhang" else 200
    text = routed.read_text(encoding="utf-8")
    config = dispatcher(engine, text).config
    from dataclasses import replace

    once = replace(config, max_attempts=1)
    dispatcher(engine, text, once).run(NOW + timedelta(minutes=1))
    dead = next(r for r in outbox(org) if r["template"] == "hazard.assign")
    assert dead["status"] == "dead"

    code, out = cli(db_url, "outbox", "show", str(dead["id"]), "--json")
    assert code == 0, out
    shown = json.loads(out)
    assert shown["status"] == "dead" and shown["code"] == "YH-000001"
    assert shown["preview"]["title"].startswith("【整改任务】YH-000001")
    assert "--as sun.banzhang" in shown["preview"]["body"]
    [delivery] = shown["deliveries"]
    assert delivery["status"] == "failed" and "500" in delivery["last_error"]
    code, out = cli(db_url, "outbox", "show", str(dead["id"]))
    assert code == 0 and "已放弃" in out and "发送记录" in out
    code, out = cli(db_url, "outbox", "show", "99999")
    assert code == 2 and "不存在" in out

    code, out = cli(db_url, "outbox", "retry")
    assert code == 2
    code, out = cli(db_url, "outbox", "list", "--status", "dead", "--json")
    assert [i["id"] for i in json.loads(out)["items"]] == [dead["id"]]
    code, out = cli(db_url, "outbox", "retry", "--status", "dead", "--json")
    assert code == 0 and json.loads(out) == {"requeued": 1}
    sink.behaviour = lambda path, body, n: 200
    dispatcher(engine, text).run(NOW + timedelta(minutes=2))
    assert {r["status"] for r in outbox(org)} == {"sent"}
    assert len(sink.at("sun.banzhang")) == 1 and len(sink.at("he.shenji")) == 1  # + the alert
