"""Send one message to one Apprise URL and say exactly what happened.

Apprise 2's ``notify()`` answers with a truth value only (an ``AppriseResult``: use ``bool()``),
so each URL is sent on its own and the reason for a failure is taken from the warnings Apprise
logs while that send runs (captured per thread, so concurrent sends do not mix). Plugin objects
are cached per thread and URL: building one costs 0.5-2 ms, more than a loopback send.
Apprise's per-object throttle (5.5 s between two sends of one bot object) is switched off: the
dispatcher decides pacing, and retries failures with backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

IM_LIMIT_BYTES = 2048  # a WeCom group-bot text message; DingTalk/Feishu/Lark kept to the same
IM_SCHEMES = frozenset({"wecombot", "dingtalk", "feishu", "lark", "wecom", "wxpusher", "qq"})
MAX_BYTES = 64 * 1024
TRUNCATED = "…（内容过长，已截断）"
_local = threading.local()
_generation = [0]  # bumped by ``forget``: every thread drops its cached plugin objects


def forget() -> None:
    """Drop cached plugin objects (after a plugin's class settings changed, e.g. in tests)."""
    _generation[0] += 1


class _Capture(logging.Handler):
    """Keep Apprise's warnings of the current thread's send (the failure reason)."""

    def emit(self, record: logging.LogRecord) -> None:
        buffer = getattr(_local, "buffer", None)
        if buffer is not None and record.levelno >= logging.WARNING:
            try:
                buffer.append(record.getMessage())
            except Exception:  # a log message must never break a send
                buffer.append(str(record.msg))


_HANDLER = _Capture(logging.WARNING)


@lru_cache(maxsize=1)
def _apprise() -> Any:
    import apprise

    logger = logging.getLogger("apprise")
    if _HANDLER not in logger.handlers:
        logger.addHandler(_HANDLER)
    if logger.level == logging.NOTSET or logger.level > logging.WARNING:
        logger.setLevel(logging.WARNING)
    return apprise


def known_scheme(scheme: str) -> bool:
    return scheme.lower() in _schemes()


@lru_cache(maxsize=1)
def _schemes() -> frozenset[str]:
    apprise = _apprise()
    found: set[str] = set()
    for plugin in apprise.Apprise().details(show_disabled=False)["schemas"]:
        for key in ("protocols", "secure_protocols"):
            found.update(p.lower() for p in plugin.get(key) or ())
    return frozenset(found)


def parse_ok(url: str) -> bool:
    """Whether Apprise can build a plugin from the URL (no traffic)."""
    apprise = _apprise()
    _local.buffer = []
    try:
        return apprise.Apprise.instantiate(url) is not None
    finally:
        _local.buffer = None


def mask(url: str) -> str:
    """The URL for display and records: ``${VAR}`` stays as written, other secrets are masked."""
    if "${" in url:
        return url[:500]
    return _masked(url)


@lru_cache(maxsize=4096)
def _masked(url: str) -> str:
    apprise = _apprise()
    _local.buffer = []
    try:
        plugin = apprise.Apprise.instantiate(url)
    finally:
        _local.buffer = None
    if plugin is None:
        scheme = url.split("://", 1)[0]
        return f"{scheme}://***"
    return str(plugin.url(privacy=True)).split("?", 1)[0][:500]  # drop Apprise's default args


def truncate_utf8(text: str, limit: int, suffix: str = TRUNCATED) -> str:
    """At most ``limit`` bytes of UTF-8, cut on a character boundary, marked when cut."""
    raw = text.encode("utf-8")
    if len(raw) <= limit:
        return text
    room = max(0, limit - len(suffix.encode("utf-8")))
    return raw[:room].decode("utf-8", "ignore") + suffix


def fit(scheme: str, title: str, body: str, markdown: bool = False) -> tuple[str, str]:
    """(title, body) as the channel will show them within its size limit.

    IM bot texts have no separate title: it becomes the first line, and the whole text is kept
    within 2,048 bytes (WeCom's limit), so Apprise never cuts a character in half. A DingTalk
    Markdown message keeps its title (the chat list shows it) and the two share the limit.
    """
    if scheme == "dingtalk" and markdown and title:
        room = IM_LIMIT_BYTES - len(title.encode("utf-8")) - 4  # "# " + title + "\n"
        return title, truncate_utf8(body, max(room, 64))
    if scheme in IM_SCHEMES:
        return "", truncate_utf8(f"{title}\n{body}" if title else body, IM_LIMIT_BYTES)
    return title, truncate_utf8(body, MAX_BYTES)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    error: str | None
    seconds: float


def _plugin(url: str, timeout: float) -> Any:
    cache: dict[tuple[str, float], Any] | None = getattr(_local, "plugins", None)
    if cache is None or getattr(_local, "generation", None) != _generation[0]:
        cache = _local.plugins = {}
        _local.generation = _generation[0]
    plugin = cache.get((url, timeout))
    if plugin is None:
        plugin = _apprise().Apprise.instantiate(url)
        if plugin is None:
            return None
        # Apprise throttles each plugin object (5.5 s between sends; Lark even twice a send):
        # pacing is the dispatcher's business, and failures are retried with backoff.
        plugin.request_rate_per_sec = 0
        if "rto=" not in url:
            plugin.socket_read_timeout = timeout
        if "cto=" not in url:
            plugin.socket_connect_timeout = timeout
        if len(cache) > 1024:
            cache.clear()
        cache[(url, timeout)] = plugin
    return plugin


def send(url: str, title: str, body: str, *, markdown: bool = False,
         timeout: float = 10.0) -> SendResult:
    """Send to one (expanded) URL; never raises: a failure comes back with its reason."""
    apprise = _apprise()
    started = time.perf_counter()
    _local.buffer = []
    try:
        plugin = _plugin(url, timeout)
        if plugin is None:
            reason = "; ".join(_local.buffer[-2:]) or "Apprise 无法解析该地址"
            return SendResult(False, reason, time.perf_counter() - started)
        scheme = url.split("://", 1)[0].lower()
        title, body = fit(scheme, title, body, markdown)
        fmt = apprise.NotifyFormat.MARKDOWN if markdown else apprise.NotifyFormat.TEXT
        ok = bool(plugin.notify(body=body, title=title, body_format=fmt))
        error = None if ok else ("; ".join(_local.buffer[-3:]) or "发送失败（Apprise 未给出原因）")
    except Exception as exc:  # a plugin bug must not take the dispatcher down
        ok, error = False, f"{type(exc).__name__}: {exc}"
    finally:
        _local.buffer = None
    return SendResult(ok, error[:2000] if error else None, time.perf_counter() - started)
