"""Each channel against a real endpoint on loopback: json://, the WeCom, DingTalk, Feishu and Lark
bots (their plugins pointed at the local sink) and e-mail through aiosmtpd -- Chinese text intact,
IM messages within 2,048 bytes and cut on a character boundary, failures with their reason."""

from __future__ import annotations

import random
from email.header import decode_header, make_header

import pytest

from notifications import channels
from notifications.templates import plain
from tests.notifications.conftest import TIMEOUT, Mailbox, Sink

TITLE = "【整改任务】YH-000001 压力表失效"
BODY = "李安全 将一般隐患 **YH-000001**（合成一班）分派给您整改。\n- 整改期限：**2026-11-09 10:00**"


def test_json_post_carries_title_and_body(sink: Sink) -> None:
    result = channels.send(sink.url("json-a"), TITLE, plain(BODY))
    assert result.ok and result.error is None
    [request] = sink.at("json-a")
    assert set(request.body) == {"version", "title", "message", "attachments", "type"}
    assert request.body["title"] == TITLE
    assert "整改期限：2026-11-09 10:00" in request.body["message"]
    assert "**" not in request.body["message"]


def test_wecom_bot_gets_text_with_the_title_first(bots: Sink) -> None:
    assert channels.send("wecombot://BOTKEY1", TITLE, plain(BODY)).ok
    [request] = bots.at("wecom/BOTKEY1")
    assert request.body["msgtype"] == "text"
    content = request.body["text"]["content"]
    assert content.startswith(TITLE) and "YH-000001" in content


def test_dingtalk_markdown_and_text(bots: Sink) -> None:
    assert channels.send("dingtalk://tokenmd", TITLE, BODY, markdown=True).ok
    assert channels.send("dingtalk://tokentext", TITLE, plain(BODY)).ok
    [md] = bots.at("dingtalk/tokenmd")
    assert md.body["msgtype"] == "markdown"
    assert "**YH-000001**" in md.body["markdown"]["text"]
    [text] = bots.at("dingtalk/tokentext")
    assert text.body["msgtype"] == "text" and text.body["text"]["content"].startswith(TITLE)


def test_dingtalk_markdown_keeps_its_title_within_the_limit(bots: Sink) -> None:
    assert channels.send("dingtalk://tokenlong", TITLE, "**隐患**" * 600, markdown=True).ok
    [md] = bots.at("dingtalk/tokenlong")
    assert md.body["markdown"]["title"] == TITLE
    assert len(md.body["markdown"]["text"].encode("utf-8")) <= channels.IM_LIMIT_BYTES


def test_feishu_and_lark(bots: Sink) -> None:
    assert channels.send("feishu://feishutoken", TITLE, plain(BODY)).ok
    assert channels.send("lark://larktoken", TITLE, plain(BODY)).ok
    [feishu] = bots.at("feishu/feishutoken")
    assert feishu.body["msg_type"] == "text" and TITLE in feishu.body["content"]["text"]
    [lark] = bots.at("lark/larktoken")
    assert lark.body["msg_type"] == "text" and "YH-000001" in lark.body["content"]["text"]


def test_wecom_message_is_cut_to_2048_bytes_on_a_character_boundary(bots: Sink) -> None:
    long_body = "复查发现密封件未更换，压力表读数仍异常😀" * 200
    assert channels.send("wecombot://LONGKEY", TITLE, long_body).ok
    [request] = bots.at("wecom/LONGKEY")
    content = request.body["text"]["content"]
    assert len(content.encode("utf-8")) <= channels.IM_LIMIT_BYTES
    assert content.endswith(channels.TRUNCATED) and content.startswith(TITLE)
    request.raw.decode("utf-8")  # valid UTF-8 on the wire: no half character


def test_truncate_utf8_never_splits_a_character() -> None:
    rng = random.Random(5)
    alphabet = "a安全生产隐患排查😀é\n"
    for _ in range(500):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        limit = rng.randint(len(channels.TRUNCATED.encode()), 900)
        cut = channels.truncate_utf8(text, limit)
        assert len(cut.encode("utf-8")) <= limit
        if len(text.encode("utf-8")) <= limit:
            assert cut == text
        else:
            assert cut.endswith(channels.TRUNCATED)
            assert text.startswith(cut.removesuffix(channels.TRUNCATED))


def test_email_keeps_chinese_subject_and_body(smtp: Mailbox) -> None:
    result = channels.send(smtp.url("sun@jinhua.example.com"), TITLE, BODY, markdown=True)
    assert result.ok, result.error
    [mail] = smtp.messages
    assert str(make_header(decode_header(mail["Subject"]))) == TITLE
    part = mail.get_body(preferencelist=("html", "plain"))
    assert part is not None
    content = part.get_content()
    assert "李安全" in content and "2026-11-09 10:00" in content and "YH-000001" in content
    assert "sun@jinhua.example.com" in mail["To"]


@pytest.mark.parametrize("answer", [500, TIMEOUT])
def test_failure_comes_back_with_its_reason(sink: Sink, answer: int | str) -> None:
    sink.behaviour = lambda path, body, n: answer
    sink.hold_s = 1.5
    result = channels.send(sink.url("down"), TITLE, BODY, timeout=0.5)
    assert not result.ok
    assert result.error
    if answer == 500:
        assert "500" in result.error
    else:
        assert result.seconds < 1.4  # the client gave up; it did not wait for the slow answer


def test_unreachable_and_unparsable_urls_fail_cleanly() -> None:
    port_closed = channels.send("json://127.0.0.1:9/nobody", TITLE, BODY, timeout=1)
    assert not port_closed.ok and port_closed.error
    bad = channels.send("wecombot://", TITLE, BODY)
    assert not bad.ok and bad.error


def test_mask_hides_secrets_but_keeps_env_placeholders() -> None:
    assert channels.mask("wecombot://${WECOM_KEY_A}") == "wecombot://${WECOM_KEY_A}"
    masked = channels.mask("mailtos://user:supersecret@smtp.example.com/?to=a@example.com")
    assert "supersecret" not in masked
    assert "supersecretkey123" not in channels.mask("wecombot://supersecretkey123")
