"""Real endpoints on loopback for the notification tests: an HTTP sink (``json://``, and the
WeCom, DingTalk, Feishu and Lark bot plugins pointed at it) and an SMTP server (aiosmtpd).

The sink can be told to fail: each request goes through ``behaviour`` which answers a status
code, or ``TIMEOUT`` to hold the request longer than the client waits (then 504). Only
requests answered 200 count as delivered (``accepted``); ``received`` holds them all.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.tables import NOTIFICATION_DELIVERY as DELIVERY
from models.tables import OUTBOX as OUT
from notifications import channels, routing, templates
from notifications.dispatch import DispatchConfig, Dispatcher

TIMEOUT = "timeout"


@dataclass
class Request:
    path: str
    body: Any
    status: int
    raw: bytes = b""


@dataclass
class Sink:
    """A threaded HTTP server on 127.0.0.1 that records every POST."""

    server: ThreadingHTTPServer | None = None
    received: list[Request] = field(default_factory=list)
    behaviour: Callable[[str, Any, int], int | str] = lambda path, body, n: 200
    hold_s: float = 1.5
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def base(self) -> str:
        return f"127.0.0.1:{self.port}"

    def url(self, path: str = "x") -> str:
        return f"json://{self.base}/{path}"

    @property
    def accepted(self) -> list[Request]:
        with self.lock:
            return [r for r in self.received if r.status == 200]

    def at(self, path: str) -> list[Request]:
        return [r for r in self.accepted if r.path == path]

    def clear(self) -> None:
        with self.lock:
            self.received.clear()


def _handler(sink: Sink) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body: Any = json.loads(raw.decode("utf-8"))
            except ValueError:
                body = raw.decode("utf-8", "replace")
            path = self.path.lstrip("/")
            with sink.lock:
                count = sum(1 for r in sink.received if r.path == path)
            if sink.delay_s:
                time.sleep(sink.delay_s)
            answer = sink.behaviour(path, body, count)
            status = 504 if answer == TIMEOUT else int(answer)
            with sink.lock:
                sink.received.append(Request(path, body, status, raw))
            if answer == TIMEOUT:
                time.sleep(sink.hold_s)  # the client has given up by now
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"errcode":0,"errmsg":"ok","code":0}')
            except OSError:
                pass

        def log_message(self, *_args: Any) -> None:
            pass

    return Handler


@contextmanager
def running_sink() -> Iterator[Sink]:
    """A sink serving in a thread until the block ends (also used by tests/flows, bench)."""
    found = Sink()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(found))
    found.server = server
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sink() -> Iterator[Sink]:
    with running_sink() as found:
        yield found


@pytest.fixture
def bots(sink: Sink, monkeypatch: pytest.MonkeyPatch) -> Sink:
    """The WeCom, DingTalk, Feishu and Lark bot plugins post to the sink instead of the vendors."""
    from apprise.plugins.dingtalk import NotifyDingTalk
    from apprise.plugins.feishu import NotifyFeishu
    from apprise.plugins.lark import NotifyLark
    from apprise.plugins.wecombot import NotifyWeComBot

    base = f"http://{sink.base}"
    monkeypatch.setattr(NotifyWeComBot, "notify_url", base + "/wecom/{key}")
    monkeypatch.setattr(NotifyDingTalk, "notify_url", base + "/dingtalk/{token}")
    monkeypatch.setattr(NotifyFeishu, "notify_url", base + "/feishu/{token}")
    monkeypatch.setattr(NotifyLark, "notify_url", base + "/lark/")
    channels.forget()
    yield sink
    channels.forget()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    port: int
    messages: list[EmailMessage] = field(default_factory=list)

    def url(self, to: str) -> str:
        return (f"mailto://safeloop@127.0.0.1:{self.port}?to={to}&from=safeloop@example.com"
                f"&mode=insecure")


class _Store:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        self.box.messages.append(
            message_from_bytes(envelope.original_content, policy=policy.default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[Mailbox]:
    """An aiosmtpd server on a real loopback port (it cannot take port 0)."""
    from aiosmtpd.controller import Controller

    box = Mailbox(free_port())
    controller = Controller(_Store(box), hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


FAST = DispatchConfig(max_attempts=5, backoff_s=1.0, backoff_max_s=8.0, concurrency=8,
                      batch_size=50, timeout_s=2.0, lease_s=60.0, digest_time=None,
                      run_budget_s=None)


def make_routing(text: str, tmp_path: Path | None = None) -> routing.Routing:
    tset = templates.load()
    return routing.parse(text, "routing.yaml", known_templates=tset.names())


def people_routing(sink: Sink, *keys: str, extra: str = "") -> str:
    """A routing file giving each person a json:// channel at /<key> on the sink."""
    lines = ["people:"]
    lines += [f"  {k}: [{sink.url(k)}]" for k in keys]
    return "\n".join(lines) + "\n" + extra


DEMO_PEOPLE = ("wang.zhuren", "li.anquan", "zhao.chejian", "sun.banzhang", "zhou.weixiu",
               "wu.chuyun", "zheng.changzhang", "feng.hanjie", "chen.anyuan", "qian.jianguan",
               "he.shenji")


def dispatcher(engine: Engine, text: str, config: DispatchConfig = FAST,
               owner: str | None = None) -> Dispatcher:
    return Dispatcher(engine, make_routing(text), templates.load(), config, owner)


def outbox(session: Session) -> list[dict[str, Any]]:
    rows = [dict(r) for r in session.connection().execute(
        select(OUT).order_by(OUT.c.id)).mappings()]
    session.rollback()
    return rows


def deliveries(session: Session) -> list[dict[str, Any]]:
    rows = [dict(r) for r in session.connection().execute(
        select(DELIVERY).order_by(DELIVERY.c.id)).mappings()]
    session.rollback()
    return rows


def text_of(request: Request) -> str:
    """The human text of a json:// post or a bot message."""
    body = request.body
    if isinstance(body, dict):
        if "message" in body:
            return f"{body.get('title', '')}\n{body['message']}"
        if "text" in body and isinstance(body["text"], dict):
            return str(body["text"].get("content", ""))
        if "markdown" in body:
            return str(body["markdown"].get("text", ""))
        if "content" in body:
            return str(body["content"].get("text", ""))
    return str(body)
